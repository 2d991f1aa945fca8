"""Resolve references (an item key in a price record) into master ids, a batch at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.mapping.values import Ref
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.ports.store import UnitOfWork


@cache
def _adapter(domain: str, field: str) -> TypeAdapter[Any]:
    annotation = DOMAINS[domain].model.model_fields[field].annotation
    return TypeAdapter(annotation if annotation is not None else Any)


def _natural_value(ref: Ref) -> str | None:
    """A reference value normalised the way the referenced domain stores its natural key."""
    assert ref.by is not None
    field = ref.by.split("+")[0]
    try:
        value = _adapter(ref.domain, field).validate_python(ref.value)
    except ValidationError:
        return None
    return None if value is None else str(value).strip().upper()


def refs_in(values: dict[str, Any]) -> list[tuple[str, Ref]]:
    """The (field, reference) pairs a mapped record holds (references are top-level)."""
    return [(k, v) for k, v in values.items() if isinstance(v, Ref)]


def resolve_references(uow: UnitOfWork, records: Sequence[dict[str, Any]]) -> list[list[Problem]]:
    """Replace every Ref in ``records`` with a master id in place; problems per record."""
    # Most domains hold no references: find them once, and skip the rest of the work.
    found_refs = [refs_in(values) for values in records]
    if not any(found_refs):
        return [[] for _ in records]
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_natural: dict[tuple[str, str], set[str]] = defaultdict(set)
    for refs in found_refs:
        for _, ref in refs:
            if ref.by is None:
                by_key[(ref.domain, ref.system)].add(ref.value)
            else:
                value = _natural_value(ref)
                if value is not None:
                    by_natural[(ref.domain, ref.by)].add(value)
    masters: dict[tuple[str, str, str], str] = {}
    for (domain, system), keys in by_key.items():
        for c in uow.load_xrefs(domain, [(system, k) for k in keys]):
            masters[(domain, f"@{system}", c.key)] = c.master_id
    for (domain, name), values_ in by_natural.items():
        for (key_name, value), found_id in uow.load_natural_keys(
            domain, [(name, v) for v in values_]
        ).items():
            masters[(domain, key_name, value)] = found_id
    problems: list[list[Problem]] = []
    for values, refs in zip(records, found_refs, strict=True):
        found: list[Problem] = []
        for field, ref in refs:
            master: str | None
            if ref.by is None:
                master = masters.get((ref.domain, f"@{ref.system}", ref.value))
                how = f"{ref.system} key {ref.value!r}"
            else:
                norm = _natural_value(ref)
                master = masters.get((ref.domain, ref.by, norm)) if norm else None
                how = f"{ref.by} {ref.value!r}"
            if master is None:
                found.append(
                    Problem(
                        ProblemKind.UNKNOWN_REFERENCE,
                        field,
                        "reference",
                        f"no {ref.domain} record with {how} (yet)",
                    )
                )
                del values[field]
            else:
                values[field] = master
        problems.append(found)
    return problems
