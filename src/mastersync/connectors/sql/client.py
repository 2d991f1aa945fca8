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
import uuid
from collections.abc import Callable, Iterator, Mapping
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
    without_nulls,
)

# Rows a full listing (read_state) fetches from the database at a time.
STATE_SLICE = 1000
# Dialects written with INSERT ... ON CONFLICT; any other updates, then inserts.
_UPSERTING = frozenset({"sqlite", "postgresql"})


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


# Cursor values JSON has no type for are saved tagged, so that the next read binds them with
# their type: PostgreSQL will not compare a timestamp or NUMERIC column with text. (datetime
# before date: a datetime is a date.)
_TYPED: tuple[tuple[str, type, Callable[[str], Any]], ...] = (
    ("datetime", dt.datetime, dt.datetime.fromisoformat),
    ("date", dt.date, dt.date.fromisoformat),
    ("decimal", Decimal, Decimal),
    ("uuid", uuid.UUID, uuid.UUID),
)


def _saved(value: Any) -> Any:
    """A cursor or key value as the cursor state keeps it."""
    for tag, kind, _ in _TYPED:
        if isinstance(value, kind):
            return {tag: str(value)}
    return _plain(value)


def _loaded(value: Any) -> Any:
    """A value of the cursor state back with its type; plain values (which is how cursors
    saved before the tags kept every value) as they are."""
    if isinstance(value, dict) and len(value) == 1:
        [(tag, text)] = value.items()
        for name, _, parse in _TYPED:
            if name == tag:
                return parse(text)
    return value


def _like(old: Any, new: Any) -> Any:
    """An older cursor's text for a typed value, as the type just read (to compare them)."""
    if isinstance(old, str) and not isinstance(new, str):
        for _, kind, parse in _TYPED:
            if isinstance(new, kind):
                return parse(old)
    return old


def _past(new: list[Any], old: list[Any]) -> bool:
    """Whether a (cursor, key) read lies after the high-water mark."""
    (c, k), (old_c, old_k) = new, (_like(old[0], new[0]), _like(old[1], new[1]))
    if c != old_c:
        return bool(c > old_c)
    return bool(k > old_k) if type(k) is type(old_k) else str(k) > str(old_k)


def _bound(value: Any) -> Any:
    """A cursor or key value to compare a column with. Text goes untyped, so the database
    reads it as the column's type: a cursor saved before the tags has a timestamp or a
    NUMERIC as text, and PostgreSQL compares no such column with a VARCHAR."""
    if isinstance(value, str):
        return sa.literal(value, sa.types.NullType())
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
        if isinstance(value, dt.datetime):
            return value - dt.timedelta(seconds=spec.lookback)
        if isinstance(value, dt.date):  # from the day the window starts in
            start = dt.datetime.combine(value, dt.time()) - dt.timedelta(seconds=spec.lookback)
            return start.date()
        if spec.cursor_kind == "timestamp":  # text: SQLite's, or an older cursor's
            return _earlier(str(value), spec.lookback)
        if isinstance(value, int | float):
            return value - spec.lookback
        # NUMERIC (or an older cursor's text of it): Decimal takes no float
        return Decimal(str(value)) - Decimal(str(spec.lookback))

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
            last_c, last_k = (_bound(_loaded(v)) for v in state["at"])
            q = q.where(sa.or_(c > last_c, sa.and_(c == last_c, k > last_k)))
        elif "hw" in state:  # a new poll: from the high-water mark, minus the lookback
            hw_c, hw_k = (_loaded(v) for v in state["hw"])
            low = self._low(spec, hw_c)
            if low == hw_c:
                q = q.where(sa.or_(c > _bound(low), sa.and_(c == _bound(low), k > _bound(hw_k))))
            else:  # the whole window, its lower edge included, whatever the key's type
                q = q.where(c >= _bound(low))
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
        hw = [_loaded(v) for v in state["hw"]] if "hw" in state else None
        if rows:
            last = [rows[-1][spec.cursor], rows[-1][spec.key]]
            if hw is None or _past(last, hw):
                hw = last
        more = len(rows) == limit
        new_state: dict[str, Any] = {"hw": [_saved(v) for v in hw]} if hw is not None else {}
        if more:
            new_state["at"] = [_saved(rows[-1][spec.cursor]), _saved(rows[-1][spec.key])]
        return Page(records, orjson.dumps(new_state).decode() if new_state else cursor, more)

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every row of the domain's table or query, by key, fetched a slice at a time."""
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        # A plain execute has psycopg (and most drivers) fetch the whole result before the
        # first row: a 200,000-row table of 1 KB rows took 400 MB. A server-side cursor
        # (PostgreSQL: DECLARE ... FETCH) holds one slice; SQLite steps its rows anyway.
        query = sa.select(sa.text("*")).select_from(self._source(spec))
        streaming = {"stream_results": True, "yield_per": STATE_SLICE}
        # The result is closed even when the listing is left unfinished (a reconciliation
        # that stopped): its server-side cursor goes with it, not with the garbage.
        with (
            self.engine.connect().execution_options(**streaming) as conn,
            conn.execute(query) as result,
        ):
            for row in result.mappings():
                yield str(row[spec.key]), {k: _plain(v) for k, v in row.items()}

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a row of the listing is active, as the subscription's write deactivates
        (its flag column, or a deleted row); None when the listing cannot show it."""
        write = self.settings.write.get(subscription)
        if write is None:
            return None
        if write.deactivate_column is not None:
            if write.deactivate_column not in native:
                return None  # a query that leaves the flag out
            flag = native[write.deactivate_column]
            if flag is None:
                return None  # neither value: nothing says who left it so
            # As read back (_plain): a SQLite flag is 0/1, a NUMERIC one text.
            off = write.deactivate_value
            return not (flag == off or str(flag) == str(off))
        # The hub deletes its rows: one listed from that very table was put back. A listing
        # of another table or a query says nothing of the rows the hub deletes.
        read = self.settings.read.get(domain)
        return True if read is not None and read.table == write.table else None

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
        row = {k: _cell(table.c[k], v) for k, v in request.payload.items() if k in table.c}
        unknown = sorted(set(request.payload) - set(row))
        if unknown:
            raise TerminalFailure(f"table {spec.table} has no column(s) {', '.join(unknown)}")
        key = row.get(spec.key)
        if key is None:
            raise TerminalFailure(
                f"the outbound mapping must fill {spec.key} (the key of {spec.table})"
            )
        # A null clears the column of a row the table has. A new row is inserted without
        # it: a NULL inserted would override the column's default (and break NOT NULL).
        new_row = without_nulls(row)
        if conn.dialect.name in _UPSERTING:
            from sqlalchemy.dialects import postgresql, sqlite

            insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
            # `excluded` holds what the insert would have stored: a left-out column's default,
            # not the null sent, so a null is set as NULL itself.
            changes = {c: sa.null() if v is None else insert.excluded[c] for c, v in row.items()}
            changes.pop(spec.key)
            stmt = (
                insert.values(new_row).on_conflict_do_update(
                    index_elements=[spec.key], set_=changes
                )
                if changes
                # Only the key: nothing to change in a row that is there (SQLAlchemy refuses
                # an empty SET).
                else insert.values(new_row).on_conflict_do_nothing(index_elements=[spec.key])
            )
            conn.execute(stmt)
        else:  # any other database: update, then insert what was not there
            done = conn.execute(sa.update(table).where(table.c[spec.key] == key).values(row))
            if done.rowcount == 0:
                conn.execute(sa.insert(table).values(new_row))
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
                except sa.exc.DBAPIError as exc:
                    if not _refused_record(exc):
                        raise  # the statement or the connection: the whole round
                    savepoint.rollback()
                    out.append(TerminalFailure(_refusal(exc, self._table(spec.table), request)))
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


def _cell(column: sa.Column[Any], value: Any) -> Any:
    """A payload value as its column takes it: a dict or list as JSON in a text column (as the
    file export writes it), where the driver would refuse it or PostgreSQL store an array."""
    if isinstance(value, dict | list) and isinstance(column.type, sa.String):
        return orjson.dumps(value, default=str).decode()
    return value


# Statement errors that are about the values bound (no SQLSTATE: the driver could not bind a
# value at all), unlike a missing privilege or table, which every record of the round meets.
_VALUE_STATES = frozenset({None, "42804", "42846"})  # datatype mismatch, cannot coerce


def _refused_record(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database refused this record's values (a terminal failure of that record)
    rather than the statement or the connection (a transient failure of the round)."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):
        return True
    return (
        isinstance(exc, sa.exc.ProgrammingError)
        and getattr(exc.orig, "sqlstate", None) in _VALUE_STATES
    )


def _refusal(exc: sa.exc.DBAPIError, table: sa.Table, request: DeliveryRequest) -> str:
    """Why the database refused a record, naming the columns whose value does not fit (the
    database's own words seldom name one)."""
    misfits = []
    for name, value in request.payload.items():
        if name not in table.c:
            continue
        column = table.c[name]
        kind, cell = column.type, _cell(column, value)
        # A new row leaves a null out (it was not sent) where the column has a default.
        sent = request.target_key is not None or column.server_default is None
        if cell is None and not column.nullable and sent:
            misfits.append(f"{name}: null, the column is NOT NULL")
        elif isinstance(cell, dict | list) and not isinstance(kind, sa.JSON | sa.ARRAY):
            misfits.append(f"{name}: a {type(cell).__name__}, the column is {kind}")
        elif (
            isinstance(cell, str)
            and isinstance(kind, sa.String)
            and len(cell) > (kind.length or len(cell))
        ):
            misfits.append(f"{name}: {len(cell)} characters, the column is {kind}")
    said = f" ({'; '.join(misfits)})" if misfits else ""
    return f"rejected by the database: {str(exc.orig).strip() or type(exc.orig).__name__}{said}"


def _earlier(stamp: str, seconds: float) -> str:
    """A text timestamp moved back, spelt as the source spells it: a database that keeps
    timestamps as text (SQLite) compares them as text, where "2026-03-01T09:31:00" sorts
    after every "2026-03-01 10:…" of the same day."""
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    sep = stamp[10] if len(stamp) > 10 and stamp[10] in " T" else "T"
    out = (moment - dt.timedelta(seconds=seconds)).isoformat(sep=sep)
    return out[:-6] + "Z" if stamp.endswith("Z") and out.endswith("+00:00") else out
