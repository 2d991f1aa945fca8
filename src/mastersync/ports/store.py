"""The store port: golden records, xrefs, lineage, outbox and the exceptions inbox."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from mastersync.domain.delivery import Applied, Delivery, DeliveryStatus, SubscriptionStats
from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import PendingChange, Statement
from mastersync.domain.ledger import KeyChange
from mastersync.domain.records import BatchSummary, ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.domain.versions import Version
from mastersync.ports.matching import MatchRepository
from mastersync.ports.reconciliation import ReconciliationRepository

if TYPE_CHECKING:  # ports.governance imports this module (StoreError)
    from mastersync.ports.governance import ProcessStep


class OpenEntry(NamedTuple):
    """An open inbox entry about a record, as ingest settles them."""

    id: int
    signature: str
    kind: str
    field: str | None
    rule: str | None


class StoreError(Exception):
    """The store cannot do what was asked."""


class ConcurrencyError(StoreError):
    """Another writer changed the same records first; the unit of work should be redone."""


class SchemaOutdated(StoreError):
    """The database schema is older than this version of mastersync expects."""


@dataclass
class ChangeSet:
    """Everything one batch writes; the store writes it in one transaction."""

    contributions: list[Contribution] = field(default_factory=list)
    golden: list[GoldenRecord] = field(default_factory=list)
    keys: list[KeyChange] = field(default_factory=list)
    events: list[ChangeEvent] = field(default_factory=list)
    lineage: list[LineageEntry] = field(default_factory=list)
    exceptions: list[ExceptionEntry] = field(default_factory=list)
    # (exception id, resolution) for entries this batch settled.
    resolutions: list[tuple[int, ExceptionStatus, dict[str, object]]] = field(default_factory=list)
    # Who made these changes and through what, for the audit log ("alice", "api:portal").
    actor: str = "hub"
    channel: str = "ingest"
    # The lifecycle process step this write takes: the store checks and records it in the
    # write's transaction (or raises, and writes neither).
    process_step: ProcessStep | None = None
    # Four-eyes: guarded field changes held for confirmation, and confirmations decided
    # (pending change id, status, person, at) -- deciding a change no longer pending fails.
    holds: list[PendingChange] = field(default_factory=list)
    decisions: list[tuple[int, str, str, str]] = field(default_factory=list)
    # What records taken now say for their guarded fields (written before the holds).
    statements: list[Statement] = field(default_factory=list)
    # Source records a merge, split or unmerge moved: (domain, system, key, new master id).
    # Their pending changes, and processes they started, follow them (the record those
    # are about is the one the source record is in).
    moved_sources: list[tuple[str, str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (
                self.contributions,
                self.golden,
                self.keys,
                self.events,
                self.lineage,
                self.exceptions,
                self.resolutions,
                self.holds,
                self.decisions,
                self.statements,
            )
        )


@dataclass(frozen=True)
class ExceptionFilter:
    """Which inbox entries to list."""

    status: ExceptionStatus | None = ExceptionStatus.OPEN
    kind: str | None = None
    system: str | None = None
    domain: str | None = None
    signature: str | None = None
    source_key: str | None = None
    rule: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class SignatureGroup:
    """Inbox entries that failed the same way."""

    signature: str
    kind: str
    system: str
    domain: str
    field: str | None
    rule: str
    count: int
    example: str


@dataclass(frozen=True)
class DomainCounts:
    """Golden-record figures of one domain."""

    domain: str
    golden: int
    source_records: int
    open_exceptions: int


@dataclass
class DeliveryResults:
    """What a round of deliveries writes, in one transaction."""

    deliveries: list[Delivery] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    # Consumers' own keys for records they created (xref rows of the consumer system).
    target_keys: list[Contribution] = field(default_factory=list)
    lineage: list[LineageEntry] = field(default_factory=list)
    exceptions: list[ExceptionEntry] = field(default_factory=list)
    # Events a replay settled (sent again, or found superseded): (subscription, event id,
    # note, time). Their first delivery, if dead, settles as skipped with the note, and
    # its open dead letter closes with it.
    resent: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ReplaySelection:
    """Which past deliveries of one subscription to send again."""

    subscription: str
    since: str | None = None
    until: str | None = None
    master_id: str | None = None
    event_id: str | None = None
    # Dead-lettered deliveries whose inbox entries carry this signature.
    signature: str | None = None


class DeliveryQueue(Protocol):
    """The store's side of distribution: the outbox as a log, queues, receipts."""

    def outbox_after(
        self, position: int, domains: Collection[str], limit: int, *, changes: bool = True
    ) -> list[tuple[int, ChangeEvent]]:
        """Outbox events after ``position`` (of the domains given, if any), in order; with
        empty changes and source unless ``changes``."""
        ...

    def outbox_head(self) -> int:
        """The newest outbox position (0 when empty)."""
        ...

    def outbox_counts_after(self, position: int) -> dict[str, int]:
        """Domain -> outbox events after ``position``."""
        ...

    def cursor(self, name: str) -> int:
        """How far a named reader has got (0 when new)."""
        ...

    def set_cursor(self, name: str, position: int, at: str) -> None:
        """Move a named reader on."""
        ...

    def take_lease(self, name: str, holder: str, now: str, until: str) -> bool:
        """Hold the named lease until ``until`` if it is free, expired (before ``now``) or
        already ``holder``'s; false if somebody else holds it."""
        ...

    def cursor_state(self, name: str) -> str | None:
        """A source connector's saved cursor (None when it has none yet)."""
        ...

    def save_cursor_state(self, name: str, state: str | None, at: str) -> None:
        """Save a source connector's cursor."""
        ...

    def forget_cursor_states(self, prefix: str, before: str) -> int:
        """Drop saved states whose names start with ``prefix``, saved before ``before``."""
        ...

    def claim_cursor(self, name: str, expected: int, position: int, at: str) -> bool:
        """Move a named reader from ``expected`` to ``position``, only if nobody moved it
        since; false (and nothing moved) if somebody did. Holds the cursor to the commit."""
        ...

    def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Add deliveries; ones already queued (same subscription, event, replay) are kept."""
        ...

    def insert_deliveries(self, deliveries: Sequence[Delivery], *, ids: bool = False) -> None:
        """Add deliveries as they stand (any status, history and outcome), and with ``ids``
        set their ids; none of them may be queued already."""
        ...

    def held_records(
        self, subscription: str, master_ids: Collection[str], due_since: str | None = None
    ) -> set[str]:
        """The records among these with a delivery open in the subscription's queue (a
        replay's too): their new versions must queue behind it. With ``due_since``, only
        deliveries whose next attempt is not due before it (ones being worked on)."""
        ...

    def unqueued_before(self, subscription: str, first: Mapping[str, int]) -> set[str]:
        """The records (master id -> a version) with an earlier version in the outbox that
        the consumer has not applied and the subscription has not queued (a bus handed a
        later version over first)."""
        ...

    def queued_events(self, subscription: str, event_ids: Collection[str]) -> set[str]:
        """The events among these already in the subscription's queue (not as a replay)."""
        ...

    def first_deliveries(
        self, subscription: str, event_ids: Collection[str]
    ) -> dict[str, tuple[DeliveryStatus, str | None]]:
        """event id -> (status, operation) of each event's first delivery (not a replay's)."""
        ...

    def due(
        self, subscription: str, now: str, limit: int, *, ordered: bool = False
    ) -> list[Delivery]:
        """Open deliveries whose time has come and that no earlier open version holds back
        (nor, unless the feed queues in version order, an earlier one not queued yet)."""
        ...

    def events_for(
        self, master_ids: Collection[str], since: Mapping[str, int] | None = None
    ) -> dict[str, list[ChangeEvent]]:
        """Outbox events of the records by master id, oldest first: every one, or from
        version ``since[master id]`` on."""
        ...

    def golden_states(
        self, master_ids: Collection[str]
    ) -> dict[str, tuple[int, dict[str, Any], str | None]]:
        """master id -> (version, attributes, trace id) of the current golden records."""
        ...

    def applied_for(self, subscription: str, master_ids: Collection[str]) -> dict[str, Applied]:
        """What the consumer holds of the records."""
        ...

    def consumer_keys(
        self,
        system: str,
        domain: str,
        master_ids: Collection[str],
        subscriptions: Collection[str] | None = None,
    ) -> dict[str, dict[str, str]]:
        """The keys a system holds records under: master id -> {"key": …, other names: …};
        ``subscriptions``, the system's of ``domain`` if known, narrow the read."""
        ...

    def record_results(self, results: DeliveryResults) -> None:
        """Write the outcome of a round of deliveries."""
        ...

    def open_deliveries(self, subscriptions: Collection[str]) -> int:
        """Deliveries still to be attempted (pending or retrying) in these subscriptions."""
        ...

    def delivery(self, delivery_id: int) -> Delivery | None:
        """One delivery."""
        ...

    def delivery_stats(self, subscriptions: Mapping[str, str]) -> list[SubscriptionStats]:
        """Queue depths, lag (events of its domain not yet queued) and latency, per
        subscription (id -> domain)."""
        ...

    def reopen(self, delivery_id: int, now: str) -> None:
        """Queue a dead delivery again, attempts reset."""
        ...

    def supersede(self, delivery_id: int, note: str) -> None:
        """Settle a dead delivery as skipped: a newer version decided what the consumer holds."""
        ...

    def newest_decided(
        self, subscription: str, master_ids: Collection[str]
    ) -> dict[str, tuple[int, DeliveryStatus]]:
        """Master id -> the newest version whose first delivery was delivered or skipped,
        with that outcome (records with none are left out)."""
        ...

    def decided_after(
        self, subscription: str, master_id: str, version: int
    ) -> tuple[int, DeliveryStatus] | None:
        """The newest version above ``version`` of a record whose first delivery was
        delivered or skipped, with that outcome (None: none was)."""
        ...

    def replay_events(
        self, selection: ReplaySelection, domain: str
    ) -> list[tuple[int, ChangeEvent]]:
        """The events a replay would send again, in log order."""
        ...


class UnitOfWork(DeliveryQueue, MatchRepository, ReconciliationRepository, Protocol):
    """One transaction: reads see a consistent state, writes commit together or not at all."""

    @property
    def shared(self) -> bool:
        """Whether other writers may change rows this unit of work read before it locked
        them (PostgreSQL, which locks rows); False where one writer runs at a time."""
        ...

    # --- hot path: batch reads and one batch write ---
    def load_xrefs(self, domain: str, refs: Collection[tuple[str, str]]) -> list[Contribution]:
        """Xref rows for (system, source key) pairs."""
        ...

    def source_digests(
        self, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, tuple[Version, str]]:
        """Source key -> (applied source version, payload digest) for the keys that exist:
        enough to spot an exact redelivery without reading the whole contribution."""
        ...

    def load_natural_keys(
        self, domain: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(key name, value) -> master id for the keys that exist."""
        ...

    def load_golden(
        self, master_ids: Collection[str]
    ) -> tuple[list[GoldenRecord], list[Contribution]]:
        """Golden records and every contribution linked to them (locked against writers)."""
        ...

    def open_exception_keys(
        self, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, list[OpenEntry]]:
        """Source key -> each open inbox entry about that record."""
        ...

    def open_parse_errors(self, domain: str, system: str, source: str) -> dict[str, list[int]]:
        """Locator -> ids of the open parse errors read from ``source`` (``source:LINE``)."""
        ...

    def lock_keys(self, keys: Collection[str]) -> None:
        """Serialise concurrent writers touching the same records (source or natural keys)."""
        ...

    def write(self, changes: ChangeSet) -> None:
        """Write a batch's changes (raises ConcurrencyError on a lost race)."""
        ...

    def commit(self) -> None:
        """Make every write of this unit durable."""
        ...

    # --- read side ---
    def golden(self, master_id: str) -> GoldenRecord | None:
        """One golden record."""
        ...

    def find_master(self, domain: str | None, system: str, key: str) -> str | None:
        """The master id a system's key is linked to."""
        ...

    def members(self, master_id: str) -> list[Contribution]:
        """The source records linked to a master record."""
        ...

    def lineage(
        self, master_id: str | None = None, trace_id: str | None = None
    ) -> list[LineageEntry]:
        """Lineage entries of a record or of a trace, oldest first."""
        ...

    def events(self, master_id: str) -> list[ChangeEvent]:
        """Outbox events of a record, oldest first."""
        ...

    def exceptions(self, filter: ExceptionFilter) -> list[ExceptionEntry]:
        """Inbox entries, newest first."""
        ...

    def exception(self, exception_id: int) -> ExceptionEntry | None:
        """One inbox entry."""
        ...

    def exception_payloads(self, exception_ids: Collection[int]) -> dict[int, Any]:
        """Inbox entry id -> the payload it keeps, for these entries (one read)."""
        ...

    def exceptions_by_id(self, exception_ids: Collection[int]) -> dict[int, ExceptionEntry]:
        """Inbox entry id -> entry, for those of these ids that exist (one read per 500)."""
        ...

    def exception_groups(self, filter: ExceptionFilter) -> list[SignatureGroup]:
        """Inbox entries grouped by error signature, largest group first."""
        ...

    def settle_exception(
        self, exception_id: int, status: ExceptionStatus, resolution: dict[str, object]
    ) -> None:
        """Mark an inbox entry resolved or ignored, recording who, why and when."""
        ...

    def count_attempt(self, exception_id: int, at: str) -> None:
        """One more attempt at an inbox entry failed."""
        ...

    def save_batch(self, batch: BatchSummary) -> None:
        """Record an ingest run."""
        ...

    def batches(self, limit: int = 50) -> list[BatchSummary]:
        """Recent ingest runs, newest first."""
        ...

    def domain_counts(self) -> list[DomainCounts]:
        """Golden records, source records and open exceptions per domain."""
        ...

    def exception_counts(self) -> dict[tuple[str, str, str], int]:
        """Open inbox entries per (domain, kind, rule)."""
        ...

    def list_golden(self, domain: str, limit: int = 50, offset: int = 0) -> list[GoldenRecord]:
        """Golden records of a domain, most recently changed first."""
        ...


class Store(Protocol):
    """A place golden records live, opened from a URL."""

    url: str

    def unit_of_work(self, *, write: bool = True) -> AbstractContextManager[UnitOfWork]:
        """A transaction; it rolls back unless committed. Read-only ones take no write lock."""
        ...

    def upgrade(self) -> str | None:
        """Bring the schema to this version's head (idempotent); the revision it was at."""
        ...

    def schema_revision(self) -> tuple[str | None, str]:
        """(current revision, head revision)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
