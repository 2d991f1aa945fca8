"""SQLite specifics: WAL with synchronous=FULL, and a clear message for an outdated schema."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from mastersync.backends.sqlite import open_sqlite
from mastersync.ports.store import SchemaOutdated


def test_pragmas(tmp_path: Path) -> None:
    store = open_sqlite(f"sqlite:///{tmp_path / 's.db'}")
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()
    fast = open_sqlite(f"sqlite:///{tmp_path / 's.db'}?synchronous=normal")
    with fast.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    fast.close()


def test_a_store_behind_the_schema_says_which_command_to_run(tmp_path: Path) -> None:
    store = open_sqlite(f"sqlite:///{tmp_path / 'old.db'}")
    with pytest.raises(SchemaOutdated, match="mastersync db upgrade"), store.unit_of_work():
        pass
    store.upgrade()
    with store.unit_of_work(write=False) as uow:
        assert uow.golden("x") is None
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"golden", "xref", "outbox", "lineage", "exceptions"} <= tables


def test_a_writer_waits_for_another_process_s_write_lock_then_goes_on(tmp_path: Path) -> None:
    """Another connection (as another process would) holds the write lock; a unit of work
    waits for it in short steps instead of SQLite's long sleeps, and keeps its long timeout."""
    path = tmp_path / "s.db"
    store = open_sqlite(f"sqlite:///{path}")
    store.upgrade()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    with store.unit_of_work() as uow:
        # Got the lock only once the other writer let go.
        assert not other.in_transaction
        assert uow.conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        uow.set_cursor("probe", 1, "2026-11-27T00:00:00Z")
        uow.commit()
    release.join()
    other.close()
    with store.unit_of_work(write=False) as uow:
        assert uow.cursor("probe") == 1
    store.close()
