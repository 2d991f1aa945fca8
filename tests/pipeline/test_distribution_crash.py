"""kill -9 of the hub while changes keep coming: 0 lost versions, 0 applied twice, in order,
and every consumer ends on the golden record's latest version (SQLite; PostgreSQL + NATS).

CI kills the hub a few times per stack; `benchmarks/crash.py` runs the full count."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.backends.test_event_feeds import _drop_stream, nats_url
from tests.chaos import run_chaos


@pytest.mark.slow
def test_sigkill_on_sqlite_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = run_chaos(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", kills=4, seed=11)
    assert result.kills == 4 and result.changes > 100
    assert result.ok, result


@pytest.mark.slow
def test_sigkill_on_postgres_and_nats_loses_and_duplicates_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    bus = nats_url()
    try:
        result = run_chaos(tmp_path, pg_url, bus=bus, kills=4, seed=12)
    finally:
        asyncio.run(_drop_stream(bus))
    assert result.kills == 4 and result.changes > 100
    assert result.ok, result
