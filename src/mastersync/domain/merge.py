"""Merge: apply one source contribution to a golden record under ownership and survivorship."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.survivorship import (
    EMPTY,
    FieldPolicy,
    Rule,
    candidates,
    is_empty,
    rule_of,
    score,
)


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
    readonly: Collection[str] | None = None,
) -> tuple[Mapping[str, Any], list[Problem]]:
    """Drop owned fields ``system`` may not write; a differing value is a violation.

    ``readonly`` (the fields owned by others, precomputed per system) spares the loop
    over every field of every record.
    """
    if readonly is None:
        readonly = [name for name in values if not policies[name].may_write(system)]
    blocked = [name for name in readonly if name in values]
    if not blocked:
        return values, []
    kept = {name: value for name, value in values.items() if name not in blocked}
    violations: list[Problem] = []
    for name in blocked:
        value, golden = values[name], current.get(name)
        if value != golden and not is_empty(value):
            owners = ", ".join(policies[name].owners)
            violations.append(
                Problem(
                    ProblemKind.OWNERSHIP_VIOLATION,
                    name,
                    "ownership",
                    f"{system} may not write {name}: owned by {owners} "
                    f"(sent {value!r}, golden has {_shown(golden)})",
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
    makes the result independent of the order in which contributions arrived. This is the
    hottest loop of ingest, so rankings that do not depend on the field's value are
    computed once per merge rather than once per field.
    """
    if not current and len(members) == 1:
        return _first(members[0], touched, policies)
    attributes = dict(current)
    prov = dict(provenance)
    result = MergeResult(attributes, prov)
    rankings: dict[tuple[Rule, tuple[str, ...]], list[Contribution]] = {}
    sources: dict[int, dict[str, str]] = {}
    only = members[0] if len(members) == 1 else None
    for name in sorted(touched):
        policy = policies[name]
        winner: Contribution | None
        if only is not None:
            # One source record (the common case): it wins wherever it may write.
            value = only.values.get(name)
            empty = value is None or value == "" or value == [] or value == {}
            winner = None if empty or not policy.may_write(only.system) else only
        else:
            rule, order = rule_of(policy)
            if rule is Rule.MOST_COMPLETE:
                found = candidates(name, members, policy)
                winner = (
                    max(found, key=lambda c: score(c, rule, order, c.values[name]))
                    if found
                    else None
                )
            else:
                ranking = rankings.get((rule, order))
                if ranking is None:
                    ranking = sorted(members, key=lambda c: score(c, rule, order), reverse=True)
                    rankings[(rule, order)] = ranking
                owners = policy.owners
                # A loop rather than next() over a generator: no generator made per field.
                winner = None
                for c in ranking:
                    if c.values.get(name) not in EMPTY and (not owners or c.system in owners):
                        winner = c
                        break
        before = current.get(name)
        if winner is None:
            value = None
            attributes.pop(name, None)
            prov.pop(name, None)
        else:
            value = winner.values[name]
            attributes[name] = value
            origin = sources.get(id(winner))
            if origin is None:
                origin = sources[id(winner)] = provenance_of(winner)
            prov[name] = origin
        if value != before:
            result.changes[name] = {"before": before, "after": value}
    return result


def _first(
    only: Contribution, touched: set[str], policies: Mapping[str, FieldPolicy]
) -> MergeResult:
    """A new golden record from one source record: every value it may write, as sent."""
    origin = provenance_of(only)
    attributes = {
        name: value
        for name, value in only.values.items()
        if name in touched and value not in EMPTY and policies[name].may_write(only.system)
    }
    # Sorted by name alone (names are unique): cheaper than sorting (name, value) pairs.
    return MergeResult(
        attributes,
        dict.fromkeys(attributes, origin),
        {name: {"before": None, "after": attributes[name]} for name in sorted(attributes)},
    )


def _shown(value: Any) -> str:
    return "no value" if value is None else repr(value)
