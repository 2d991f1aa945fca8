"""The ledger: an in-memory view of the golden state that one batch of records touches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mastersync.domain.golden import Contribution, GoldenRecord

XrefKey = tuple[str, str, str]  # (domain, system, source key)
NaturalKeyRef = tuple[str, str, str]  # (domain, key name, normalised value)


@dataclass(slots=True)
class KeyChange:
    """A natural key that now points at a master record (or no longer does)."""

    domain: str
    name: str
    value: str
    master_id: str
    added: bool


@dataclass
class Ledger:
    """What the store said at the start of a batch, plus what the batch changed since.

    The pipeline loads every row a batch can reach before processing it, so the pure
    merge functions never need to ask the store anything.
    """

    xrefs: dict[XrefKey, Contribution] = field(default_factory=dict)
    natural: dict[NaturalKeyRef, str] = field(default_factory=dict)
    golden: dict[str, GoldenRecord] = field(default_factory=dict)
    members: dict[str, dict[tuple[str, str], Contribution]] = field(default_factory=dict)
    # The natural keys as loaded, to tell what the batch changed.
    loaded_natural: dict[NaturalKeyRef, str] = field(default_factory=dict)

    def load_natural(self, keys: dict[NaturalKeyRef, str]) -> None:
        """Add natural-key rows read from the store."""
        self.natural.update(keys)
        self.loaded_natural.update(keys)

    def load_xrefs(self, rows: Iterable[Contribution]) -> None:
        """Add xref rows read from the store."""
        for c in rows:
            self.xrefs[(c.domain, c.system, c.key)] = c

    def load_golden(self, records: Iterable[GoldenRecord], members: Iterable[Contribution]) -> None:
        """Add golden records and all their member contributions."""
        for g in records:
            self.golden[g.master_id] = g
            self.members.setdefault(g.master_id, {})
        for c in members:
            self.members.setdefault(c.master_id, {})[c.ref] = c
            self.xrefs[(c.domain, c.system, c.key)] = c

    def member_list(self, master_id: str) -> list[Contribution]:
        """Every contribution currently linked to a master record."""
        return list(self.members.get(master_id, {}).values())

    def put(
        self, contribution: Contribution, golden: GoldenRecord | None, keys: Iterable[KeyChange]
    ) -> None:
        """Record the effect of one processed source record."""
        previous = self.xrefs.get((contribution.domain, contribution.system, contribution.key))
        if previous is not None and previous.master_id != contribution.master_id:
            self.members.get(previous.master_id, {}).pop(previous.ref, None)
        self.xrefs[(contribution.domain, contribution.system, contribution.key)] = contribution
        self.members.setdefault(contribution.master_id, {})[contribution.ref] = contribution
        if golden is not None:
            self.golden[golden.master_id] = golden
        for k in keys:
            if k.added:
                self.natural[(k.domain, k.name, k.value)] = k.master_id
            elif self.natural.get((k.domain, k.name, k.value)) == k.master_id:
                del self.natural[(k.domain, k.name, k.value)]

    def key_changes(self) -> list[KeyChange]:
        """Net natural-key changes since loading: removals first, then additions."""
        removed, added = [], []
        for ref in self.loaded_natural.keys() | self.natural.keys():
            before, after = self.loaded_natural.get(ref), self.natural.get(ref)
            if before == after:
                continue
            if before is not None:
                removed.append(KeyChange(*ref, before, added=False))
            if after is not None:
                added.append(KeyChange(*ref, after, added=True))
        return removed + added
