"""PostgreSQL specifics: planner statistics kept fresh cheaply; a failed ANALYZE fails no commit;
reads without a transaction; pooled connections pinged only after sitting idle."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.pq import TransactionStatus

from mastersync.backends.postgres import open_postgres
from mastersync.backends.postgres import store as pg_store
from mastersync.backends.postgres.store import PostgresStore, Statistics, analyze_sql


def test_a_failed_analyze_after_a_commit_loses_nothing_and_is_tried_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_postgres(pg_url)
    store.upgrade()
    assert isinstance(store, PostgresStore)
    # A table that cannot be analysed (as when another process analyses it at that moment).
    store.statistics.add("no_such_table", 5_000)
    with caplog.at_level(logging.WARNING, "mastersync.store"), store.unit_of_work() as uow:
        uow.set_cursor("probe", 7, "2026-11-27T00:00:00Z")
        uow.commit()
    assert "ANALYZE ['no_such_table'] failed" in caplog.text
    with store.unit_of_work(write=False) as uow:
        assert uow.cursor("probe") == 7
    assert store.statistics.due() == ["no_such_table"]
    store.close()


def test_tables_are_analysed_each_time_they_have_doubled() -> None:
    stats = Statistics()
    stats.add("xref", 999)
    assert stats.unsized() == []  # below the minimum: not even worth a catalogue lookup
    stats.add("xref", 1)
    assert stats.unsized() == ["xref"]
    stats.sized({"xref": -1.0})  # never analysed
    assert stats.due() == ["xref"]
    stats.add("xref", 999)
    assert stats.due() == []
    stats.add("xref", 1)  # 1,000 written since the table held 1,000
    assert stats.due() == ["xref"]
    stats.add("xref", 1_999)
    assert stats.due() == []
    stats.add("xref", 1)
    assert stats.due() == ["xref"]


def test_a_new_process_does_not_analyse_a_big_table_after_its_first_thousand_rows() -> None:
    stats = Statistics()
    stats.add("lineage", 5_000)
    stats.sized({"lineage": 100_000.0})
    assert stats.due() == []
    stats.add("lineage", 95_000)
    assert stats.due() == ["lineage"]


def test_a_failed_analyze_leaves_the_table_due() -> None:
    stats = Statistics()
    stats.sized({"golden": 4_000.0})
    stats.add("golden", 4_000)
    assert stats.due() == ["golden"]
    stats.retry(["golden"])
    assert stats.due() == ["golden"]


def test_analyze_leaves_json_documents_out() -> None:
    sql = analyze_sql(["golden", "no_such_table"])
    assert sql.startswith('ANALYZE golden ("master_id", "domain", "version", "lifecycle_state"')
    assert '"attributes"' not in sql and '"provenance"' not in sql
    assert sql.endswith(", no_such_table")


def test_analyze_of_the_hot_tables_runs(pg_url: str) -> None:
    store = open_postgres(pg_url)
    store.upgrade()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            analyze_sql(["xref", "golden", "natural_key", "outbox", "lineage", "exceptions"])
        )
    store.close()


def _pids(store: PostgresStore) -> set[int]:
    with store.unit_of_work(write=False) as uow:
        conn: Any = uow.conn  # type: ignore[attr-defined]
        return {conn.connection.driver_connection.info.backend_pid}


def test_a_read_runs_without_a_transaction_and_a_write_within_one(pg_url: str) -> None:
    store = open_postgres(pg_url)
    store.upgrade()
    for write, expected in ((False, TransactionStatus.IDLE), (True, TransactionStatus.INTRANS)):
        with store.unit_of_work(write=write) as uow:
            uow.outbox_head()
            conn: Any = uow.conn  # type: ignore[attr-defined]
            assert conn.connection.driver_connection.info.transaction_status == expected
    # A read after a write on the same pooled connection is in no transaction again, and
    # a write after a read is in one.
    with store.unit_of_work() as uow:
        uow.set_cursor("probe", 3, "2026-11-28T00:00:00Z")
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        assert uow.cursor("probe") == 3
    store.close()


def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dropped the connection (a restart, an idle timeout) while it sat in the
    pool: the ping before reuse notices, and the unit of work runs on a new one."""
    store = open_postgres(pg_url)
    store.upgrade()
    (dead,) = _pids(store)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [dead])
    monkeypatch.setattr(pg_store, "IDLE_PING_SECONDS", 0.0)
    with store.unit_of_work() as uow:
        uow.set_cursor("probe", 5, "2026-11-28T00:00:00Z")
        uow.commit()
    assert dead not in _pids(store)
    with store.unit_of_work(write=False) as uow:
        assert uow.cursor("probe") == 5
    store.close()


def test_a_connection_back_in_use_at_once_is_not_pinged(pg_url: str) -> None:
    """A busy hub reuses pooled connections within milliseconds: no round trip per checkout."""
    store = open_postgres(pg_url)
    store.upgrade()
    pings = []
    sa.event.listen(store.engine, "checkout", lambda *_: pings.append(1))
    real = store.engine.dialect.do_ping
    calls: list[int] = []

    def counting(dbapi_conn: Any) -> bool:
        calls.append(1)
        return real(dbapi_conn)

    store.engine.dialect.do_ping = counting  # type: ignore[method-assign]
    for _ in range(20):
        with store.unit_of_work(write=False) as uow:
            uow.outbox_head()
    assert len(pings) >= 20 and calls == []
    store.close()


def test_a_deadlock_on_golden_rows_is_a_concurrency_error(pg_url: str) -> None:
    """Locked in one order by load_golden, but another writer may lock them otherwise (a
    merge, say): the deadlock PostgreSQL breaks is a ConcurrencyError, which ingest and
    remerge meet by doing their work again, not a failure."""
    import threading

    from mastersync.pipeline.ingest import Ingestor
    from mastersync.ports.connector import SourceRecord
    from mastersync.ports.store import ConcurrencyError
    from tests.support import compiled, erp_item

    store = open_postgres(pg_url)
    try:
        store.upgrade()
        Ingestor(store, compiled()).ingest(
            "erp", "item", [SourceRecord(erp_item(sku, 1, name="Pen")) for sku in ("A1", "A2")]
        )
        with store.unit_of_work(write=False) as uow:
            found = [uow.find_master("item", "erp", sku) for sku in ("A1", "A2")]
        first, second = sorted(m for m in found if m)
        lock = "SELECT 1 FROM golden WHERE master_id = %s FOR UPDATE"
        with psycopg.connect(pg_url) as other:
            other.execute("SET deadlock_timeout = '10s'")  # the store's side detects it first
            other.execute(lock, (second,))
            taken = threading.Timer(0.5, lambda: other.execute(lock, (first,)))
            taken.start()
            with pytest.raises(ConcurrencyError, match="deadlock"), store.unit_of_work() as uow:
                uow.load_golden([first, second])
            taken.join()
            other.rollback()
    finally:
        store.close()
