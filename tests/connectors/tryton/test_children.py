"""Children reached through another field of the record (a product's supplier references
hang on its template), tied to one variant, or limited by a domain: embedded in the right
records, and their changes are changes of those records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mastersync.connectors.tryton.reader import ModelReader
from mastersync.connectors.tryton.spec import TrytonRead
from tests.connectors.tryton.fake import FakeTryton

SPEC = TrytonRead.model_validate(
    {
        "model": "product.product",
        "fields": ["code"],
        "children": {
            "product_suppliers": {
                "model": "purchase.product_supplier",
                "parent": "template",
                "via": "template",
                "only_for": "product",
                "filter": [["code", "!=", None]],
                "fields": ["party", "code"],
            }
        },
    }
)


def at(second: int) -> str:
    return f"2026-11-27T10:00:{second:02d}"


def server() -> FakeTryton:
    products = [
        {"id": 1, "code": "A", "template": 10, "create_date": at(0), "write_date": None},
        {"id": 2, "code": "A-2", "template": 10, "create_date": at(0), "write_date": None},
        {"id": 3, "code": "B", "template": 11, "create_date": at(0), "write_date": None},
    ]
    references = [
        # For the whole template 10, then one for its variant 2 only.
        {"id": 100, "template": 10, "product": None, "party": 7, "code": "S-A"},
        {"id": 101, "template": 10, "product": 2, "party": 8, "code": "S-A2"},
        # Left out by the filter (no code), but still watched.
        {"id": 102, "template": 11, "product": None, "party": 7, "code": None},
    ]
    for r in references:
        r.update(create_date=at(1), write_date=None)
    return FakeTryton(tables={"product.product": products, "purchase.product_supplier": references})


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(r["id"]): r for r in rows}


def test_children_of_the_template_are_embedded_in_each_variant_they_apply_to() -> None:
    fake = server()
    rows = by_id(ModelReader(fake, SPEC, {}).records([1, 2, 3]))
    assert rows[1]["product_suppliers"] == [{"id": 100, "party": 7, "code": "S-A"}]
    assert [c["code"] for c in rows[2]["product_suppliers"]] == ["S-A", "S-A2"]
    assert rows[3]["product_suppliers"] == []
    # The template was read to find the children, not asked for: not handed over.
    assert "template" not in rows[1]
    # Every child's date is the record's change, the filtered one's too.
    assert {r["_changed"] for r in rows.values()} == {at(1)}


def test_a_changed_child_makes_the_records_sharing_its_parent_changed() -> None:
    fake = server()
    reader = ModelReader(fake, SPEC, {})
    since = dt.datetime.fromisoformat(at(5))
    assert reader.changed_ids(since) == []
    fake.tables["purchase.product_supplier"][1]["write_date"] = at(6)  # variant 2's own
    # Both variants of template 10 are read again (it is the parent the change points to);
    # only variant 2's version moves.
    assert reader.changed_ids(since) == [1, 2]
    rows = by_id(reader.records([1, 2]))
    assert (rows[1]["_changed"], rows[2]["_changed"]) == (at(1), at(6))


def test_a_child_of_the_record_itself_works_as_before() -> None:
    fake = FakeTryton(
        tables={
            "party.party": [{"id": 5, "name": "P", "create_date": at(0), "write_date": None}],
            "party.address": [
                {"id": 50, "party": 5, "city": "Köln", "create_date": at(2), "write_date": None}
            ],
        }
    )
    spec = TrytonRead.model_validate(
        {
            "model": "party.party",
            "fields": ["name"],
            "children": {
                "addresses": {"model": "party.address", "parent": "party", "fields": ["city"]}
            },
        }
    )
    [row] = ModelReader(fake, spec, {}).records([5])
    assert row["addresses"] == [{"id": 50, "city": "Köln"}]
    assert row["_changed"] == at(2)
