"""Survivorship: which contribution's value a golden field takes. Deterministic by design."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mastersync.domain.golden import Contribution


class Rule(StrEnum):
    """How an unowned field picks its value."""

    SOURCE_PRIORITY = "source_priority"
    MOST_RECENT = "most_recent"
    MOST_COMPLETE = "most_complete"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """Who may write a field and how competing values are decided."""

    # Authoritative systems in priority order; empty means the field has no owner.
    owners: tuple[str, ...]
    rule: Rule
    # System priority for source_priority and for breaking ties under the other rules.
    order: tuple[str, ...]

    def may_write(self, system: str) -> bool:
        """True when ``system`` may set this field."""
        return not self.owners or system in self.owners


def is_empty(value: Any) -> bool:
    """No value: null, empty text, empty list or object."""
    return value is None or value == "" or value == [] or value == {}


# None, "", [] and {}: equality is what "in" tests, so one tuple serves all four.
EMPTY: tuple[Any, ...] = (None, "", [], {})


def completeness(value: Any) -> int:
    """How many non-empty leaves a value has."""
    if isinstance(value, dict):
        return sum(completeness(v) for v in value.values())
    if isinstance(value, list):
        return sum(completeness(v) for v in value)
    return 0 if is_empty(value) else 1


def _rank(order: Sequence[str], system: str) -> int:
    return order.index(system) if system in order else len(order)


def _recency(c: Contribution) -> str:
    # The source's change time; larger is newer, none sorts oldest. Counters and arrival
    # numbers are no time: ERP change 500 says nothing against PIM revision 2.
    return c.timestamp or ""


def _within(c: Contribution) -> tuple[str, int, int]:
    # After priority: a system's own versions, compared only with each other (two records
    # of one system consolidated into one golden record).
    version = c.version
    return (
        c.system,
        1 if isinstance(version, int) else 0,
        version if isinstance(version, int) else 0,
    )


def _identity(c: Contribution) -> tuple[str, str, str]:
    # Last in every score: a total order, so arrival order can never decide.
    return (str(c.version), c.system, c.key)


def rule_of(policy: FieldPolicy) -> tuple[Rule, tuple[str, ...]]:
    """The effective rule and system order of a field (owners are a priority order)."""
    if policy.owners:
        return Rule.SOURCE_PRIORITY, policy.owners
    return policy.rule, policy.order


def score(c: Contribution, rule: Rule, order: Sequence[str], value: Any = None) -> tuple[Any, ...]:
    """How good a contribution is under a rule; larger wins on every component."""
    recency, priority = _recency(c), -_rank(order, c.system)
    if rule is Rule.MOST_RECENT:
        return (recency, priority, *_within(c), *_identity(c))
    if rule is Rule.MOST_COMPLETE:
        return (completeness(value), priority, recency, *_within(c), *_identity(c))
    return (priority, recency, *_within(c), *_identity(c))


def candidates(
    field: str, contributions: Sequence[Contribution], policy: FieldPolicy
) -> list[Contribution]:
    """Contributions with a value for ``field`` that may write it."""
    found = [c for c in contributions if c.values.get(field) not in EMPTY]
    if policy.owners:
        found = [c for c in found if c.system in policy.owners]
    return found


def resolve(
    field: str, contributions: Sequence[Contribution], policy: FieldPolicy
) -> tuple[Any, Contribution | None]:
    """The winning value of ``field`` and the contribution it came from (or None, None)."""
    found = candidates(field, contributions, policy)
    if not found:
        return None, None
    rule, order = rule_of(policy)
    winner = max(found, key=lambda c: score(c, rule, order, c.values[field]))
    return winner.values[field], winner
