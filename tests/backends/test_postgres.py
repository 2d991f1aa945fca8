"""PostgreSQL specifics: the planner statistics kept fresh after commits never fail one."""

from __future__ import annotations

import logging

import pytest

from mastersync.backends.postgres import open_postgres
from mastersync.backends.postgres.store import PostgresStore


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
