"""The store's side of reconciliation (a system's cross-references in key order, the newest
events of records and their open dead letters, runs), and what a system's listing says of
itself (which records it holds, whether a listed one is active)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from mastersync.domain.golden import ChangeEvent, Contribution
from mastersync.domain.reconciliation import ReconciliationRun
from mastersync.domain.records import ExceptionEntry


@runtime_checkable
class ListingScope(Protocol):
    """A state reader that says which records its listing (``read_state``) holds."""

    # True: deactivated records are listed too (a table row kept with a flag cleared), so
    # being listed says nothing of being active. False: only active records are listed, so
    # a listed record the hub deactivated is active there again. A reader that does not
    # say is taken to list deactivated records (its listing proves nothing).
    lists_inactive: bool


def lists_inactive(reader: object) -> bool:
    """Whether a reader's listing may hold records deactivated at its system."""
    return reader.lists_inactive if isinstance(reader, ListingScope) else True


@runtime_checkable
class ListingActivity(Protocol):
    """A state reader that tells whether a record its listing holds is active there."""

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a listed record is active at the system, as the subscription (its name
        under the system's outbound) deactivates records there; None: it cannot tell."""
        ...


def listed_active(
    reader: object, domain: str, subscription: str, native: Mapping[str, Any]
) -> bool | None:
    """Whether a listed record is active at a reader's system (None: the reader cannot tell)."""
    if isinstance(reader, ListingActivity):
        return reader.listed_active(domain, subscription, native)
    return None


@runtime_checkable
class ListingOrigin(Protocol):
    """A state reader that says whether its listing is its system's own data."""

    # False: the listing is what the hub delivered, kept apart from where the system's
    # records come from (the sandbox: its database, while the system sends files), so it
    # never stands for the system as a source. A reader that does not say is its system.
    source_of_record: bool


def source_of_record(reader: object) -> bool:
    """Whether a reader lists what its system holds as a source (where the hub reads it)."""
    return reader.source_of_record if isinstance(reader, ListingOrigin) else True


class ReconciliationRepository(Protocol):
    """Reconciliation's reads and writes; part of every unit of work."""

    def scan_xrefs(self, domain: str, system: str, batch: int = 5000) -> Iterator[Contribution]:
        """Every cross-reference of a system's records of a domain, by source key."""
        ...

    def newest_events(
        self, domain: str, master_ids: Collection[str]
    ) -> dict[str, tuple[int, ChangeEvent]]:
        """master id -> (outbox position, event) of the newest event of each record (records
        without one are left out); what a repair sends again."""
        ...

    def open_dead_letters(
        self, domain: str, subscription: str, master_ids: Collection[str]
    ) -> list[ExceptionEntry]:
        """The open dead letters of these records' deliveries in a subscription, oldest
        first; what a replay or repair of them settles."""
        ...

    def save_reconciliation(self, run: ReconciliationRun) -> None:
        """Record a reconciliation run (insert, or update by run id)."""
        ...

    def reconciliations(
        self, system: str | None = None, domain: str | None = None, limit: int = 20
    ) -> list[ReconciliationRun]:
        """Recent runs, newest first."""
        ...
