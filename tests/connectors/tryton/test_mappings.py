"""The e2e landscape's Tryton mappings for supplier references, supplier prices and stock,
applied to records shaped as the connector hands them over (the live tests run them
against Tryton; these pin the shapes without a server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mastersync.domain.mapping.mapper import Mapped, Mapper
from mastersync.domain.mapping.spec import MappingSpec
from mastersync.domain.mapping.values import Ref

MAPPINGS = Path(__file__).parents[2] / "e2e" / "real" / "landscape" / "mappings"


def mapped(name: str, system: str, domain: str, record: dict[str, Any]) -> Mapped:
    spec = MappingSpec.model_validate(yaml.safe_load((MAPPINGS / name).read_text()))
    return Mapper(system, domain, spec).map(record)


PRODUCT: dict[str, Any] = {
    "id": 7,
    "code": "GL-1",
    "name": "Gloves",
    "template": {"id": 3, "list_price": "12.50"},
    "cost_price": "7.10",
    "default_uom": {"id": 1, "symbol": "u"},
    "active": True,
    "_changed": "2026-11-27T10:00:00.5",
}


def test_the_first_supplier_reference_is_the_items_primary_supplier() -> None:
    references = [
        {"id": 40, "party": 9, "code": "AC-77", "name": "Acme glove", "lead_time": 604800.0},
        {"id": 41, "party": 10, "code": "OT-1", "name": None, "lead_time": None},
    ]
    values = mapped(
        "tryton-item.yaml", "tryton", "item", {**PRODUCT, "product_suppliers": references}
    ).values
    assert values["primary_supplier"] == Ref("supplier", "tryton", "9")
    assert (values["supplier_item_number"], values["supplier_item_name"]) == ("AC-77", "Acme glove")
    assert values["supplier_lead_time_days"] == 7


def test_an_item_without_supplier_references_read_maps_as_before() -> None:
    # The Akeneo landscape reads no product_suppliers; an item without any has none either.
    for record in (PRODUCT, {**PRODUCT, "product_suppliers": []}):
        values = mapped("tryton-item.yaml", "tryton", "item", record).values
        assert values["sku"] == "GL-1" and values["list_price"] is not None
        assert all(
            values.get(f) is None
            for f in ("primary_supplier", "supplier_item_number", "supplier_lead_time_days")
        )


def test_a_supplier_price_is_a_price_on_the_suppliers_purchase_list() -> None:
    line = {
        "id": 5,
        "quantity": 100.0,
        "unit_price": "4.1000",
        "product_supplier": {
            "id": 40,
            "product": None,  # for the whole template: its first variant
            "template": {"id": 3, "products": [7, 8]},
            "party": {"id": 9, "code": "S-1"},
            "currency": {"id": 1, "code": "EUR"},
            "unit": {"id": 1, "symbol": "u"},
        },
        "_changed": "2026-11-27T10:00:00.5",
    }
    m = mapped("tryton-supplier-price.yaml", "tryton_purchase", "price", line)
    assert m.key == "5"
    assert m.values["item"] == Ref("item", "tryton", "7")
    assert (m.values["price_list"], m.values["currency"], m.values["uom"]) == (
        "PURCHASE:S-1",
        "EUR",
        "EA",
    )
    assert (str(m.values["amount"]), str(m.values["min_quantity"])) == ("4.1000", "100.0")
    line["product_supplier"]["product"] = 8  # a variant's own reference
    assert mapped("tryton-supplier-price.yaml", "tryton_purchase", "price", line).values[
        "item"
    ] == Ref("item", "tryton", "8")


def test_a_stock_position_is_an_inventory_record_without_a_version() -> None:
    position = {
        "id": "7@5",
        "product": {"id": 7, "code": "GL-1", "default_uom": {"id": 1, "symbol": "u"}},
        "location": {"id": 5, "code": "WH", "name": "Warehouse"},
        "quantity": "12",
    }
    m = mapped("tryton-inventory.yaml", "tryton", "inventory", position)
    assert (m.key, m.version) == ("7@5", None)
    assert m.values["item"] == Ref("item", "tryton", "7")
    assert m.values["location"] == Ref("location", "tryton", "5")
    assert (m.values["uom"], str(m.values["on_hand"])) == ("EA", "12")
