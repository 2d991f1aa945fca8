"""PostgreSQL specifics: planner statistics kept fresh cheaply; a failed ANALYZE fails no commit."""

from __future__ import annotations

import logging

import pytest

from mastersync.backends.postgres import open_postgres
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
