"""The store's side of reconciliation: a system's cross-references in key order, and runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from mastersync.domain.golden import Contribution
from mastersync.domain.reconciliation import ReconciliationRun


class ReconciliationRepository(Protocol):
    """Reconciliation's reads and writes; part of every unit of work."""

    def scan_xrefs(self, domain: str, system: str, batch: int = 5000) -> Iterator[Contribution]:
        """Every cross-reference of a system's records of a domain, by source key."""
        ...

    def save_reconciliation(self, run: ReconciliationRun) -> None:
        """Record a reconciliation run (insert, or update by run id)."""
        ...

    def reconciliations(
        self, system: str | None = None, domain: str | None = None, limit: int = 20
    ) -> list[ReconciliationRun]:
        """Recent runs, newest first."""
        ...
