"""Stock quantities per product and location: which positions a stock move changes, the
quantities as text, and the reader's passes (full, then by stock moves) over a fake server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mastersync.connectors.tryton.reader import Cursor
from mastersync.connectors.tryton.spec import TrytonRead, TrytonSettings, TrytonStock
from mastersync.connectors.tryton.stock import (
    StockReader,
    position_key,
    quantity_text,
    touched_positions,
)
from mastersync.ports.connector import SourceRecord
from tests.connectors.tryton.fake import FakeTryton


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.0, "12"),
        (0.1 + 0.2, "0.3"),
        (-0.0, "0"),
        (1e-12, "0"),
        (-3.5, "-3.5"),
        (1e16, "10000000000000000"),
        (None, None),
    ],
)
def test_quantities_are_decimal_text_without_float_noise(value: Any, text: str | None) -> None:
    assert quantity_text(value) == text


# Tryton's default locations: a warehouse (left 3, right 10) holding input, output and
# storage zones; supplier and customer locations outside it; a second warehouse.
LOCATIONS: list[dict[str, Any]] = [
    {"id": 1, "code": "IN", "type": "storage", "parent": 5, "left": 4, "right": 5},
    {"id": 2, "code": "OUT", "type": "storage", "parent": 5, "left": 6, "right": 7},
    {"id": 3, "code": "STO", "type": "storage", "parent": 5, "left": 8, "right": 9},
    {"id": 5, "code": "WH", "type": "warehouse", "parent": None, "left": 3, "right": 10},
    {"id": 6, "code": "SUP", "type": "supplier", "parent": None, "left": 13, "right": 14},
    {"id": 7, "code": "CUS", "type": "customer", "parent": None, "left": 17, "right": 18},
    {"id": 9, "code": "WH2", "type": "warehouse", "parent": None, "left": 30, "right": 33},
    {"id": 10, "code": "STO2", "type": "storage", "parent": 9, "left": 31, "right": 32},
]
BOUNDS = {r["id"]: (r["left"], r["right"]) for r in LOCATIONS}


def move(i: int, product: int, src: int, dst: int, created: str, written: str | None = None) -> Any:
    return {
        "id": i,
        "product": product,
        "from_location": src,
        "to_location": dst,
        "create_date": f"2026-11-27T10:{created}",
        "write_date": f"2026-11-27T10:{written}" if written else None,
    }


def test_a_move_changes_each_configured_location_holding_one_of_its_ends() -> None:
    warehouses = {5: BOUNDS[5], 9: BOUNDS[9]}
    moves = [
        move(1, 11, 6, 3, "00:00"),  # supplier -> storage zone of WH
        move(2, 12, 3, 10, "00:01"),  # WH -> WH2: both change
        move(3, 13, 6, 7, "00:02"),  # supplier -> customer: no warehouse's stock
    ]
    nested = {i: BOUNDS[i] for i in (3, 6, 7, 10)}
    assert touched_positions(moves, nested, warehouses) == [(11, 5), (12, 5), (12, 9)]
    # A storage zone configured itself counts its own moves only.
    assert touched_positions(moves, nested, {3: BOUNDS[3]}) == [(11, 3), (12, 3)]
    assert position_key(11, 5) == "11@5"


def server() -> FakeTryton:
    return FakeTryton(
        tables={
            "stock.location": [dict(r) for r in LOCATIONS],
            "product.product": [{"id": 11, "code": "A"}, {"id": 12, "code": "B"}],
            "stock.move": [move(1, 11, 6, 3, "00:00")],
        },
        quantities={(11, 5): 12.0},
    )


def reader(fake: FakeTryton, **settings: Any) -> StockReader:
    spec = TrytonStock.model_validate({"kind": "stock", "fields": ["code"], **settings})
    return StockReader(fake, spec, {"company": 1})


def read(r: StockReader, cursor: str | None, limit: int = 10) -> tuple[list[Any], str | None]:
    rows: list[Any] = []
    while True:
        page = r.page(cursor, limit)
        rows += [(x.payload["id"], x.payload["quantity"]) for x in page.records]
        assert all(isinstance(x, SourceRecord) for x in page.records)
        cursor = page.cursor
        if not page.more:
            return rows, cursor


def test_the_first_read_lists_stock_then_moves_tell_what_changed() -> None:
    fake = server()
    r = reader(fake)
    rows, cursor = read(r, None)
    assert rows == [("11@5", "12")]
    # The newest move is the high-water mark; the moves in its window count as seen.
    saved = Cursor.parse(cursor)
    assert saved.hw == "2026-11-27T10:00:00" and saved.recent == {"1": saved.hw}
    assert read(r, cursor)[0] == []  # nothing moved since

    # A move into the second warehouse, and a later change to the first move (its own
    # write_date: the product's never moves).
    fake.tables["stock.move"].append(move(2, 12, 6, 10, "00:03"))
    fake.quantities[(12, 9)] = 3.0
    rows, cursor = read(r, cursor)
    assert rows == [("12@9", "3")]
    fake.tables["stock.move"][0]["write_date"] = "2026-11-27T10:00:04"
    fake.quantities[(11, 5)] = 10.0
    rows, cursor = read(r, cursor)
    assert rows == [("11@5", "10")]
    assert read(r, cursor)[0] == []

    # Counted down to zero: the position is handed over with 0, and the full listing
    # (reconciliation) leaves it out.
    fake.tables["stock.move"].append(move(3, 11, 3, 7, "00:05"))
    fake.quantities[(11, 5)] = 0.0
    rows, cursor = read(r, cursor)
    assert rows == [("11@5", "0")]
    assert dict(r.state(10)) == {
        "12@9": {
            "id": "12@9",
            "product": {"id": 12, "code": "B"},
            "location": {"id": 9, "code": "WH2"},
            "quantity": "3",
        }
    }


def test_positions_are_paged_and_the_storage_zone_context_is_asked_for() -> None:
    fake = server()
    fake.quantities[(12, 5)] = 4.0
    fake.quantities[(12, 9)] = 1.0
    r = reader(fake, location_fields=["code"])
    first = r.page(None, 2)
    assert first.more
    assert [x.payload["id"] for x in first.records] == ["11@5", "12@5"]
    rest = r.page(first.cursor, 2)
    assert not rest.more
    assert [x.payload["id"] for x in rest.records] == ["12@9"]
    contexts = [c for m, _, c in fake.calls if m == "product.product"]
    assert all(c["stock_skip_warehouse"] is True and c["active_test"] is False for c in contexts)
    storage = reader(fake, storage_only=False)
    storage.page(None, 10)
    assert fake.calls[-1][2]["stock_skip_warehouse"] is False


def test_no_move_at_all_lists_again_next_time() -> None:
    fake = server()
    fake.tables["stock.move"] = []
    fake.quantities = {}
    r = reader(fake)
    rows, cursor = read(r, None)
    assert rows == [] and Cursor.parse(cursor).hw is None
    # Without a single move there is no stock anywhere: no quantity is asked for.
    assert [m for m, _, _ in fake.calls] == ["stock.move", "stock.move"]


def test_a_stock_read_is_told_from_a_model_read_by_its_kind() -> None:
    settings = TrytonSettings.model_validate(
        {
            "type": "tryton",
            "url": "http://erp",
            "database": "db",
            "user": "admin",
            "password": "x",
            "read": {
                "inventory": {"kind": "stock", "locations": [["code", "=", "WH"]]},
                "item": {
                    "model": "product.product",
                    "fields": ["code"],
                    "children": {
                        "product_suppliers": {
                            "model": "purchase.product_supplier",
                            "parent": "template",
                            "via": "template",
                            "fields": ["code"],
                            "order": [["sequence", "ASC NULLS FIRST"]],
                        }
                    },
                },
            },
        }
    )
    inventory, item = settings.read["inventory"], settings.read["item"]
    assert isinstance(inventory, TrytonStock) and inventory.storage_only
    assert isinstance(item, TrytonRead)
    assert item.children["product_suppliers"].order == [("sequence", "ASC NULLS FIRST")]
    with pytest.raises(ValidationError, match="model"):
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": "http://erp",
                "database": "db",
                "user": "admin",
                "password": "x",
                "read": {"inventory": {"kind": "stock", "model": "stock.move"}},
            }
        )
