"""SQLite specifics: WAL with synchronous=FULL, and a clear message for an outdated schema."""

from __future__ import annotations

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
