"""The governance port: API consumers, signing keys, usage, audit log, four-eyes, processes."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mastersync.domain.golden import GoldenRecord
from mastersync.domain.governance.access import ObjectRule
from mastersync.domain.governance.audit import AuditEntry
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.versions import Version
from mastersync.ports.store import StoreError


@dataclass
class Consumer:
    """A program allowed to call the API, and the person answerable for it."""

    name: str
    person: str
    scopes: list[str]
    secret_hash: str
    created_at: str
    system: str | None = None
    partner_channel: str | None = None
    rate_per_minute: int = 600
    quota_per_day: int | None = None
    status: str = "active"
    revoked_at: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """A key that signs access tokens (HMAC-SHA256), known by its id."""

    kid: str
    secret: str
    created_at: str
    retired_at: str | None = None


@dataclass(frozen=True)
class Usage:
    """Calls of one consumer to one route of one API version on one day."""

    consumer: str
    api_version: str
    route: str
    day: str
    calls: int
    last_at: str


@dataclass
class ProcessRecord:
    """One run of a process API: its kind, state and every step so far."""

    id: str
    kind: str
    state: str
    domain: str
    started_by: str
    created_at: str
    updated_at: str
    master_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # One more with every change of the process: a change is made over the version it was
    # decided on, or not at all (compare-and-set; two requests never both move it on).
    version: int = 0


@dataclass(frozen=True)
class ProcessStep:
    """A process step (or start) being written: what the store checks, in the transaction
    that writes the step's record, before it records the step there too.

    The step is recorded only if its write took effect (the golden record's ``field`` is
    ``value`` afterwards: survivorship or ownership can keep another system's value), only
    over the process version it was decided on (``expected``; None for a start, which
    inserts the process, refused while another process of ``open_states`` is open on the
    record), and only if the record and the source record are as the step read them
    (``golden_version`` and ``source_version``): the step restates the source record as it
    read it, and a write landing in between would otherwise be reverted.
    """

    # The process as the step leaves it (state, history with the step, updated_at).
    process: ProcessRecord
    # The source record the step writes (the starter's), and the field and value it sets.
    system: str
    key: str
    field: str
    value: str
    request_id: str
    expected: int | None = None
    # The record the step read (None for a start: it writes the caller's values).
    master_id: str | None = None
    golden_version: int | None = None
    source_version: Version | None = None
    # (kind, state) pairs of processes that still have a step to take.
    open_states: frozenset[tuple[str, str]] = frozenset()


class ProcessConflict(StoreError):
    """Another request changed the process first, or opened another one on its record
    (``process_id``): the step was not taken, and doing it again would not be what the
    caller decided."""

    def __init__(self, message: str, process_id: str | None = None) -> None:
        super().__init__(message)
        self.process_id = process_id


class StaleStep(StoreError):
    """The record or source record changed between the step's read and its write: the
    step was not taken, and is taken again on what is stored now."""


class StepNotTaken(StoreError):
    """The step's write did not take effect on the golden record: another source record's
    value of ``field`` stays (``holder``: its provenance, system and key)."""

    def __init__(
        self, master_id: str, field: str, wanted: Any, value: Any, holder: Mapping[str, str]
    ) -> None:
        super().__init__(
            f"{master_id}: {field} stays {value!r} from {holder.get('system', 'no source')}, "
            f"not {wanted!r}"
        )
        self.master_id, self.field, self.wanted, self.value = master_id, field, wanted, value
        self.holder = dict(holder)


@dataclass(frozen=True)
class Page:
    """One page of golden records."""

    records: list[GoldenRecord]
    # Systems linked to each record (for object-level rules and responses).
    linked: dict[str, list[str]]


class Governance(Protocol):
    """Where the API's own state lives (the store's database)."""

    def add_consumer(self, consumer: Consumer) -> None:
        """Register a consumer (a StoreError if the name is taken)."""
        ...

    def consumer(self, name: str) -> Consumer | None:
        """One consumer."""
        ...

    def consumers(self) -> list[Consumer]:
        """Every consumer, by name."""
        ...

    def revoke(self, name: str, at: str) -> bool:
        """Revoke a consumer's credential; False if it has none active."""
        ...

    def signing_keys(self, *, include_retired: bool = False) -> list[SigningKey]:
        """Signing keys, newest first."""
        ...

    def add_signing_key(self, key: SigningKey) -> None:
        """Add a key; it signs from now on."""
        ...

    def retire_key(self, kid: str, at: str) -> bool:
        """Stop a key verifying tokens; False if unknown or already retired."""
        ...

    def add_usage(self, rows: Collection[Usage]) -> None:
        """Add call counts."""
        ...

    def usage(self) -> list[Usage]:
        """Call counts, per consumer, version, route and day."""
        ...

    def audit(
        self, master_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit entries in order (of one record, or all after a sequence number)."""
        ...

    def audit_all(self, batch: int = 5000) -> Iterator[AuditEntry]:
        """Every audit entry in order, read in batches."""
        ...

    def unaudited(self, limit: int = 100) -> list[tuple[str, int]]:
        """(master id, version) of outbox events since auditing began with no audit entry."""
        ...

    def pending(
        self, master_id: str | None = None, status: str | None = "pending", limit: int = 100
    ) -> list[PendingChange]:
        """Held changes, oldest first."""
        ...

    def pending_change(self, change_id: int) -> PendingChange | None:
        """One held change."""
        ...

    def save_process(self, process: ProcessRecord) -> None:
        """Insert or update a process unconditionally (its version counts the change)."""
        ...

    def update_process(self, process: ProcessRecord, expected: int) -> bool:
        """Replace a process if its stored version is still ``expected`` (it becomes
        ``expected + 1``); False if another change came first."""
        ...

    def process(self, process_id: str) -> ProcessRecord | None:
        """One process."""
        ...

    def processes_of(self, master_id: str) -> list[ProcessRecord]:
        """The processes started for a record, or for one merged into it, oldest first."""
        ...

    def search(
        self,
        domain: str,
        rule: ObjectRule,
        *,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
        where: Mapping[str, str | Collection[str]] | None = None,
    ) -> Page:
        """Golden records of a domain within an object rule: by master id after ``after``
        (keyset) or most recently changed first from ``offset``; ``where`` keeps records
        whose top-level text field equals a value (or one of several)."""
        ...

    def linked_systems(self, master_ids: Collection[str]) -> dict[str, list[str]]:
        """Systems with a cross-reference to each record."""
        ...
