"""The store's side of matching: candidate index, decisions, fitted models and merges."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mastersync.domain.golden import GoldenRecord
from mastersync.domain.matching.records import DecisionStatus, MatchDecision, MergeRecord


@dataclass
class MatchChanges:
    """What matching writes alongside a chunk or a merge, in the same transaction."""

    # master id -> (domain, its blocking keys): replaces what was indexed; no keys removes it.
    keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    decisions: list[MatchDecision] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.keys or self.decisions)


@dataclass(frozen=True)
class DecisionFilter:
    """Which match decisions to list."""

    status: DecisionStatus | None = DecisionStatus.OPEN
    domain: str | None = None
    limit: int = 100


class MatchRepository(Protocol):
    """Matching's reads and writes; part of every unit of work."""

    def match_candidates(
        self, domain: str, keys: Collection[str], max_block: int
    ) -> tuple[dict[str, list[str]], int]:
        """(key -> master ids, ids skipped in blocks larger than ``max_block``)."""
        ...

    def write_matching(self, changes: MatchChanges) -> None:
        """Replace index keys and insert or update decisions (one row per pair)."""
        ...

    def decisions_between(
        self, domain: str, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], MatchDecision]:
        """Stored decisions of these pairs (in stored order, see ``pair_key``)."""
        ...

    def decisions_of_domain(self, domain: str) -> dict[tuple[str, str], MatchDecision]:
        """Every stored decision of a domain whose status a steward set or must set."""
        ...

    def match_decisions(self, filter: DecisionFilter) -> list[MatchDecision]:
        """Decisions, newest first."""
        ...

    def match_decision(self, decision_id: int) -> MatchDecision | None:
        """One decision."""
        ...

    def match_model(self, domain: str) -> tuple[dict[str, Any], str] | None:
        """(parameters, fitted at) of a domain's fitted model, None before the first fit."""
        ...

    def save_match_model(
        self, domain: str, parameters: Mapping[str, Any], report: Mapping[str, Any], at: str
    ) -> None:
        """Keep a fitted model for ingest to score with."""
        ...

    def scan_golden(
        self, domain: str, batch: int = 5000, after: str = ""
    ) -> Iterator[GoldenRecord]:
        """Every live (not merged away) golden record of a domain, by master id (those
        after ``after``)."""
        ...

    def natural_keys_of(self, master_ids: Collection[str]) -> list[tuple[str, str, str, str]]:
        """(domain, name, value, master id) of the natural keys pointing at these records."""
        ...

    def save_merge(self, merge: MergeRecord) -> int:
        """Record a merge; its id."""
        ...

    def merge_record(self, merge_id: int) -> MergeRecord | None:
        """One merge."""
        ...

    def merges_of(self, master_id: str) -> list[MergeRecord]:
        """Merges a record took part in (as survivor or loser), newest first."""
        ...

    def finish_unmerge(self, merge_id: int, at: str) -> None:
        """Mark a merge undone."""
        ...
