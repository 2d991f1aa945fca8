"""The SQL connector against SQLite and PostgreSQL: no row lost or read twice at page
boundaries, late commits caught by the lookback, upserts out."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.db'}"
    return str(request.getfixturevalue("pg_url"))


_OPEN: list[SqlConnector] = []


@pytest.fixture(autouse=True)
def _dispose() -> Any:
    yield
    while _OPEN:
        _OPEN.pop().engine.dispose()


def connector(url: str, tmp_path: Path, **read: Any) -> SqlConnector:
    settings = SqlSettings.model_validate(
        {
            "type": "sql",
            "url": url,
            "read": {"item": {"table": "items", "cursor": "seq", "key": "item_no", **read}},
            "write": {
                "items": {
                    "table": "items_out",
                    "key": "mdm_id",
                    "deactivate_column": "active",
                    "deactivate_value": False,
                }
            },
        }
    )
    made = SqlConnector(settings, ConnectorContext("erp", tmp_path))
    _OPEN.append(made)
    return made


def setup(url: str, rows: list[tuple[int, str, str]]) -> sa.Engine:
    # NullPool: a test that holds no connection open leaves none behind.
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        conn.exec_driver_sql("DROP TABLE IF EXISTS items_out")
        conn.exec_driver_sql(
            "CREATE TABLE items (seq INTEGER, item_no TEXT PRIMARY KEY, name TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE items_out (mdm_id TEXT PRIMARY KEY, title TEXT, active BOOLEAN)"
        )
        for seq, key, name in rows:
            conn.execute(
                sa.text("INSERT INTO items VALUES (:s, :k, :n)"), {"s": seq, "k": key, "n": name}
            )
    return engine  # NullPool: nothing to dispose


def read_all(c: SqlConnector, cursor: str | None, page: int) -> tuple[list[str], str | None]:
    keys = []
    while True:
        p = c.read("item", cursor, page)
        keys += [r.payload["item_no"] for r in p.records if isinstance(r, SourceRecord)]
        cursor = p.cursor
        if not p.more:
            return keys, cursor


def test_rows_sharing_a_cursor_value_are_read_once_across_pages(
    database: str, tmp_path: Path
) -> None:
    rows = [(1, "A"), (2, "B"), (2, "C"), (2, "D"), (2, "E"), (3, "F"), (3, "G")]
    setup(database, [(s, k, k.lower()) for s, k in rows])
    c = connector(database, tmp_path)
    keys, cursor = read_all(c, None, page=2)
    assert keys == ["A", "B", "C", "D", "E", "F", "G"]
    assert read_all(c, cursor, page=2)[0] == []  # nothing new, nothing again


def test_a_late_commit_is_lost_without_lookback_and_caught_with_it(
    database: str, tmp_path: Path
) -> None:
    engine = setup(database, [(1, "A", "a"), (2, "B", "b"), (4, "D", "d")])
    strict, lenient = connector(database, tmp_path), connector(database, tmp_path, lookback=3)
    _, strict_cursor = read_all(strict, None, 10)
    _, lenient_cursor = read_all(lenient, None, 10)
    # A transaction that took sequence value 3 before 4 was written commits only now.
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO items VALUES (3, 'C', 'late')")
    assert read_all(strict, strict_cursor, 10)[0] == []
    again, _ = read_all(lenient, lenient_cursor, 10)
    assert "C" in again  # and the re-read B, D are skipped by ingest as redeliveries


def test_a_real_long_transaction_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """The late commit above, with the sequence and two real connections."""
    setup(pg_url, [])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE SEQUENCE IF NOT EXISTS item_seq")
    c = connector(pg_url, tmp_path, lookback=100)
    slow = psycopg.connect(pg_url)
    slow.execute("INSERT INTO items VALUES (nextval('item_seq'), 'SLOW', 'took its number first')")

    def commit_fast() -> None:
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute(
                "INSERT INTO items VALUES (nextval('item_seq'), 'FAST', 'committed first')"
            )

    fast = threading.Thread(target=commit_fast)
    fast.start()
    fast.join()
    first, cursor = read_all(c, None, 10)
    assert first == ["FAST"]
    c.engine.dispose()
    slow.commit()
    slow.close()
    later, _ = read_all(c, cursor, 10)
    assert "SLOW" in later
    c.engine.dispose()


def test_upserts_and_deactivation_out(database: str, tmp_path: Path) -> None:
    engine = setup(database, [])
    c = connector(database, tmp_path)

    def request(version: int, op: Operation, key: str | None, title: str) -> DeliveryRequest:
        return DeliveryRequest(
            "erp.items",
            "erp",
            "item",
            "itm_1",
            version,
            op,
            f"itm_1:{version}",
            key,
            {"mdm_id": "itm_1", "title": title},
            "t",
        )

    [ack] = asyncio.run(c.send_batch([request(1, Operation.UPSERT, None, "Pen")]))
    assert isinstance(ack, DeliveryAck) and ack.target_key == "itm_1"
    asyncio.run(c.send_batch([request(2, Operation.UPSERT, "itm_1", "Pen v2")]))
    asyncio.run(c.send_batch([request(3, Operation.DEACTIVATE, "itm_1", "Pen v2")]))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT mdm_id, title, active FROM items_out").all() == [
            ("itm_1", "Pen v2", False)
        ]
    bad = DeliveryRequest(
        "erp.items",
        "erp",
        "item",
        "itm_2",
        1,
        Operation.UPSERT,
        "k",
        None,
        {"mdm_id": "itm_2", "colour": "red"},
        "t",
    )
    [failure] = asyncio.run(c.send_batch([bad]))
    assert not isinstance(failure, DeliveryAck)
    assert "no column(s) colour" in str(failure)
    result = c.check()
    assert result.ok
    assert any("read item: items by seq, item_no" in d for d in result.details)
    asyncio.run(c.close())


def test_the_lookback_window_includes_its_lower_edge_whatever_the_key_type(
    database: str, tmp_path: Path
) -> None:
    """Rows at exactly the high-water mark minus the lookback are re-read, with integer keys
    too (comparing an integer key with '' failed on PostgreSQL and matched nothing on
    SQLite)."""
    engine = sa.create_engine(
        database.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        conn.exec_driver_sql("CREATE TABLE items (seq INTEGER, item_no INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 10), (2, 20), (4, 40)")
    c = connector(database, tmp_path, lookback=3)
    keys, cursor = read_all(c, None, 10)
    assert keys == [10, 20, 40]
    with engine.begin() as conn:  # late commits at the window's lower edge and inside it
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 11), (3, 30)")
    again, _ = read_all(c, cursor, 10)
    assert again == [10, 11, 20, 30, 40]


@pytest.mark.parametrize("spelling", ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])
def test_a_timestamp_cursor_in_text_keeps_its_spelling_so_no_row_of_the_day_is_lost(
    tmp_path: Path, spelling: str
) -> None:
    """SQLite keeps timestamps as text, compared as text: a lower bound spelt with 'T'
    where the rows have a space put every later row of the same day below it."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    at = dt.datetime(2026, 3, 1, 10, 0, 0)

    def stamp(minutes: int) -> str:
        return (at + dt.timedelta(minutes=minutes)).strftime(spelling)

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (changed TEXT, item_no TEXT PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO items VALUES ('{stamp(0)}', 'A'), ('{stamp(1)}', 'B')")
    c = connector(url, tmp_path, cursor="changed", cursor_kind="timestamp", lookback=30)
    keys, cursor = read_all(c, None, 10)
    assert keys == ["A", "B"]
    with engine.begin() as conn:  # later the same day, and a late commit inside the window
        conn.exec_driver_sql(f"INSERT INTO items VALUES ('{stamp(5)}', 'C'), ('{stamp(1)}', 'L')")
    again, _ = read_all(c, cursor, 10)
    assert again == ["B", "L", "C"]
