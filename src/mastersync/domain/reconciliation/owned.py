"""A consumer's own fields: where a system that is also a source of a domain keeps values
the hub reads from it, so that a difference there is its change, not drift to push over."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mastersync.domain.mapping.objects import CONDITION_KEY
from mastersync.domain.mapping.paths import field_chains
from mastersync.domain.mapping.spec import MappingSpec, ValueOp
from mastersync.domain.reconciliation.compare import FieldDiff


def _chains(value: Any) -> Iterator[str]:
    """The native paths (dotted keys) a mapping value takes its value from. Conditions
    (``when``) decide whether there is a value, they are not one: left out."""
    if isinstance(value, str):
        yield from field_chains(value)
    elif isinstance(value, ValueOp):
        for path in (value.from_, value.each):
            if path:
                yield from field_chains(path)
        for part in value.concat or []:
            yield from _chains(part)
        if value.fields is not None and value.each is None:
            # An object built from several paths; under ``each`` they are the elements'.
            for inner in value.fields.values():
                yield from _chains(inner)
        if value.unit is not None and value.unit.from_path:
            yield from field_chains(value.unit.from_path)
    elif isinstance(value, list):
        for template in value:
            if isinstance(template, str):
                yield from field_chains(template)
                continue
            for name, inner in template.items():
                if name != CONDITION_KEY:
                    yield from _chains(inner)


def _related(path: str, chain: str) -> bool:
    """Whether the field at ``path`` is ``chain``, lies inside it or holds it."""
    return path == chain or path.startswith(f"{chain}.") or chain.startswith(f"{path}.")


@dataclass(frozen=True, slots=True)
class OwnFields:
    """Where a system keeps its own values of a domain: native path -> the canonical fields
    the hub reads from there, as its source, among those the system may write."""

    system: str
    paths: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, system: str, spec: MappingSpec, writable: Collection[str]) -> OwnFields:
        """The paths ``spec`` (the system's inbound mapping) reads into ``writable`` fields
        (canonical, top level: the fields field ownership lets the system write)."""
        allowed = set(writable)
        paths: dict[str, set[str]] = {}
        for target, value in spec.fields.items():
            field = target.split(".", 1)[0]
            if field not in allowed:
                continue
            for chain in _chains(value):
                paths.setdefault(chain, set()).add(field)
        return cls(system, {p: frozenset(f) for p, f in sorted(paths.items())})

    def fields_at(self, path: str) -> frozenset[str]:
        """The canonical fields the hub reads from the native field at ``path`` (none: the
        field is not the system's own, and a difference there is drift)."""
        found: set[str] = set()
        for chain, fields in self.paths.items():
            if _related(path, chain):
                found |= fields
        return frozenset(found)

    def split(self, diffs: Iterable[FieldDiff]) -> tuple[list[FieldDiff], list[FieldDiff]]:
        """(differences in the system's own fields, the others)."""
        own: list[FieldDiff] = []
        other: list[FieldDiff] = []
        for d in diffs:
            (own if self.fields_at(d.field) else other).append(d)
        return own, other

    def describe(self, diffs: Iterable[FieldDiff]) -> str:
        """Which of the system's fields the differences are in, and what the hub reads
        from each: "descr (description)"."""
        parts = []
        for d in diffs:
            fields = ", ".join(sorted(self.fields_at(d.field)))
            parts.append(f"{d.field} ({fields})" if fields and fields != d.field else d.field)
        return ", ".join(parts)
