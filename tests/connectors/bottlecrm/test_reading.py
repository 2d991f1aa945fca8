"""Change detection by full-list diffing, and how records are shaped: the parts of the
BottleCRM connector that need no server (tests/e2e/real runs the rest against BottleCRM)."""

from __future__ import annotations

from typing import Any

import pytest

from mastersync.connectors.bottlecrm.diff import (
    Cursor,
    Listed,
    changed,
    fingerprint,
    forget_missing,
)
from mastersync.connectors.bottlecrm.reader import ListingReader, embed_contacts, shape
from mastersync.connectors.bottlecrm.spec import BottleCrmContacts, BottleCrmRead


def test_a_fingerprint_depends_on_content_not_on_key_order() -> None:
    a = {"id": "1", "name": "Baumarkt Süd", "custom_fields": {"x": 1, "y": None}}
    b = {"custom_fields": {"y": None, "x": 1}, "name": "Baumarkt Süd", "id": "1"}
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 16
    assert fingerprint(a) != fingerprint({**a, "name": "Baumarkt Sud"})


def test_new_and_changed_records_are_handed_over_and_missing_ones_forgotten() -> None:
    old = Listed.of("a", {"id": "a", "name": "A"})
    same = Listed.of("b", {"id": "b", "name": "B"})
    seen = {"a": old.print, "b": same.print, "gone": "0123456789abcdef"}
    listing = [Listed.of("a", {"id": "a", "name": "A2"}), same, Listed.of("c", {"id": "c"})]
    assert [i.key for i in changed(listing, seen)] == ["a", "c"]
    assert forget_missing(seen, {"a", "b", "c"}) == {"a": old.print, "b": same.print}


def test_the_cursor_round_trips() -> None:
    assert Cursor.parse(None) == Cursor()
    cursor = Cursor({"a": "f" * 16}, "pass-1")
    assert Cursor.parse(cursor.dump()) == cursor
    assert Cursor.parse(Cursor({"a": "1"}).dump()).pass_id is None


def contact(key: str, created: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": key,
        "created_at": created,
        "first_name": key.upper(),
        "last_name": "X",
        "email": f"{key}@example.com",
        "phone": None,
        "title": None,
        "is_active": True,
        "account": None,
        "linked_accounts": [],
        **fields,
    }


def test_contacts_belong_to_their_primary_and_linked_accounts_in_the_order_made() -> None:
    accounts = [{"id": "acc-1"}, {"id": "acc-2"}]
    contacts = [
        contact("later", "2026-02-01T00:00:00Z", account="acc-1"),
        contact("first", "2026-01-01T00:00:00Z", linked_accounts=[{"id": "acc-1", "name": "A"}]),
        contact("both", "2026-01-15T00:00:00Z", account="acc-2", linked_accounts=[{"id": "acc-1"}]),
        contact("archived", "2026-01-02T00:00:00Z", account="acc-1", is_active=False),
        contact("elsewhere", "2026-01-03T00:00:00Z", account="acc-9"),
    ]
    spec = BottleCrmContacts(fields=["first_name", "email"])
    embedded = embed_contacts(accounts, contacts, spec)
    assert [c["id"] for c in embedded["acc-1"]] == ["first", "both", "later"]
    assert embedded["acc-2"] == [{"id": "both", "first_name": "BOTH", "email": "both@example.com"}]
    with_archived = embed_contacts(accounts, contacts, BottleCrmContacts(inactive=True))
    assert [c["id"] for c in with_archived["acc-1"]] == ["first", "archived", "both", "later"]


def test_records_carry_their_id_the_configured_fields_and_their_contacts() -> None:
    spec = BottleCrmRead(
        resource="accounts", fields=["name", "custom_fields"], contacts=BottleCrmContacts()
    )
    rows = [
        {"id": "b", "name": "B", "rollups": {"won_count": 3}, "custom_fields": {}},
        {"id": "a", "name": "A"},  # a field the API left out is null
    ]
    listing = shape(rows, spec, [contact("p", "2026-01-01", account="b")])
    assert [i.key for i in listing] == ["a", "b"]
    assert listing[0].record == {"id": "a", "name": "A", "custom_fields": None, "contacts": []}
    assert listing[1].record["contacts"] == [
        {
            "id": "p",
            "first_name": "P",
            "last_name": "X",
            "email": "p@example.com",
            "phone": None,
            "title": None,
        }
    ]
    # Volatile figures (deal and ticket roll-ups) are not handed over.
    assert "rollups" not in listing[1].record


def test_settings_refuse_contacts_of_contacts_and_an_explicit_id() -> None:
    with pytest.raises(ValueError, match="embedded in accounts only"):
        BottleCrmRead(resource="contacts", contacts=BottleCrmContacts())
    with pytest.raises(ValueError, match="'id' is always read"):
        BottleCrmRead(resource="accounts", fields=["id", "name"])
    assert "updated_at" in BottleCrmRead(resource="contacts").field_names()


class FakeApi:
    """What the reader asks of BottleCRM: complete listings."""

    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        self.accounts = accounts
        self.listings = 0

    def list_all(
        self, resource: str, params: dict[str, str], page_size: int, *, inactive: bool = True
    ) -> list[dict[str, Any]]:
        self.listings += 1
        return [dict(a) for a in self.accounts] if resource == "accounts" else []


def reader_of(api: FakeApi) -> ListingReader:
    return ListingReader(api, 100)  # type: ignore[arg-type]


SPEC = BottleCrmRead(resource="accounts", fields=["name"])


def test_a_pass_is_listed_once_and_handed_over_page_by_page() -> None:
    api = FakeApi([{"id": f"a{i}", "name": f"N{i}"} for i in range(5)])
    reader = reader_of(api)
    keys: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = reader.page("customer", SPEC, cursor, 2)
        keys += [r.payload["id"] for r in page.records]  # type: ignore[union-attr]
        cursor, pages = page.cursor, pages + 1
        if not page.more:
            break
    assert keys == ["a0", "a1", "a2", "a3", "a4"]
    assert (pages, api.listings) == (3, 1)
    # Nothing changed: the next poll lists again and hands over nothing.
    page = reader.page("customer", SPEC, cursor, 2)
    assert (page.records, page.more, api.listings) == ([], False, 2)


def test_after_a_restart_the_pass_is_listed_again_and_goes_on_where_the_cursor_was() -> None:
    api = FakeApi([{"id": f"a{i}", "name": f"N{i}"} for i in range(4)])
    first = reader_of(api).page("customer", SPEC, None, 2)
    assert first.more
    # The process stopped; a new one starts from the saved cursor (its pass is not held).
    api.accounts[0]["name"] = "changed meanwhile"
    page = reader_of(api).page("customer", SPEC, first.cursor, 10)
    assert [r.payload["id"] for r in page.records] == ["a0", "a2", "a3"]  # type: ignore[union-attr]
    assert not page.more
    assert Cursor.parse(page.cursor).pass_id is None


def test_an_account_deleted_in_bottlecrm_is_forgotten_and_made_again_is_new() -> None:
    api = FakeApi([{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])
    reader = reader_of(api)
    cursor = reader.page("customer", SPEC, None, 10).cursor
    api.accounts.pop()
    page = reader.page("customer", SPEC, cursor, 10)
    assert page.records == []
    assert set(Cursor.parse(page.cursor).seen) == {"a"}
    api.accounts.append({"id": "b", "name": "B"})
    assert [r.payload["id"] for r in reader.page("customer", SPEC, page.cursor, 10).records] == [  # type: ignore[union-attr]
        "b"
    ]
    assert dict(reader.state(SPEC)) == {
        "a": {"id": "a", "name": "A"},
        "b": {"id": "b", "name": "B"},
    }


def test_a_page_that_was_not_ingested_is_handed_over_again() -> None:
    api = FakeApi([{"id": f"a{i}", "name": f"N{i}"} for i in range(4)])
    reader = reader_of(api)
    first = reader.page("customer", SPEC, None, 2)
    lost = reader.page("customer", SPEC, first.cursor, 2)  # its ingest failed: not saved
    assert [r.payload["id"] for r in lost.records] == ["a2", "a3"]  # type: ignore[union-attr]
    again = reader.page("customer", SPEC, first.cursor, 2)
    assert [r.payload["id"] for r in again.records] == ["a2", "a3"]  # type: ignore[union-attr]
    assert api.listings == 2
