"""PostgreSQL store: COPY-staged upserts, row locks and advisory locks for concurrent writers."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa

from mastersync.backends.sql.reader import ArrayReader
from mastersync.backends.sql.rows import dumps
from mastersync.backends.sql.store import SqlStore
from mastersync.backends.sql.tables import metadata
from mastersync.backends.sql.uow import SqlUnitOfWork
from mastersync.backends.sql.writer import BatchWriter, Row, on_conflict_update
from mastersync.domain.delivery import Delivery
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.ports.store import ChangeSet, ConcurrencyError, DeliveryResults

log = logging.getLogger("mastersync.store")

# Below this many rows a round trip for COPY costs more than executemany saves. Above it,
# COPY wins even for small batches: executemany in pipeline mode is one statement per row
# (ingesting 50 records: about 300 statements, 17-19 ms of CPU; with COPY 12-15 ms).
_COPY_FROM = 8


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class CopyWriter(BatchWriter):
    """Bulk writes through COPY: straight into append-only tables, via a stage for upserts."""

    mark = "%s"

    def insert(
        self, conn: sa.Connection, table: str, columns: Sequence[str], params: list[Row]
    ) -> None:
        """Append rows with COPY; outbox rows are numbered and committed in one order."""
        if table == "outbox" and params:
            # Positions come from a sequence when rows are inserted, but transactions commit
            # in their own order: a reader could see position 7 committed while 6 is still
            # in flight, move its cursor past 6 and never see it. Holding this lock from the
            # outbox insert to the commit makes commit order the position order. Readers
            # (ACCESS SHARE) are not blocked; writers queue only for their last step.
            conn.exec_driver_sql("LOCK TABLE outbox IN EXCLUSIVE MODE")
        if len(params) < _COPY_FROM:
            super().insert(conn, table, columns, params)
            return
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({_cols(columns)}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)

    def upsert(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        params: list[Row],
        *,
        updates: str | None = None,
        only_if: str = "",
    ) -> None:
        """COPY into a temporary stage, then one INSERT ... ON CONFLICT from it."""
        if len(params) < _COPY_FROM:
            super().upsert(conn, table, columns, key, params, updates=updates, only_if=only_if)
            return
        raw: Any = conn.connection.driver_connection
        stage = f"_stage_{table}"
        cols = _cols(columns)
        with raw.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                f"ON CONFLICT ({_cols(key)}) {on_conflict_update(columns, key, updates, only_if)}"
            )
            cur.execute(f"DELETE FROM {stage}")


def analyze_sql(tables: Sequence[str]) -> str:
    """ANALYZE of the tables' columns the planner can use, JSON documents left out.

    Statistics of a JSON column serve no query (filters on a document's fields are
    expressions, estimated without them), yet computing them from the sampled documents
    was half the cost of analysing golden, xref, outbox and lineage. A table this process
    does not know is analysed whole.
    """
    parts = []
    for name in tables:
        table = metadata.tables.get(name)
        columns = (
            [c.name for c in table.columns if not isinstance(c.type, sa.JSON)]
            if table is not None
            else []
        )
        parts.append(f"{name} ({_cols(columns)})" if columns else name)
    return "ANALYZE " + ", ".join(parts)


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


# Rows written before a table is analysed at all (and between two ANALYZEs, at least).
_ANALYZE_MIN = 1_000
# Each table's rows at its last ANALYZE (-1 or NULL: never analysed, or no such table).
_TABLE_ROWS = (
    "SELECT t, (SELECT c.reltuples FROM pg_class c WHERE c.oid = to_regclass(t)) "
    "FROM unnest(%s::text[]) AS t"
)


class Statistics:
    """Keeps the planner's statistics of the hot tables fresh during bulk loads.

    Autovacuum may be off, and even when on it analyses a table at most once a minute: a
    load that grows a table from nothing leaves the planner believing it is empty, and
    lookups then scan instead of seeking (seen: 7 s per batch lookup at 100,000 rows). So
    after a commit that brings the rows written since a table's last ANALYZE up to the
    rows it had then (at least 1,000), the table is analysed: when it has at most doubled,
    O(log n) times per load. Row counts need nothing more frequent: the planner scales the
    analysed rows per page by the table's current size. What a table held before this
    process wrote to it is read from the catalogue once, so a new process does not analyse
    big tables again and again as its first thousands of rows go in.
    """

    def __init__(self) -> None:
        self.written: dict[str, int] = {}
        # table -> rows this process had written to it at its last ANALYZE.
        self.analysed: dict[str, int] = {}
        # table -> rows it held at its last ANALYZE (catalogue estimate, then counted).
        self.rows: dict[str, int] = {}
        self._before: dict[str, tuple[int | None, int]] = {}
        # The hub's worker threads commit at the same time.
        self._lock = threading.Lock()

    def add(self, table: str, n: int) -> None:
        """Count rows written to a table."""
        if n:
            with self._lock:
                self.written[table] = self.written.get(table, 0) + n

    def count(self, changes: ChangeSet) -> None:
        """Rows a change set adds or updates, per table."""
        for table, n in (
            ("xref", len(changes.contributions)),
            ("golden", len(changes.golden)),
            ("natural_key", len(changes.keys)),
            ("outbox", len(changes.events)),
            ("lineage", len(changes.lineage)),
            ("exceptions", len(changes.exceptions)),
        ):
            if n:
                self.add(table, n)

    def unsized(self) -> list[str]:
        """Tables that may be due but whose rows before this process are not known yet."""
        with self._lock:
            return [
                table
                for table, n in self.written.items()
                if table not in self.rows and n - self.analysed.get(table, 0) >= _ANALYZE_MIN
            ]

    def sized(self, rows: dict[str, float | None]) -> None:
        """Record what tables held at their last ANALYZE (None or -1: never analysed)."""
        with self._lock:
            for table, n in rows.items():
                self.rows.setdefault(table, max(0, int(n or 0)))

    def retry(self, tables: Collection[str]) -> None:
        """Mark tables as not analysed after all (their ANALYZE failed)."""
        with self._lock:
            for table in tables:
                analysed, rows = self._before.pop(table, (None, 0))
                if analysed is None:
                    self.analysed.pop(table, None)
                else:
                    self.analysed[table] = analysed
                self.rows[table] = rows

    def due(self) -> list[str]:
        """Tables whose statistics are stale, marked as analysed."""
        stale = []
        with self._lock:
            for table, n in self.written.items():
                base = self.analysed.get(table)
                rows = self.rows.get(table, 0)
                if n - (base or 0) >= max(_ANALYZE_MIN, rows):
                    stale.append(table)
                    self._before[table] = (base, rows)
                    self.analysed[table] = n
                    self.rows[table] = rows + n - (base or 0)
        return stale


class PostgresUnitOfWork(SqlUnitOfWork):
    """Adds advisory locks so concurrent ingests of the same records take turns."""

    statistics: Statistics

    def write(self, changes: ChangeSet) -> None:
        """Write a batch's changes and count them towards the next ANALYZE."""
        super().write(changes)
        self.statistics.count(changes)

    def enqueue(self, items: Sequence[Delivery]) -> int:
        """Queue deliveries and count them towards the next ANALYZE."""
        queued = super().enqueue(items)
        self.statistics.add("deliveries", queued)
        return queued

    def insert_deliveries(self, items: Sequence[Delivery], *, ids: bool = False) -> None:
        """Write deliveries as they stand and count them towards the next ANALYZE."""
        super().insert_deliveries(items, ids=ids)
        self.statistics.add("deliveries", len(items))

    def record_results(self, results: DeliveryResults) -> None:
        """Record delivery outcomes and count them towards the next ANALYZE."""
        super().record_results(results)
        self.statistics.add("applied", len(results.applied))
        self.statistics.add("lineage", len(results.lineage))
        self.statistics.add("xref", len(results.target_keys))

    def commit(self) -> None:
        """Commit, then refresh statistics of tables that grew a lot."""
        super().commit()
        statistics = self.statistics
        stale: list[str] = []
        try:
            unsized = statistics.unsized()
            if unsized:
                with self.conn.begin():
                    found = self.conn.exec_driver_sql(_TABLE_ROWS, (unsized,)).all()
                statistics.sized({str(t): n for t, n in found})
            stale = statistics.due()
            if stale:
                with self.conn.begin():
                    self.conn.exec_driver_sql(analyze_sql(stale))
        except sa.exc.DBAPIError as exc:
            # The changes are committed; statistics are only a planner's hint. Two
            # processes analysing a table at once fail with "tuple concurrently
            # updated": a later commit tries again.
            log.warning("ANALYZE %s failed (tried again later): %s", stale, exc.orig)
            statistics.retry(stale)

    def load_golden(
        self, master_ids: Collection[str]
    ) -> tuple[list[GoldenRecord], list[Contribution]]:
        """Golden records and their contributions, locked; a deadlock with another writer
        (one that locked the same records in another order) is a ConcurrencyError, which
        callers meet by doing their work again."""
        try:
            return super().load_golden(master_ids)
        except (psycopg.errors.DeadlockDetected, sa.exc.OperationalError) as exc:
            orig = getattr(exc, "orig", exc)
            if not isinstance(orig, psycopg.errors.DeadlockDetected):
                raise
            raise ConcurrencyError(f"deadlock with another writer: {orig}") from exc

    def lock_keys(self, keys: Collection[str]) -> None:
        """Take transaction-scoped advisory locks, in sorted order so no two writers deadlock."""
        ids = sorted({_lock_id(k) for k in keys})
        if ids:
            self.conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k", (ids,)
            )


class PostgresStore(SqlStore):
    """The store at scale."""

    uow_class = PostgresUnitOfWork

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statistics = Statistics()

    def _begin(self, conn: sa.Connection, write: bool) -> None:
        if not write:
            # Under READ COMMITTED every statement takes its own snapshot, in a transaction
            # or not: a read gains nothing from BEGIN and ROLLBACK but their round trips.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.begin()

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[SqlUnitOfWork]:
        """A transaction; writes count towards keeping statistics fresh."""
        with super().unit_of_work(write=write) as uow:
            assert isinstance(uow, PostgresUnitOfWork)
            uow.statistics = self.statistics
            yield uow


# A pooled connection idle longer than this is pinged before use. One back in use sooner
# is not: a busy hub reuses connections within milliseconds, and a server restart in that
# window fails one unit of work, after which the pool drops every older connection.
IDLE_PING_SECONDS = 5.0


def _ping_if_idle(engine: sa.Engine) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool a while only."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc


def open_postgres(url: str) -> PostgresStore:
    """Open a PostgreSQL store from ``postgresql://user@host:port/db``."""
    try:
        parsed = sa.make_url(url).set(drivername="postgresql+psycopg")
    except (sa.exc.ArgumentError, ValueError):
        # Without the parser's words: they may quote a part of the URL, the password too
        # ("user:secret/db" is read as host "user", port "secret").
        raise ValueError(
            "it does not parse; use postgresql://user:password@host:port/database "
            "(an IPv6 host in [brackets], special characters in the password %-encoded)"
        ) from None
    engine = sa.create_engine(
        parsed,
        json_serializer=dumps,
        json_deserializer=orjson.loads,
        # Pinging every checkout cost a round trip per unit of work; only a connection
        # idle for a while is pinged (see _ping_if_idle).
        # The hub runs a store call per loop in worker threads at once (a dispatcher per
        # domain, a deliverer per subscription, the watcher, pollers). Beyond the default
        # 5 + 10, every overflow connection was closed on return and opened again (a new
        # server process each time) for the next transaction.
        pool_size=20,
        max_overflow=20,
        connect_args={"connect_timeout": 10},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        from psycopg.types.json import set_json_loads

        set_json_loads(orjson.loads, dbapi_conn)

    _ping_if_idle(engine)

    return PostgresStore(url, engine, CopyWriter(), ArrayReader(), lock_golden=True)
