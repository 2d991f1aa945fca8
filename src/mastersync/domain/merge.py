"""Merge: apply one source contribution to a golden record under ownership and survivorship."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.survivorship import FieldPolicy, is_empty, resolve


@dataclass(slots=True)
class MergeResult:
    """The golden attributes after a merge and what changed."""

    attributes: dict[str, Any]
    provenance: dict[str, dict[str, str]]
    # field -> {"before": old, "after": new}, only for fields whose value changed.
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: list[Problem] = field(default_factory=list)


def enforce_ownership(
    values: Mapping[str, Any],
    system: str,
    current: Mapping[str, Any],
    policies: Mapping[str, FieldPolicy],
) -> tuple[dict[str, Any], list[Problem]]:
    """Drop owned fields ``system`` may not write; a differing value is a violation."""
    kept: dict[str, Any] = {}
    violations: list[Problem] = []
    for name, value in values.items():
        policy = policies[name]
        if policy.may_write(system):
            kept[name] = value
        elif value != current.get(name) and not is_empty(value):
            owners = ", ".join(policy.owners)
            violations.append(
                Problem(
                    ProblemKind.OWNERSHIP_VIOLATION,
                    name,
                    "ownership",
                    f"{system} may not write {name}: owned by {owners} "
                    f"(sent {value!r}, golden has {_shown(current.get(name))})",
                    severity="warning",
                )
            )
    return kept, violations


def provenance_of(c: Contribution) -> dict[str, str]:
    """Where a golden value came from."""
    return {"system": c.system, "key": c.key, "version": str(c.version), "at": c.received_at}


def merge(
    current: Mapping[str, Any],
    provenance: Mapping[str, dict[str, str]],
    members: Sequence[Contribution],
    touched: set[str],
    policies: Mapping[str, FieldPolicy],
) -> MergeResult:
    """Recompute the ``touched`` fields from every member contribution.

    Recomputing from the full set of contributions (rather than patching the old value)
    makes the result independent of the order in which contributions arrived.
    """
    attributes = dict(current)
    prov = dict(provenance)
    result = MergeResult(attributes, prov)
    for name in sorted(touched):
        value, winner = resolve(name, members, policies[name])
        before = current.get(name)
        if winner is None:
            attributes.pop(name, None)
            prov.pop(name, None)
        else:
            attributes[name] = value
            prov[name] = provenance_of(winner)
        if value != before:
            result.changes[name] = {"before": before, "after": value}
    return result


def _shown(value: Any) -> str:
    return "no value" if value is None else repr(value)
