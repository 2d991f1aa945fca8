"""What matching leaves in the store: decisions on pairs, and merges with what they replaced."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DecisionStatus(StrEnum):
    """Where a pair's decision stands."""

    # Linked by the matcher (score at or above the auto-link threshold).
    LINKED = "linked"
    # Between the thresholds: waiting for a steward.
    OPEN = "open"
    # A steward said: the same (the two golden records were merged).
    ACCEPTED = "accepted"
    # A steward said: different. The pair is never put to review again.
    REJECTED = "rejected"
    # Below the review threshold.
    DISTINCT = "distinct"


# A steward has had the last word on these: later runs leave them alone.
SETTLED = frozenset({DecisionStatus.ACCEPTED, DecisionStatus.REJECTED})


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The stored order of a pair: one row per pair, whichever side asked."""
    return (a, b) if a <= b else (b, a)


@dataclass(slots=True)
class MatchDecision:
    """One scored pair: golden records by master id, or a source record as ``system:key``."""

    domain: str
    left_id: str
    right_id: str
    weight: float
    probability: float
    # link / review / distinct, as the score said.
    outcome: str
    status: DecisionStatus
    # ingest, dedupe or explain: what produced the score.
    origin: str
    # MatchResult.to_dict(): every comparison's level, values and weight.
    explanation: dict[str, Any]
    created_at: str
    decided_at: str | None = None
    decided_by: str | None = None
    note: str | None = None
    trace_id: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        self.left_id, self.right_id = pair_key(self.left_id, self.right_id)


class MergeStatus(StrEnum):
    """Whether a merge still holds."""

    MERGED = "merged"
    UNMERGED = "unmerged"


@dataclass(slots=True)
class MergeRecord:
    """One merge of ``loser`` into ``survivor``, with what an unmerge needs to undo it."""

    domain: str
    survivor_id: str
    loser_id: str
    actor: str
    trace_id: str
    merged_at: str
    # {"xrefs": [[system, key], ...], "natural_keys": [[name, value], ...],
    #  "survivor_version": n, "loser_version": n}: what moved, and the versions it replaced.
    snapshot: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    status: MergeStatus = MergeStatus.MERGED
    unmerged_at: str | None = None
    id: int | None = None
