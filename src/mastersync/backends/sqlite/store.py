"""SQLite store: WAL, synchronous=FULL, one writer at a time via BEGIN IMMEDIATE."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from mastersync.backends.sql.reader import BatchReader
from mastersync.backends.sql.rows import dumps
from mastersync.backends.sql.store import SqlStore
from mastersync.backends.sql.uow import SqlUnitOfWork
from mastersync.backends.sql.writer import BatchWriter

# FULL: a committed batch survives power loss, not just a crash of the process (NORMAL
# in WAL mode may lose the last transactions on power loss, and an acknowledged change
# must never be lost). The cost is one fsync per committed batch, not per record.
SYNCHRONOUS_MODES = ("full", "normal", "extra")


class SqliteStore(SqlStore):
    """The embedded default store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SQLite has one writer at a time. Threads of this process take turns on this lock,
        # woken the moment it is free; left to SQLite's busy handler they sleep in steps of
        # up to 100 ms, which cost the running hub a third of its time.
        self._writer = threading.Lock()

    def _begin(self, conn: sa.Connection, write: bool) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock between two writers that
        # both started as readers. Readers never wait on writers in WAL mode.
        conn.info["begin"] = "BEGIN IMMEDIATE" if write else "BEGIN"
        conn.begin()

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[SqlUnitOfWork]:
        """A transaction; writing ones take turns within the process first."""
        if not write:
            with super().unit_of_work(write=False) as uow:
                yield uow
            return
        with self._writer, super().unit_of_work(write=True) as uow:
            yield uow


# How long a writer waits for another process's write lock before giving up.
_LOCK_TIMEOUT = 30.0


def _take_write_lock(conn: sa.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's writer in steps of at most 2 ms.

    SQLite's own busy handler sleeps in steps growing to 100 ms, so a hub waiting on an
    ingest in another process (or the other way round) lost up to a tenth of a second per
    transaction: most of the delivery latency under load.
    """
    # On the driver's connection: every write transaction runs these three statements, at
    # about 14 µs of CPU each through SQLAlchemy and 2 µs without.
    raw: Any = conn.connection.driver_connection
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + _LOCK_TIMEOUT
        pause = 0.0002
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(_LOCK_TIMEOUT * 1000)}")


def open_sqlite(url: str, *, create: bool = True) -> SqliteStore:
    """Open (and create the folder of) a SQLite store from ``sqlite:///path?synchronous=...``."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        # SQLAlchemy's own words ("Could not parse SQLAlchemy URL") do not say what to write.
        raise ValueError("it does not parse; use sqlite:///path") from None
    query = dict(parsed.query)
    synchronous = str(query.pop("synchronous", "full")).lower()
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous={synchronous} is not one of {', '.join(SYNCHRONOUS_MODES)}")
    database = parsed.database or ""
    if database and database != ":memory:" and create:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        parsed.set(drivername="sqlite+pysqlite", query=query),
        json_serializer=dumps,
        json_deserializer=orjson.loads,
        # Connections move between threads (the hub runs store calls off its event loop);
        # each is used by one thread at a time, which is what SQLite requires.
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(_LOCK_TIMEOUT * 1000)}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        begin = conn.info.pop("begin", "BEGIN")
        if begin == "BEGIN IMMEDIATE":
            _take_write_lock(conn)
        else:
            try:
                conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
            except sqlite3.OperationalError as exc:
                raise sa.exc.OperationalError(begin, None, exc) from exc

    return SqliteStore(url, engine, BatchWriter(), BatchReader(), lock_golden=False)
