"""The unit of work over one SQLAlchemy connection: batch reads, batch writes, read side."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mastersync.backends.sql import rows
from mastersync.backends.sql.matching import SqlMatchRepository
from mastersync.backends.sql.queue import SqlDeliveryQueue
from mastersync.backends.sql.reader import BatchReader
from mastersync.backends.sql.reconciliation import SqlReconciliationRepository
from mastersync.backends.sql.tables import (
    batches,
    deliveries,
    exceptions,
    golden,
    lineage,
    outbox,
    xref,
)
from mastersync.backends.sql.writer import BatchWriter
from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import BatchSummary, ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.domain.versions import Version
from mastersync.ports.store import (
    ChangeSet,
    ConcurrencyError,
    DomainCounts,
    ExceptionFilter,
    OpenEntry,
    SignatureGroup,
)

_chunks = rows.in_chunks

# Statements every ingest call runs, built once: building one per call (and its cache
# key) cost a tenth of a millisecond each, a fifth of a one-record push.
_OPEN_PARSE_ERRORS = sa.select(exceptions.c.locator, exceptions.c.id).where(
    exceptions.c.status == "open",
    exceptions.c.kind == ProblemKind.PARSE_ERROR.value,
    exceptions.c.domain == sa.bindparam("domain"),
    exceptions.c.system == sa.bindparam("system"),
    exceptions.c.locator.like(sa.bindparam("pattern"), escape="/"),
)
_BATCH_UPSERTS: dict[str, Any] = {}


def _batch_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE of an ingest run's row (both stores have it)."""
    stmt = _BATCH_UPSERTS.get(dialect)
    if stmt is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(batches)
        stmt = insert.on_conflict_do_update(
            index_elements=[batches.c.batch_id],
            set_={"finished_at": insert.excluded.finished_at, "counts": insert.excluded.counts},
        )
        _BATCH_UPSERTS[dialect] = stmt
    return stmt


class SqlUnitOfWork(SqlDeliveryQueue, SqlMatchRepository, SqlReconciliationRepository):
    """A transaction on a SQL store; see :class:`mastersync.ports.store.UnitOfWork`."""

    def __init__(
        self, conn: sa.Connection, writer: BatchWriter, reader: BatchReader, *, lock_golden: bool
    ) -> None:
        self.conn = conn
        self.writer = writer
        self.reader = reader
        self._lock = lock_golden
        self._committed = False

    @property
    def shared(self) -> bool:
        """Whether other writers may change rows read before they were locked."""
        return self._lock

    # --- hot path: straight on the driver, see reader.py ---------------------------------
    def load_xrefs(self, domain: str, refs: Collection[tuple[str, str]]) -> list[Contribution]:
        """Xref rows for (system, source key) pairs."""
        return self.reader.xrefs(self.conn, domain, refs)

    def source_digests(
        self, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, tuple[Version, str]]:
        """Source key -> (applied source version, payload digest) for the keys that exist."""
        return self.reader.source_digests(self.conn, domain, system, keys)

    def load_natural_keys(
        self, domain: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(key name, value) -> master id for the keys that exist."""
        return self.reader.natural_keys(self.conn, domain, keys)

    def load_golden(
        self, master_ids: Collection[str]
    ) -> tuple[list[GoldenRecord], list[Contribution]]:
        """Golden records and all their contributions; rows are locked where the store can."""
        return self.reader.golden(self.conn, master_ids, self._lock)

    def open_exception_keys(
        self, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, list[OpenEntry]]:
        """Source key -> each open inbox entry about that record."""
        return self.reader.open_exceptions(self.conn, domain, system, keys)

    def open_parse_errors(self, domain: str, system: str, source: str) -> dict[str, list[int]]:
        """Locator -> ids of the open parse errors read from ``source`` (``source:LINE``)."""
        found: dict[str, list[int]] = {}
        prefix = re.sub(r"([/%_])", r"/\1", f"{source}:")
        params = {"domain": domain, "system": system, "pattern": f"{prefix}%"}
        for locator, ex_id in self.conn.execute(_OPEN_PARSE_ERRORS, params):
            found.setdefault(locator, []).append(int(ex_id))
        return found

    def lock_keys(self, keys: Collection[str]) -> None:
        """Serialise writers that touch the same records (no-op where writes are serial)."""

    def write(self, changes: ChangeSet) -> None:
        """Write a batch's changes."""
        try:
            self.writer.write(self.conn, changes)
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyError(f"another writer got there first: {exc.orig}") from exc

    def commit(self) -> None:
        """Commit the transaction."""
        self.conn.commit()
        self._committed = True

    # --- read side ----------------------------------------------------------------------
    def golden(self, master_id: str) -> GoldenRecord | None:
        """One golden record."""
        row = (
            self.conn.execute(sa.select(golden).where(golden.c.master_id == master_id))
            .mappings()
            .first()
        )
        return rows.golden(row) if row else None

    def find_master(self, domain: str | None, system: str, key: str) -> str | None:
        """The master id a system's key is linked to."""
        q = sa.select(xref.c.master_id).where(xref.c.system == system, xref.c.source_key == key)
        if domain:
            q = q.where(xref.c.domain == domain)
        found = self.conn.execute(q.limit(2)).scalars().all()
        return found[0] if len(found) == 1 else None

    def members(self, master_id: str) -> list[Contribution]:
        """The source records linked to a master record."""
        q = (
            sa.select(xref)
            .where(xref.c.master_id == master_id)
            .order_by(xref.c.system, xref.c.source_key)
        )
        return [rows.contribution(r) for r in self.conn.execute(q).mappings()]

    def lineage(
        self, master_id: str | None = None, trace_id: str | None = None
    ) -> list[LineageEntry]:
        """Lineage entries of a record or a trace, oldest first, delivery receipts among
        them (read from the delivered deliveries)."""
        # Receipt rows a hub of an earlier release writes (one still running through the
        # upgrade) are read from its delivery rows like the rest.
        receipt_row = sa.and_(lineage.c.stage == "deliver", lineage.c.outcome == "delivered")
        q = sa.select(lineage).where(sa.not_(receipt_row)).order_by(lineage.c.id)
        if master_id:
            q = q.where(lineage.c.master_id == master_id)
        if trace_id:
            q = q.where(lineage.c.trace_id == trace_id)
        entries = [rows.lineage(r) for r in self.conn.execute(q).mappings()]
        # A trace's receipts are its records' deliveries of the versions it made: those
        # whose event carries the trace.
        traced = {e.master_id for e in entries if e.master_id}
        masters = [master_id] if master_id else sorted(traced)
        receipts = self._receipts(masters, trace_id)
        return _by_time(entries, receipts)

    def _receipts(self, masters: list[str], trace_id: str | None) -> list[LineageEntry]:
        """Receipts of these records' delivered deliveries (of the trace's versions, if
        given)."""
        if not masters:
            return []
        d, o = deliveries.c, outbox.c
        found: list[LineageEntry] = []
        for chunk in _chunks(masters):
            q = (
                sa.select(
                    d.subscription,
                    d.domain,
                    d.master_id,
                    d.version,
                    d.delivered_at,
                    d.attempts,
                    d.latency_ms,
                    d.operation,
                    d.target_key,
                    d.history,
                    d.replay,
                    o.trace_id,
                )
                .join(outbox, o.position == d.position)
                .where(d.master_id.in_(chunk), d.status == "delivered")
                .order_by(d.delivered_at, d.id)
            )
            if trace_id:
                q = q.where(o.trace_id == trace_id)
            found.extend(rows.receipt(r._mapping) for r in self.conn.execute(q))
        found.sort(key=lambda e: e.at)
        return found

    def events(self, master_id: str) -> list[ChangeEvent]:
        """Outbox events of a record, oldest first."""
        q = sa.select(outbox).where(outbox.c.master_id == master_id).order_by(outbox.c.version)
        return [rows.event(r) for r in self.conn.execute(q).mappings()]

    def _filtered(self, q: Any, f: ExceptionFilter) -> Any:
        for column, value in (
            (exceptions.c.status, f.status.value if f.status else None),
            (exceptions.c.kind, f.kind),
            (exceptions.c.system, f.system),
            (exceptions.c.domain, f.domain),
            (exceptions.c.signature, f.signature),
            (exceptions.c.source_key, f.source_key),
            (exceptions.c.rule, f.rule),
        ):
            if value is not None:
                q = q.where(column == value)
        return q

    def exceptions(self, filter: ExceptionFilter) -> list[ExceptionEntry]:
        """Inbox entries, newest first."""
        q = self._filtered(sa.select(exceptions), filter).order_by(exceptions.c.id.desc())
        return [rows.exception(r) for r in self.conn.execute(q.limit(filter.limit)).mappings()]

    def exception(self, exception_id: int) -> ExceptionEntry | None:
        """One inbox entry."""
        row = (
            self.conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id))
            .mappings()
            .first()
        )
        return rows.exception(row) if row else None

    def exceptions_by_id(self, exception_ids: Collection[int]) -> dict[int, ExceptionEntry]:
        """Inbox entry id -> entry, for those of these ids that exist (one read per 500)."""
        wanted = sorted(exception_ids)
        found: dict[int, ExceptionEntry] = {}
        for i in range(0, len(wanted), 500):
            q = sa.select(exceptions).where(exceptions.c.id.in_(wanted[i : i + 500]))
            found.update((int(r["id"]), rows.exception(r)) for r in self.conn.execute(q).mappings())
        return found

    def exception_payloads(self, exception_ids: Collection[int]) -> dict[int, Any]:
        """Inbox entry id -> the payload it keeps, for these entries (one read per 500)."""
        wanted = sorted(exception_ids)
        found: dict[int, Any] = {}
        c = exceptions.c
        for i in range(0, len(wanted), 500):
            q = sa.select(c.id, c.payload).where(c.id.in_(wanted[i : i + 500]))
            found.update({int(r.id): r.payload for r in self.conn.execute(q)})
        return found

    def exception_groups(self, filter: ExceptionFilter) -> list[SignatureGroup]:
        """Inbox entries grouped by error signature, largest group first."""
        c = exceptions.c
        q = sa.select(
            c.signature,
            c.kind,
            c.system,
            c.domain,
            c.field,
            c.rule,
            sa.func.count().label("n"),
            sa.func.max(c.message).label("example"),
        )
        q = (
            self._filtered(q, filter)
            .group_by(c.signature, c.kind, c.system, c.domain, c.field, c.rule)
            .order_by(sa.text("n DESC"))
        )
        return [
            SignatureGroup(r.signature, r.kind, r.system, r.domain, r.field, r.rule, r.n, r.example)
            for r in self.conn.execute(q.limit(filter.limit))
        ]

    def settle_exception(
        self, exception_id: int, status: ExceptionStatus, resolution: dict[str, object]
    ) -> None:
        """Mark an inbox entry resolved or ignored."""
        self.writer.write_exceptions(
            self.conn, ChangeSet(resolutions=[(exception_id, status, resolution)])
        )

    def count_attempt(self, exception_id: int, at: str) -> None:
        """One more attempt at an inbox entry failed."""
        self.conn.execute(
            sa.update(exceptions)
            .where(exceptions.c.id == exception_id)
            .values(attempts=exceptions.c.attempts + 1, updated_at=at)
        )

    def save_batch(self, batch: BatchSummary) -> None:
        """Record an ingest run (insert or update)."""
        self.conn.execute(
            _batch_upsert(self.conn.dialect.name),
            {
                "batch_id": batch.batch_id,
                "system": batch.system,
                "domain": batch.domain,
                "source": batch.source,
                "started_at": batch.started_at,
                "finished_at": batch.finished_at,
                "counts": batch.counts,
            },
        )

    def batches(self, limit: int = 50) -> list[BatchSummary]:
        """Recent ingest runs, newest first."""
        q = sa.select(batches).order_by(batches.c.started_at.desc()).limit(limit)
        return [rows.batch(r) for r in self.conn.execute(q).mappings()]

    def _count_by_domain(self, table: sa.Table, *where: Any) -> dict[str, int]:
        q = sa.select(table.c.domain, sa.func.count()).where(*where).group_by(table.c.domain)
        # Not dict(result): a result has .keys() and would be read as a mapping.
        return {domain: n for domain, n in self.conn.execute(q)}  # noqa: C416

    def domain_counts(self) -> list[DomainCounts]:
        """Golden records, source records and open exceptions per domain."""
        g = self._count_by_domain(golden, golden.c.merged_into.is_(None))
        # Source records only: a consumer's key for a record delivered to it is an xref row
        # too (no values, no digest), and counted, "linked" exceeded what came in.
        x = self._count_by_domain(xref, xref.c.digest != "")
        e = self._count_by_domain(exceptions, exceptions.c.status == "open")
        return [
            DomainCounts(d, g.get(d, 0), x.get(d, 0), e.get(d, 0))
            for d in sorted(set(g) | set(x) | set(e))
        ]

    def exception_counts(self) -> dict[tuple[str, str, str], int]:
        """Open inbox entries per (domain, kind, rule)."""
        c = exceptions.c
        q = (
            sa.select(c.domain, c.kind, c.rule, sa.func.count())
            .where(c.status == "open")
            .group_by(c.domain, c.kind, c.rule)
        )
        return {(d, k, r): n for d, k, r, n in self.conn.execute(q)}

    def list_golden(self, domain: str, limit: int = 50, offset: int = 0) -> list[GoldenRecord]:
        """Golden records of a domain, most recently changed first."""
        q = (
            sa.select(golden)
            .where(golden.c.domain == domain, golden.c.merged_into.is_(None))
            .order_by(golden.c.updated_at.desc(), golden.c.master_id)
            .limit(limit)
            .offset(offset)
        )
        return [rows.golden(r) for r in self.conn.execute(q).mappings()]


def _by_time(entries: list[LineageEntry], receipts: list[LineageEntry]) -> list[LineageEntry]:
    """Entries in their order, each receipt put before the first entry that came after it."""
    if not receipts:
        return entries
    out: list[LineageEntry] = []
    waiting = iter(receipts)
    receipt = next(waiting, None)
    for entry in entries:
        # A dead letter of the same round has the receipt's time: the receipt first, as
        # the round recorded them.
        while receipt is not None and receipt.at <= entry.at:
            out.append(receipt)
            receipt = next(waiting, None)
        out.append(entry)
    if receipt is not None:
        out.append(receipt)
    out.extend(waiting)
    return out
