"""The SQL connector: keyset-paginated incremental reads and upserts out.

Incremental reads order rows by (cursor column, key) and continue strictly after the last
(cursor, key) read, so rows that share a cursor value across a page boundary are neither
lost nor read twice. A long transaction can still commit a row with a cursor value below
what was already read (its sequence value or timestamp was taken before it committed);
`lookback` re-reads that window on every poll, and ingest skips what it already applied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql.spec import SqlRead, SqlSettings, SqlWrite
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import CheckResult, Page, SourceRecord, TerminalError
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)


def _plain(value: Any) -> Any:
    """Database values as JSON-friendly native values."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


class SqlConnector:
    """Reads and writes one system's database."""

    def __init__(self, settings: SqlSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        url = sa.make_url(settings.url)
        if settings.password is not None:
            url = url.set(password=settings.password)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername == "sqlite" and url.database and url.database != ":memory:":
            url = url.set(database=str(context.path(url.database)))
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._tables: dict[str, sa.Table] = {}
        self._lock = threading.Lock()

    # --- reading ----------------------------------------------------------------------
    def _source(self, spec: SqlRead) -> sa.Subquery:
        if spec.table is not None:
            return sa.select(sa.text("*")).select_from(sa.table(spec.table)).subquery("src")
        return sa.text(spec.query or "").columns().subquery("src")

    def _low(self, spec: SqlRead, value: Any) -> Any:
        if not spec.lookback:
            return value
        if spec.cursor_kind == "timestamp":
            return _earlier(str(value), spec.lookback)
        return value - spec.lookback

    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """Rows changed after the cursor, in (cursor, key) order."""
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        state: dict[str, Any] = orjson.loads(cursor) if cursor else {}
        src = self._source(spec)
        c: sa.ColumnClause[Any] = sa.column(spec.cursor)
        k: sa.ColumnClause[Any] = sa.column(spec.key)
        q = sa.select(sa.text("*")).select_from(src)
        if "at" in state:  # continuing a poll: strictly after the last row read
            last_c, last_k = state["at"]
            q = q.where(sa.or_(c > last_c, sa.and_(c == last_c, k > last_k)))
        elif "hw" in state:  # a new poll: from the high-water mark, minus the lookback
            hw_c, hw_k = state["hw"]
            low = self._low(spec, hw_c)
            if low == hw_c:
                q = q.where(sa.or_(c > low, sa.and_(c == low, k > hw_k)))
            else:  # the whole window, its lower edge included, whatever the key's type
                q = q.where(c >= low)
        q = q.order_by(c, k).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        records: list[Any] = [
            SourceRecord(
                {key: _plain(v) for key, v in row.items()},
                f"{spec.table or 'query'}:{_plain(row[spec.cursor])}/{row[spec.key]}",
            )
            for row in rows
        ]
        hw = state.get("hw")
        if rows:
            last = [_plain(rows[-1][spec.cursor]), _plain(rows[-1][spec.key])]
            if hw is None or (last[0], str(last[1])) > (hw[0], str(hw[1])):
                hw = last
        more = len(rows) == limit
        new_state: dict[str, Any] = {"hw": hw} if hw is not None else {}
        if more:
            new_state["at"] = [_plain(rows[-1][spec.cursor]), _plain(rows[-1][spec.key])]
        return Page(records, orjson.dumps(new_state).decode() if new_state else cursor, more)

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every row of the domain's table or query, by key."""
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        with self.engine.connect() as conn:
            for row in conn.execute(
                sa.select(sa.text("*")).select_from(self._source(spec))
            ).mappings():
                yield str(row[spec.key]), {k: _plain(v) for k, v in row.items()}

    def check(self) -> CheckResult:
        """Connect, and look for every table the settings name."""
        details = []
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                details.append(f"connected to {self.engine.url.render_as_string(True)}")
                names = set(sa.inspect(conn).get_table_names())
        except sa.exc.SQLAlchemyError as exc:
            return CheckResult(
                False, [f"cannot connect: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"]
            )
        ok = True
        for domain, r in self.settings.read.items():
            if r.table is not None and r.table not in names:
                ok = False
                details.append(f"read {domain}: table {r.table} does not exist")
            else:
                details.append(f"read {domain}: {r.table or 'query'} by {r.cursor}, {r.key}")
        for name, w in self.settings.write.items():
            found = w.table in names
            ok = ok and found
            details.append(
                f"write {name}: table {w.table} {'exists' if found else 'does not exist'}"
            )
        return CheckResult(ok, details)

    # --- writing ------------------------------------------------------------------------
    def _table(self, name: str) -> sa.Table:
        with self._lock:
            if name not in self._tables:
                self._tables[name] = sa.Table(name, sa.MetaData(), autoload_with=self.engine)
            return self._tables[name]

    def _write_one(self, conn: sa.Connection, spec: SqlWrite, request: DeliveryRequest) -> str:
        table = self._table(spec.table)
        if request.operation is Operation.DEACTIVATE and request.target_key is not None:
            where = table.c[spec.key] == request.target_key
            if spec.deactivate_column:
                conn.execute(
                    sa.update(table)
                    .where(where)
                    .values({spec.deactivate_column: spec.deactivate_value})
                )
            else:
                conn.execute(sa.delete(table).where(where))
            return request.target_key
        row = {k: v for k, v in request.payload.items() if k in table.c}
        unknown = sorted(set(request.payload) - set(row))
        if unknown:
            raise TerminalFailure(f"table {spec.table} has no column(s) {', '.join(unknown)}")
        key = row.get(spec.key)
        if key is None:
            raise TerminalFailure(
                f"the outbound mapping must fill {spec.key} (the key of {spec.table})"
            )
        if conn.dialect.name in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
            stmt = insert.values(row).on_conflict_do_update(
                index_elements=[spec.key],
                set_={c: insert.excluded[c] for c in row if c != spec.key},
            )
            conn.execute(stmt)
        else:  # any other database: update, then insert what was not there
            done = conn.execute(sa.update(table).where(table.c[spec.key] == key).values(row))
            if done.rowcount == 0:
                conn.execute(sa.insert(table).values(row))
        return str(key)

    def _write(self, requests: list[DeliveryRequest]) -> list[DeliveryAck | DeliveryFailed]:
        out: list[DeliveryAck | DeliveryFailed] = []
        with self.engine.begin() as conn:
            for request in requests:
                spec = self.settings.write.get(request.subscription.split(".", 1)[1])
                if spec is None:
                    out.append(
                        TerminalFailure(
                            f"{self.system}: no 'write' settings for {request.subscription}"
                        )
                    )
                    continue
                savepoint = conn.begin_nested()
                try:
                    key = self._write_one(conn, spec, request)
                    savepoint.commit()
                    out.append(DeliveryAck(key, str(request.version)))
                except DeliveryFailed as exc:
                    savepoint.rollback()
                    out.append(exc)
                except sa.exc.IntegrityError as exc:
                    savepoint.rollback()
                    out.append(TerminalFailure(f"rejected by the database: {exc.orig}"))
        return out

    async def send_batch(
        self, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        """Write a round in one transaction (each record in its own savepoint)."""
        try:
            return await asyncio.to_thread(self._write, requests)
        except sa.exc.OperationalError as exc:
            return [TransientFailure(f"database unavailable: {str(exc).splitlines()[0]}")] * len(
                requests
            )

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Write one record."""
        [outcome] = await self.send_batch([request])
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def _earlier(stamp: str, seconds: float) -> str:
    """A text timestamp moved back, spelt as the source spells it: a database that keeps
    timestamps as text (SQLite) compares them as text, where "2026-03-01T09:31:00" sorts
    after every "2026-03-01 10:…" of the same day."""
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    sep = stamp[10] if len(stamp) > 10 and stamp[10] in " T" else "T"
    out = (moment - dt.timedelta(seconds=seconds)).isoformat(sep=sep)
    return out[:-6] + "Z" if stamp.endswith("Z") and out.endswith("+00:00") else out
