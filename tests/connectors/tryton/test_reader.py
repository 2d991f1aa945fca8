"""A model read's passes over a fake server: where the next pass starts when records change
while a pass is under way."""

from __future__ import annotations

from mastersync.connectors.tryton.reader import Cursor, ModelReader
from mastersync.connectors.tryton.spec import TrytonRead
from mastersync.ports.connector import Page, SourceRecord
from tests.connectors.tryton.fake import FakeTryton

SPEC = TrytonRead.model_validate(
    {
        "model": "party.party",
        "fields": ["name"],
        "lookback": 5,
        "children": {
            "addresses": {"model": "party.address", "parent": "party", "fields": ["city"]}
        },
    }
)


def at(minute: int) -> str:
    return f"2026-11-27T10:{minute:02d}:00"


def handed(page: Page) -> list[tuple[int, str, list[str]]]:
    return [
        (int(r.payload["id"]), r.payload["name"], [a["city"] for a in r.payload["addresses"]])
        for r in page.records
        if isinstance(r, SourceRecord)
    ]


def server() -> FakeTryton:
    parties = [
        {"id": i, "name": n, "create_date": at(0), "write_date": None}
        for i, n in ((1, "A"), (2, "B"), (3, "C"))
    ]
    addresses = [{"id": 10, "party": 1, "city": "Bonn", "create_date": at(0), "write_date": None}]
    return FakeTryton(tables={"party.party": parties, "party.address": addresses})


def test_changes_made_to_records_of_earlier_pages_during_a_pass_are_read_next_pass() -> None:
    fake = server()
    reader = ModelReader(fake, SPEC, {})
    first = reader.page(None, 1)  # A as it is at 10:00, the first page of a long first read
    assert handed(first) == [(1, "A", ["Bonn"])] and first.more
    # While the hub ingests that page, A's address is edited, then B and C.
    fake.tables["party.address"][0].update(city="Köln", write_date=at(3))
    fake.tables["party.party"][1].update(name="B2", write_date=at(8))
    second = reader.page(first.cursor, 1)
    assert handed(second) == [(2, "B2", [])] and second.more
    fake.tables["party.party"][2].update(name="C2", write_date=at(10))
    third = reader.page(second.cursor, 1)
    assert handed(third) == [(3, "C2", [])] and not third.more
    # The pass ends where its search began, not at C's 10:10.
    assert Cursor.parse(third.cursor).hw == at(0)

    nxt = reader.page(third.cursor, 100)
    # A's change is read; B and C, already handed over as they are, are not again.
    assert handed(nxt) == [(1, "A", ["Köln"])] and not nxt.more
    assert Cursor.parse(nxt.cursor).hw == at(10)
    assert handed(reader.page(nxt.cursor, 100)) == []


def test_a_pass_that_finds_nothing_keeps_its_place() -> None:
    fake = server()
    reader = ModelReader(fake, SPEC, {})
    cursor = reader.page(None, 100).cursor
    again = reader.page(cursor, 100)
    assert handed(again) == [] and Cursor.parse(again.cursor).hw == at(0)
