"""Starting weights for a domain whose own records have not been fitted yet.

Ingest matches new records from the first day; until ``mastersync dedupe`` has estimated the
weights on the domain's records by EM, every comparison gets the same modest evidence: full
agreement weighs +4 bits (16 times likelier among matches), full disagreement -4 bits, and the
levels between are spaced evenly. With a 1% prior among candidate pairs, several comparisons
must agree before a pair is linked, and a sparse pair never is.
"""

from __future__ import annotations

from mastersync.domain.matching.compiled import CompiledConfig
from mastersync.domain.matching.estimation import ComparisonParameters, Parameters

# Share of candidate pairs that are matches before any evidence.
STARTING_PRIOR = 0.01
# Weight (bits) of full agreement; full disagreement weighs the negative.
STARTING_WEIGHT = 4.0


def _levels(size: int) -> tuple[list[float], list[float]]:
    """m and u whose log2 ratios run evenly from +STARTING_WEIGHT to -STARTING_WEIGHT."""
    if size == 1:
        return [1.0], [1.0]
    weights = [STARTING_WEIGHT * (1 - 2 * i / (size - 1)) for i in range(size)]
    # Symmetric weights give equal normalisers, so log2(m/u) is exactly the weight.
    m = [2 ** (w / 2) for w in weights]
    u = [2 ** (-w / 2) for w in weights]
    return [x / sum(m) for x in m], [x / sum(u) for x in u]


def starting_parameters(config: CompiledConfig) -> Parameters:
    """Parameters that treat every comparison alike, until EM estimates the real ones."""
    comparisons = {}
    for c in config.comparisons:
        labels = list(c.comparator.labels)
        m, u = _levels(len(labels))
        comparisons[c.name] = ComparisonParameters(levels=labels, m=m, u=u)
    return Parameters(prior=STARTING_PRIOR, comparisons=comparisons)
