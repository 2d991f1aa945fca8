"""The SQL connector against SQLite and PostgreSQL: no row lost or read twice at page
boundaries, late commits caught by the lookback, typed cursor columns, upserts out (a record
the database refuses failing alone)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)


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


# A cursor column type on PostgreSQL: its DDL, cursor_kind, the value of row i, a lookback.
TYPED_CURSORS: dict[str, tuple[str, str, Callable[[int], Any], float]] = {
    "timestamp": (
        "TIMESTAMP",
        "timestamp",
        lambda i: dt.datetime(2026, 3, 1, 10, 0) + dt.timedelta(minutes=i),
        90,
    ),
    "timestamptz": (
        "TIMESTAMPTZ",
        "timestamp",
        lambda i: (
            dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
            + dt.timedelta(minutes=i)
        ),
        90,
    ),
    "numeric": ("NUMERIC(12,2)", "number", lambda i: Decimal(i) + Decimal("0.5"), 1.5),
    "date": ("DATE", "timestamp", lambda i: dt.date(2026, 3, 1) + dt.timedelta(days=i), 90),
}
KEYS = [f"A{i:02}" for i in range(12)]


def typed_items(url: str, ddl: str, value: Callable[[int], Any]) -> sa.Engine:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        conn.exec_driver_sql(f"CREATE TABLE items (item_no TEXT PRIMARY KEY, changed {ddl})")
        for i, key in enumerate(KEYS):
            conn.execute(sa.text("INSERT INTO items VALUES (:k, :c)"), {"k": key, "c": value(i)})
    return engine


@pytest.mark.parametrize("with_lookback", [False, True])
@pytest.mark.parametrize("column", list(TYPED_CURSORS))
def test_a_typed_cursor_column_on_postgres_is_continued_page_after_page(
    pg_url: str, tmp_path: Path, column: str, with_lookback: bool
) -> None:
    """The cursor keeps the type of a timestamp, timestamptz, NUMERIC or date column: saved as
    text, the next read compared it with the column and PostgreSQL refused ("operator does not
    exist: timestamp without time zone > character varying"), and a NUMERIC high-water mark
    compared as text put 10.50 below 9.50."""
    ddl, kind, value, lookback = TYPED_CURSORS[column]
    engine = typed_items(pg_url, ddl, value)
    c = connector(
        pg_url, tmp_path, cursor="changed", cursor_kind=kind, lookback=lookback * with_lookback
    )
    keys, cursor = read_all(c, None, page=5)
    assert keys == KEYS
    with engine.begin() as conn:  # a late commit at the last value read, and a new row
        conn.execute(
            sa.text("INSERT INTO items VALUES ('A10x', :late), ('A12', :new)"),
            {"late": value(11), "new": value(12)},
        )
    again, cursor = read_all(c, cursor, page=5)
    if with_lookback:
        assert {"A10x", "A11", "A12"} <= set(again)
    else:
        assert again == ["A12"]
        assert read_all(c, cursor, page=5)[0] == []


# How the cursor state spelt row 4's value before it kept the value's type.
OLD_SPELLING = {
    "timestamp": "2026-03-01T10:04:00",
    "timestamptz": "2026-03-01T10:04:00+00:00",
    "numeric": "4.50",
    "date": "2026-03-05",
}


@pytest.mark.parametrize("state", ["hw", "at"])
@pytest.mark.parametrize("with_lookback", [False, True])
@pytest.mark.parametrize("column", list(TYPED_CURSORS))
def test_a_cursor_saved_with_its_value_as_text_still_continues(
    pg_url: str, tmp_path: Path, column: str, with_lookback: bool, state: str
) -> None:
    """A cursor saved before the values kept their type (a timestamp or NUMERIC as text)
    loads, and reading goes on after it, the lookback window included."""
    ddl, kind, value, lookback = TYPED_CURSORS[column]
    typed_items(pg_url, ddl, value)
    c = connector(
        pg_url, tmp_path, cursor="changed", cursor_kind=kind, lookback=lookback * with_lookback
    )
    old = [OLD_SPELLING[column], "A04"]
    saved = orjson.dumps({"hw": old, "at": old} if state == "at" else {"hw": old}).decode()
    keys, cursor = read_all(c, saved, page=3)
    if with_lookback and state == "hw":  # a new poll: the window below the mark re-read
        assert keys[keys.index("A04") :] == KEYS[4:] and "A03" in keys
    else:
        assert keys == KEYS[5:]
    assert read_all(c, cursor, page=3)[0] == (KEYS[10:] if with_lookback else [])


def upsert(n: int, **payload: Any) -> DeliveryRequest:
    return DeliveryRequest(
        "erp.items",
        "erp",
        "item",
        f"itm_{n}",
        1,
        Operation.UPSERT,
        f"itm_{n}:1",
        None,
        {"mdm_id": f"itm_{n}", **payload},
        "t",
    )


def outbox_table(url: str) -> sa.Engine:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items_out")
        conn.exec_driver_sql(
            "CREATE TABLE items_out (mdm_id TEXT PRIMARY KEY, title VARCHAR(8), qty INTEGER, "
            "levels TEXT, doc JSON, active BOOLEAN)"
        )
    return engine


def test_a_record_the_database_refuses_fails_alone_and_the_rest_of_the_round_is_written(
    database: str, tmp_path: Path
) -> None:
    """A value the driver cannot bind or the database will not store fails its record, for
    good and saying which column; the round's other records are written (the whole round
    rolled back, every record a transient failure, retried and refused forever)."""
    engine = outbox_table(database)
    c = connector(database, tmp_path)
    on_postgres = database.startswith("postgresql")
    out = asyncio.run(
        c.send_batch(
            [
                upsert(1, title="Pen"),
                upsert(2, qty=[1, 2]),  # a list for an integer column
                upsert(3, title="Pencil"),
                upsert(4, qty={"each": 1}),  # PostgreSQL: "cannot adapt type 'dict'"
                upsert(5, title="a title too long"),  # SQLite keeps it: no lengths there
                upsert(6, qty="many"),  # PostgreSQL: DataError; SQLite keeps the text
                upsert(7, title="Ruler"),
            ]
        )
    )
    refused = {2, 4, 5, 6} if on_postgres else {2, 4}
    for n, outcome in enumerate(out, start=1):
        if n in refused:
            assert isinstance(outcome, TerminalFailure), (n, outcome)
        else:
            assert isinstance(outcome, DeliveryAck), (n, outcome)
    assert "qty: a list, the column is INTEGER" in str(out[1])
    assert "qty: a dict, the column is INTEGER" in str(out[3])
    if on_postgres:
        assert "title: 16 characters, the column is VARCHAR(8)" in str(out[4])
        assert 'invalid input syntax for type integer: "many"' in str(out[5])
    with engine.connect() as conn:
        written = sorted(r[0] for r in conn.exec_driver_sql("SELECT mdm_id FROM items_out"))
    assert written == sorted(f"itm_{n}" for n in range(1, 8) if n not in refused)


def test_a_dict_or_list_is_written_as_json_to_a_text_or_json_column(
    database: str, tmp_path: Path
) -> None:
    """As the file export writes them; PostgreSQL stored a list in a text column as an array
    literal ('{1,2}') and SQLite's driver refused both."""
    engine = outbox_table(database)
    c = connector(database, tmp_path)
    levels = [{"level": "each", "qty": 1}, {"level": "box", "qty": 12}]
    [ack] = asyncio.run(c.send_batch([upsert(1, levels=levels, doc={"levels": levels})]))
    assert isinstance(ack, DeliveryAck)
    with engine.connect() as conn:
        [(text, doc)] = conn.exec_driver_sql("SELECT levels, doc FROM items_out").all()
    assert orjson.loads(text) == levels
    assert (orjson.loads(doc) if isinstance(doc, str) else doc) == {"levels": levels}


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.OperationalError("INSERT", {}, psycopg.OperationalError("connection lost")),
        sa.exc.ProgrammingError(
            "INSERT", {}, psycopg.errors.InsufficientPrivilege("permission denied")
        ),
    ],
    ids=["connection", "privilege"],
)
def test_a_connection_or_statement_error_fails_the_whole_round(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: sa.exc.DBAPIError
) -> None:
    """Not one record's fault: no record is failed for good, the round is rolled back and
    tried again (a lost connection as a transient failure of each record, anything else
    raised, which the deliverer takes as one)."""
    engine = outbox_table(pg_url)
    c = connector(pg_url, tmp_path)
    written = c._write_one

    def second_fails(conn: sa.Connection, spec: Any, request: DeliveryRequest) -> str:
        if request.master_id == "itm_2":
            raise error
        return written(conn, spec, request)

    monkeypatch.setattr(c, "_write_one", second_fails)
    batch = [upsert(1, title="Pen"), upsert(2, title="Pencil"), upsert(3, title="Ruler")]
    if isinstance(error, sa.exc.OperationalError):
        out = asyncio.run(c.send_batch(batch))
        assert all(isinstance(o, TransientFailure) for o in out)
    else:
        with pytest.raises(sa.exc.ProgrammingError):
            asyncio.run(c.send_batch(batch))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM items_out").scalar() == 0


def test_a_listed_row_says_whether_it_is_active_as_the_subscriptions_write_deactivates(
    database: str, tmp_path: Path
) -> None:
    """Review: reconciliation could not tell a row the hub deactivated (its flag cleared)
    from one turned on again there, in a listing that holds both."""
    engine = setup(database, [])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO items_out VALUES ('on', 'Pen', TRUE), ('off', 'Ink', FALSE), "
            "('unset', 'Pad', NULL)"
        )
    c = connector(database, tmp_path, table="items_out", cursor="mdm_id", key="mdm_id")
    rows = dict(c.read_state("item"))
    assert {k: c.listed_active("item", "items", row) for k, row in rows.items()} == {
        "on": True,
        "off": False,
        "unset": None,
    }
    # No such subscription, or a listing without the flag column: it cannot tell.
    assert c.listed_active("item", "others", rows["on"]) is None
    assert c.listed_active("item", "items", {"mdm_id": "on", "title": "Pen"}) is None


def test_a_row_listed_from_the_table_the_hub_deletes_from_is_active(tmp_path: Path) -> None:
    def deleting(read: str) -> SqlConnector:
        settings = SqlSettings.model_validate(
            {
                "type": "sql",
                "url": f"sqlite:///{tmp_path / 'erp.db'}",
                "read": {"item": {"table": read, "cursor": "mdm_id", "key": "mdm_id"}},
                "write": {"items": {"table": "items_out", "key": "mdm_id"}},
            }
        )
        made = SqlConnector(settings, ConnectorContext("erp", tmp_path))
        _OPEN.append(made)
        return made

    row = {"mdm_id": "itm_1", "title": "Pen"}
    # Its deactivation deletes the row: listed from that table, it was put back.
    assert deleting("items_out").listed_active("item", "items", row) is True
    # Listed from another table: that says nothing of the rows the hub deletes.
    assert deleting("items").listed_active("item", "items", row) is None
    assert deleting("items_out").listed_active("customer", "items", row) is None


def update(n: int, **payload: Any) -> DeliveryRequest:
    """An upsert of a row the table has (the hub holds its key)."""
    return dataclasses.replace(upsert(n, **payload), target_key=f"itm_{n}")


def defaults_table(url: str) -> sa.Engine:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items_out")
        conn.exec_driver_sql(
            "CREATE TABLE items_out (mdm_id TEXT PRIMARY KEY, title TEXT, "
            "note TEXT DEFAULT 'n/a', qty INTEGER NOT NULL DEFAULT 1, code VARCHAR(4))"
        )
    return engine


def rows_of(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = "SELECT mdm_id, title, note, qty FROM items_out ORDER BY mdm_id"
        return [tuple(r) for r in conn.exec_driver_sql(query)]


@pytest.fixture(params=["upsert", "update-then-insert"])
def statements(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way of writing a row: SQLite's and PostgreSQL's INSERT ... ON CONFLICT, and the
    UPDATE then INSERT of any other database (run on these two)."""
    if request.param == "update-then-insert":
        monkeypatch.setattr("mastersync.connectors.sql.client._UPSERTING", frozenset())
    return str(request.param)


def test_a_null_clears_the_column_of_a_row_the_table_has(
    database: str, tmp_path: Path, statements: str
) -> None:
    """The hub sends null for a field cleared since the row was written: the column is set
    to NULL; a column the payload leaves out keeps its value."""
    engine = defaults_table(database)
    c = connector(database, tmp_path)
    [made] = asyncio.run(c.send_batch([upsert(1, title="Pen", note="blue", qty=3)]))
    assert isinstance(made, DeliveryAck)
    [ack] = asyncio.run(c.send_batch([update(1, note=None)]))
    assert isinstance(ack, DeliveryAck), ack
    assert rows_of(engine) == [("itm_1", "Pen", None, 3)]


def test_a_null_in_a_new_row_is_left_out_so_the_columns_default_applies(
    database: str, tmp_path: Path, statements: str
) -> None:
    """Review: a new row took the NULL sent, over the column's default, and a NOT NULL
    column with a default refused the whole record."""
    engine = defaults_table(database)
    c = connector(database, tmp_path)
    [ack] = asyncio.run(c.send_batch([upsert(1, title=None, note=None, qty=None)]))
    assert isinstance(ack, DeliveryAck), ack
    assert rows_of(engine) == [("itm_1", None, "n/a", 1)]


def test_a_null_a_not_null_column_refuses_fails_the_record_naming_the_column(
    database: str, tmp_path: Path, statements: str
) -> None:
    engine = defaults_table(database)
    c = connector(database, tmp_path)
    asyncio.run(c.send_batch([upsert(1, title="Pen", qty=3)]))
    failure, ack = asyncio.run(c.send_batch([update(1, title="Ink", qty=None), upsert(2)]))
    assert isinstance(failure, TerminalFailure), failure
    assert "qty: null, the column is NOT NULL" in str(failure)
    assert isinstance(ack, DeliveryAck)
    assert rows_of(engine) == [("itm_1", "Pen", "n/a", 3), ("itm_2", None, "n/a", 1)]
    if database.startswith("postgresql"):
        # A new row refused for another column: its null was left out, not the reason.
        [other] = asyncio.run(c.send_batch([upsert(3, qty=None, code="too long")]))
        assert "code: 8 characters" in str(other) and "qty" not in str(other)
