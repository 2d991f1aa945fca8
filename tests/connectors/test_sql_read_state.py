"""The SQL connector's full listing (read_state) is fetched a slice at a time: the README
promises that a reconciliation never holds a listing whole, and on PostgreSQL a plain
execute had psycopg fetch every row before the first one was handed on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql import client
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings

ROWS = 35
SLICE = 10


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def connector(database: str, tmp_path: Path) -> Iterator[SqlConnector]:
    engine = sa.create_engine(
        database.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        conn.exec_driver_sql(
            "CREATE TABLE items (seq INTEGER, item_no TEXT PRIMARY KEY, name TEXT)"
        )
        conn.execute(
            sa.text("INSERT INTO items VALUES (:s, :k, :n)"),
            [{"s": i, "k": f"K{i:03}", "n": f"item {i}"} for i in range(ROWS)],
        )
    settings = SqlSettings.model_validate(
        {
            "type": "sql",
            "url": database,
            "read": {"item": {"table": "items", "cursor": "seq", "key": "item_no"}},
        }
    )
    made = SqlConnector(settings, ConnectorContext("erp", tmp_path))
    yield made
    made.engine.dispose()


def watch(connector: SqlConnector) -> list[tuple[Any, dict[str, Any]]]:
    """(DBAPI cursor, execution options) of every statement the connector runs."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def before(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
    ) -> None:
        seen.append((cursor, dict(context.execution_options)))

    sa.event.listen(connector.engine, "before_cursor_execute", before)
    return seen


def test_a_full_listing_is_fetched_a_slice_at_a_time(
    connector: SqlConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "STATE_SLICE", SLICE)
    seen = watch(connector)
    listing = connector.read_state("item")
    try:
        read = dict(next(listing) for _ in range(2 * SLICE))
        [(cursor, options)] = seen
        # Asked of every database: stream the result, a slice of rows per fetch.
        assert options.get("stream_results") is True and options.get("yield_per") == SLICE
        if connector.engine.dialect.name == "postgresql":
            # A server-side cursor: the client holds a slice, the rest stays on the server
            # (a client cursor's result holds every row once executed).
            assert isinstance(cursor, psycopg.ServerCursor)
            assert cursor.pgresult is not None and cursor.pgresult.ntuples <= SLICE
            assert cursor.rownumber is not None and cursor.rownumber < ROWS
        read.update(listing)
    finally:
        listing.close()  # a failed assertion must not leave the table locked
    # Nothing lost or read twice across the slices, and each record whole.
    assert sorted(read) == [f"K{i:03}" for i in range(ROWS)]
    assert read["K034"] == {"seq": 34, "item_no": "K034", "name": "item 34"}


def test_a_listing_left_unfinished_gives_its_connection_back(connector: SqlConnector) -> None:
    listing = connector.read_state("item")
    next(listing)
    listing.close()  # a reconciliation that stopped on an error
    assert connector.engine.pool.checkedout() == 0
