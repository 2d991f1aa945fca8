"""Match results and their explanations: JSON-shaped, and as a compact text table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    """What a score means: merge automatically, ask a steward, or keep apart."""

    LINK = "link"
    REVIEW = "review"
    DISTINCT = "distinct"


@dataclass(frozen=True, slots=True)
class ComparisonOutcome:
    """How one comparison came out for a pair, and what it added to the weight."""

    name: str
    level: str
    # Index of the level, best first; -1 when a side has no value.
    level_index: int
    left: tuple[str, ...]
    right: tuple[str, ...]
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form."""
        return {
            "name": self.name,
            "level": self.level,
            "level_index": self.level_index,
            "left": list(self.left),
            "right": list(self.right),
            "weight": round(self.weight, 4),
        }


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The scored comparison of two records, with everything needed to explain it."""

    decision: Decision
    probability: float
    # log2 Bayes factor: the prior weight plus every comparison's weight.
    weight: float
    prior_weight: float
    comparisons: tuple[ComparisonOutcome, ...]
    # Comparisons where a side had no value.
    missing: int
    # Why the decision is weaker than the score alone says (too sparse to auto-link).
    reason: str | None = None
    left_id: str | None = None
    right_id: str | None = None
    # Whether blocking makes ingest compare the pair at all (shared keys, block and candidate
    # caps), with a sentence saying why; None when not asked (``mastersync match explain`` asks).
    blocking: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form, stored with every match decision."""
        out: dict[str, Any] = {
            "left_id": self.left_id,
            "right_id": self.right_id,
            "decision": self.decision.value,
            "probability": self.probability,
            "weight": round(self.weight, 4),
            "prior_weight": round(self.prior_weight, 4),
            "missing": self.missing,
            "reason": self.reason,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }
        if self.blocking is not None:
            out["blocking"] = self.blocking
        return out


def _cell(values: tuple[str, ...], width: int) -> str:
    text = " | ".join(values) if values else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def render(result: MatchResult, width: int = 24) -> str:
    """A compact human-readable table of a result (``mastersync match explain A B``)."""
    who = ""
    if result.left_id is not None or result.right_id is not None:
        who = f"{result.left_id} vs {result.right_id}: "
    lines = [
        f"{who}{result.decision.value.upper()}  probability {result.probability:.6f}  "
        f"weight {result.weight:+.2f} (prior {result.prior_weight:+.2f})"
    ]
    if result.reason:
        lines.append(f"  ({result.reason})")
    if result.blocking is not None:
        lines.append(f"  (blocking: {result.blocking['why']})")
    name_w = max([10, *(len(c.name) for c in result.comparisons)])
    level_w = max([5, *(len(c.level) for c in result.comparisons)])
    lines.append(
        f"{'comparison':<{name_w}}  {'level':<{level_w}}  {'weight':>7}  {'left':<{width}}  right"
    )
    for c in result.comparisons:
        lines.append(
            f"{c.name:<{name_w}}  {c.level:<{level_w}}  {c.weight:>+7.2f}  "
            f"{_cell(c.left, width):<{width}}  {_cell(c.right, width)}"
        )
    return "\n".join(lines)
