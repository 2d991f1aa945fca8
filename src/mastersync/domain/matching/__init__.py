"""Matching: duplicate detection with explainable Fellegi-Sunter scores (pure, no I/O).

matcher = Matcher(default_config("customer"))
report = matcher.dedupe(records)            # fits weights by EM, then links and clusters
result = matcher.compare(a, b)              # MatchResult: decision, probability, why
print(render(result)); store(result.to_dict())
matcher.index.add(master_id, golden)        # incremental: index golden records ...
matcher.match(new_record, goldens)          # ... and score one new record against them
"""

from mastersync.domain.matching.blocking import MatchIndex
from mastersync.domain.matching.comparators import COMPARATORS
from mastersync.domain.matching.config import (
    BlockingKey,
    ComparisonConfig,
    EMConfig,
    KeyPart,
    MatchConfig,
    Thresholds,
)
from mastersync.domain.matching.defaults import default_config
from mastersync.domain.matching.estimation import (
    ComparisonParameters,
    EstimationError,
    Parameters,
    TooFewPairs,
)
from mastersync.domain.matching.explain import ComparisonOutcome, Decision, MatchResult, render
from mastersync.domain.matching.matcher import Matcher, NotFittedError, probability
from mastersync.domain.matching.normalise import NORMALISERS
from mastersync.domain.matching.reports import DedupeReport, FitReport, Progress, ScoredPair

__all__ = [
    "COMPARATORS",
    "NORMALISERS",
    "BlockingKey",
    "ComparisonConfig",
    "ComparisonOutcome",
    "ComparisonParameters",
    "Decision",
    "DedupeReport",
    "EMConfig",
    "EstimationError",
    "FitReport",
    "KeyPart",
    "MatchConfig",
    "MatchIndex",
    "MatchResult",
    "Matcher",
    "NotFittedError",
    "Parameters",
    "Progress",
    "ScoredPair",
    "Thresholds",
    "TooFewPairs",
    "default_config",
    "probability",
    "render",
]
