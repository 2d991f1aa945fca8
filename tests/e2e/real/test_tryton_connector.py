"""The Tryton connector against a live server: incremental reads (lookback, ties, pages,
children and related records), both transports, writes and how failures are classified."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.rpc import JsonRpc
from mastersync.connectors.tryton.spec import TrytonSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import SourceRecord, TerminalError, TransientError
from mastersync.ports.outbound import DeliveryRequest, TerminalFailure, TransientFailure
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed
from tests.e2e.real.testbed.common import free_port

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

CUSTOMER_READ: dict[str, Any] = {
    "model": "party.party",
    "filter": [["categories.name", "=", "Customer"]],
    "fields": ["code", "name", "active"],
    "children": {
        "addresses": {"model": "party.address", "parent": "party", "fields": ["city"]},
    },
}
CUSTOMER_WRITE: dict[str, Any] = {
    "model": "party.party",
    "match": ["code"],
    "on_create": {"categories": ["Customer"]},
    "links": {"categories": {"model": "party.category", "by": "name"}},
    "children": {"addresses": {"links": {"country": {"model": "country.country", "by": "code"}}}},
}


def connector(tmp_path: Path, url: str, database: str, **settings: Any) -> TrytonConnector:
    auth = {"user": bed.USER, "password": bed.PASSWORD} if "application_key" not in settings else {}
    return TrytonConnector(
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": url,
                "database": database,
                "read": {"customer": CUSTOMER_READ},
                "write": {"customers": CUSTOMER_WRITE},
                "retries": 0,
                **auth,
                **settings,
            }
        ),
        ConnectorContext("tryton", tmp_path),
    )


def party(tryton: Tryton, name: str, code: str, city: str = "Berlin") -> int:
    return tryton.create(
        "party.party",
        {
            "name": name,
            "code": code,
            "categories": [["add", [tryton.id_of("party.category", "name", "Customer")]]],
            "addresses": [["create", [{"city": city}]]],
        },
    )


def read_all(c: TrytonConnector, cursor: str | None, page: int) -> tuple[list[str], str | None]:
    keys: list[str] = []
    while True:
        p = c.read("customer", cursor, page)
        keys += [str(r.payload["code"]) for r in p.records if isinstance(r, SourceRecord)]
        cursor = p.cursor
        if not p.more:
            return keys, cursor


def request(version: int, payload: dict[str, Any], target: str | None, op: Operation) -> Any:
    return DeliveryRequest(
        subscription="tryton.customers",
        system="tryton",
        domain="customer",
        master_id="cus_1",
        version=version,
        operation=op,
        idempotency_key=f"cus_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
    )


def test_incremental_reads_see_every_change_once(tryton: Tryton, tmp_path: Path) -> None:
    c = connector(tmp_path, tryton.url, tryton.database, context={"company": 1})
    ids = [party(tryton, f"Kunde {n}", f"K-{n}") for n in range(5)]
    first, cursor = read_all(c, None, page=2)
    assert first == ["K-0", "K-1", "K-2", "K-3", "K-4"]
    # Nothing changed: the lookback window is read again, but nothing handed over twice.
    again, cursor = read_all(c, cursor, page=2)
    assert again == []

    # A party's own change, and a change to another party's address only.
    tryton.write("party.party", [ids[1]], {"name": "Kunde eins"})
    [address] = tryton.search_read("party.address", [["party", "=", ids[3]]], ["id"])
    tryton.write("party.address", [address["id"]], {"city": "Bremen"})
    changed, cursor = read_all(c, cursor, page=2)
    assert sorted(changed) == ["K-1", "K-3"]
    page = c.read("customer", None, 10)
    by_code = {r.payload["code"]: r.payload for r in page.records if isinstance(r, SourceRecord)}
    assert by_code["K-3"]["addresses"] == [{"id": address["id"], "city": "Bremen"}]
    assert by_code["K-1"]["name"] == "Kunde eins"
    # The record's version is the newest change of it and its children.
    assert by_code["K-3"]["_changed"] > by_code["K-2"]["_changed"]

    # Archiving is a change too (inactive records are read).
    tryton.write("party.party", [ids[4]], {"active": False})
    changed, cursor = read_all(c, cursor, page=2)
    assert changed == ["K-4"]
    assert dict(c.read_state("customer"))[str(ids[4])]["active"] in (0, False)
    asyncio.run(c.close())


def test_the_rest_api_with_an_application_key_reads_and_writes_alike(
    tryton: Tryton, tmp_path: Path
) -> None:
    party(tryton, "Rest Kunde", "R-1", city="Wien")
    [app] = tryton.call("res.user.application.create", [{"user": 1, "application": "rest"}])
    [key] = tryton.call("res.user.application.read", [app], ["key"])
    rest = connector(
        tmp_path, tryton.url, tryton.database, application_key=key["key"], context={"company": 1}
    )
    rpc = connector(tmp_path, tryton.url, tryton.database)
    over_rest = dict(rest.read_state("customer"))
    over_rpc = dict(rpc.read_state("customer"))
    assert over_rest == over_rpc
    assert next(iter(over_rest.values()))["addresses"][0]["city"] == "Wien"

    payload = {"code": "R-2", "name": "Neu über REST", "addresses": [{"city": "Graz"}]}
    ack = asyncio.run(rest.send(request(1, payload, None, Operation.UPSERT)))
    [created] = tryton.search_read("party.party", [["code", "=", "R-2"]], ["name"])
    assert ack.target_key == str(created["id"])
    assert created["name"] == "Neu über REST"
    asyncio.run(rest.close())
    asyncio.run(rpc.close())


def test_writes_upsert_match_deactivate_and_classify_failures(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tmp_path, tryton.url, tryton.database)

    def send(version: int, payload: dict[str, Any], target: str | None, op: Any) -> Any:
        return asyncio.run(c.send(request(version, payload, target, op)))

    payload = {
        "code": "W-1",
        "name": "Werkzeug Weber",
        "addresses": [{"street": "Am Markt 2", "city": "Leipzig", "country": "DE"}],
    }
    ack = send(1, payload, None, Operation.UPSERT)
    party_id = int(str(ack.target_key))
    # The session expired on the server: the connector logs in again by itself.
    assert isinstance(c.transport, JsonRpc)
    c.transport._session = base64.b64encode(b"admin:1:expired").decode()
    # The answer was lost: the retry knows no key, finds the party by its code.
    again = send(1, payload, None, Operation.UPSERT)
    assert again.target_key == ack.target_key
    assert len(tryton.search_read("party.party", [["code", "=", "W-1"]], ["id"])) == 1
    # An unchanged record is not written at all (its write_date stays).
    [before] = tryton.search_read("party.party", [["id", "=", party_id]], ["write_date"])
    send(2, payload, ack.target_key, Operation.UPSERT)
    [after] = tryton.search_read("party.party", [["id", "=", party_id]], ["write_date"])
    assert before["write_date"] == after["write_date"]
    # A second address is added, the first one updated in place.
    payload["addresses"] = [
        {"street": "Am Markt 3", "city": "Leipzig", "country": "DE"},
        {"street": "Lager 1", "city": "Halle", "country": "DE"},
    ]
    send(3, payload, ack.target_key, Operation.UPSERT)
    rows = tryton.search_read("party.address", [["party", "=", party_id]], ["street", "city"])
    assert [(r["street"], r["city"]) for r in rows] == [
        ("Am Markt 3", "Leipzig"),
        ("Lager 1", "Halle"),
    ]

    send(4, payload, ack.target_key, Operation.DEACTIVATE)
    assert tryton.search_read("party.party", [["id", "=", party_id]], ["id"]) == []
    # Archived, not deleted: an explicit "active" in a domain lists archived records.
    archived = tryton.search_read(
        "party.party", [["id", "=", party_id], ["active", "=", False]], ["active"]
    )
    assert not archived[0]["active"]

    # Terminal: what Tryton refuses, and what cannot be written at all.
    with pytest.raises(TerminalFailure, match="not valid"):
        send(
            5,
            {**payload, "code": "W-2", "identifiers": [{"type": "eu_vat", "code": "DE1"}]},
            None,
            Operation.UPSERT,
        )
    with pytest.raises(TerminalFailure, match="has no field"):
        send(6, {"code": "W-3", "name": "X", "shoe_size": 44}, None, Operation.UPSERT)
    with pytest.raises(TerminalFailure, match=r"no country\.country with code = 'XX'"):
        send(
            7,
            {"code": "W-4", "name": "Y", "addresses": [{"country": "XX"}]},
            None,
            Operation.UPSERT,
        )
    asyncio.run(c.close())

    wrong = connector(tmp_path, tryton.url, tryton.database, password="not-the-password")
    with pytest.raises(TerminalError, match="refused the login"):
        wrong.read("customer", None, 10)
    asyncio.run(wrong.close())


def test_an_unreachable_server_is_a_transient_failure(tmp_path: Path) -> None:
    c = connector(tmp_path, f"http://127.0.0.1:{free_port()}", "nothing")
    with pytest.raises(TransientError, match="ConnectError"):
        c.read("customer", None, 10)
    with pytest.raises(TransientFailure, match="ConnectError"):
        asyncio.run(c.send(request(1, {"code": "Z", "name": "Z"}, None, Operation.UPSERT)))
    asyncio.run(c.close())


def test_products_are_upserted_as_templates_with_their_variant(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(
        tmp_path,
        tryton.url,
        tryton.database,
        write={
            "products": {
                "model": "product.template",
                "match": ["code"],
                "links": {"default_uom": {"model": "product.uom", "by": "symbol"}},
                "on_create": {"type": "goods"},
            }
        },
    )

    def send(version: int, payload: dict[str, Any], target: str | None) -> Any:
        req = request(version, payload, target, Operation.UPSERT)
        req.subscription, req.domain = "tryton.products", "item"
        return asyncio.run(c.send(req))

    payload = {
        "code": "SC-1",
        "name": "Safety cap",
        "list_price": "4.20",
        "default_uom": "u",
        "products": [{"suffix_code": "-RED"}],
    }
    ack = send(1, payload, None)
    [template] = tryton.search_read(
        "product.template",
        [["id", "=", int(ack.target_key)]],
        ["name", "list_price", "default_uom.symbol", "products"],
    )
    assert template["name"] == "Safety cap"
    assert template["list_price"] == {"__class__": "Decimal", "decimal": "4.20"}
    assert template["default_uom."]["symbol"] == "u"
    [variant] = tryton.search_read("product.product", [["template", "=", template["id"]]], ["code"])
    assert variant["code"] == "SC-1-RED"

    # A new list price updates the template in place; the variant stays the same record.
    send(2, {**payload, "list_price": "4.50"}, ack.target_key)
    [template] = tryton.search_read(
        "product.template", [["id", "=", int(ack.target_key)]], ["list_price", "products"]
    )
    assert template["list_price"] == {"__class__": "Decimal", "decimal": "4.50"}
    assert template["products"] == [variant["id"]]
    with pytest.raises(TerminalFailure, match=r"no product\.uom with symbol = 'crate'"):
        send(3, {**payload, "default_uom": "crate"}, ack.target_key)
    asyncio.run(c.close())


# --- supplier references and stock ---------------------------------------------------------
SUPPLIER_REFERENCES: dict[str, Any] = {
    "model": "purchase.product_supplier",
    "parent": "template",
    "via": "template",
    "only_for": "product",
    "filter": [["party.categories.name", "=", "Supplier"]],
    "fields": ["party", "code", "name", "lead_time"],
    "order": [["sequence", "ASC NULLS FIRST"], ["id", "ASC"]],
}
PURCHASE_READS: dict[str, Any] = {
    "item": {
        "model": "product.product",
        "fields": ["code"],
        "children": {"product_suppliers": SUPPLIER_REFERENCES},
    },
    "price": {
        "model": "purchase.product_supplier.price",
        "fields": ["quantity", "unit_price", "product_supplier.party.code"],
        "related": [{"model": "purchase.product_supplier", "via": "product_supplier"}],
    },
    "inventory": {"kind": "stock", "fields": ["code"]},
}


def decimal(value: str) -> dict[str, str]:
    return {"__class__": "Decimal", "decimal": value}


def goods(tryton: Tryton, code: str) -> tuple[int, int]:
    """A purchasable template with one variant: (template id, variant id)."""
    unit = tryton.id_of("product.uom", "symbol", "u")
    template = tryton.create(
        "product.template",
        {
            "name": f"Goods {code}",
            "code": code,
            "type": "goods",
            "default_uom": unit,
            "purchasable": True,
            "purchase_uom": unit,
            "list_price": decimal("10"),
            "products": [["create", [{}]]],
        },
    )
    return template, tryton.id_of("product.product", "code", code)


def supplier(tryton: Tryton, name: str, code: str) -> int:
    category = tryton.id_of("party.category", "name", "Supplier")
    return tryton.create(
        "party.party", {"name": name, "code": code, "categories": [["add", [category]]]}
    )


def stock_in(tryton: Tryton, product: int, quantity: int, to: str = "STO") -> None:
    """A done move from the supplier location into a location (a goods receipt); the
    warning about a move without a purchase is acknowledged first, as a user would."""
    move = tryton.create(
        "stock.move",
        {
            "product": product,
            "unit": tryton.id_of("product.uom", "symbol", "u"),
            "quantity": quantity,
            "from_location": tryton.id_of("stock.location", "code", "SUP"),
            "to_location": tryton.id_of("stock.location", "code", to),
            "unit_price": decimal("4"),
            "currency": tryton.id_of("currency.currency", "code", "EUR"),
        },
    )
    # Tryton names the warning by the moves it is about (res.user.warning.format).
    warning = hashlib.md5(f"stock.move,{move}".encode()).hexdigest() + ".done"
    tryton.create("res.user.warning", {"user": 1, "name": warning})
    tryton.call("stock.move.do", [move])


def read_domain(
    c: TrytonConnector, domain: str, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows: list[dict[str, Any]] = []
    while True:
        p = c.read(domain, cursor, 50)
        rows += [r.payload for r in p.records if isinstance(r, SourceRecord)]
        cursor = p.cursor
        if not p.more:
            return rows, cursor


def test_supplier_references_and_their_prices_are_read_and_a_price_change_is_seen(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tmp_path, tryton.url, tryton.database, read=PURCHASE_READS)
    template, product = goods(tryton, "SR-1")
    acme = supplier(tryton, "Acme", "S-1")
    not_a_supplier = tryton.create("party.party", {"name": "Somebody", "code": "P-1"})
    items, item_cursor = read_domain(c, "item", None)
    prices, price_cursor = read_domain(c, "price", None)
    assert [i["product_suppliers"] for i in items] == [[]] and prices == []

    reference = tryton.create(
        "purchase.product_supplier",
        {
            "template": template,
            "party": acme,
            "code": "AC-77",
            "name": "Acme glove",
            "lead_time": {"__class__": "timedelta", "seconds": 7 * 86400},
            "prices": [
                [
                    "create",
                    [
                        {"quantity": 0, "unit_price": decimal("4.50")},
                        {"quantity": 100, "unit_price": decimal("4.10")},
                    ],
                ]
            ],
        },
    )
    # A party that is no supplier: its reference is left out by the filter.
    tryton.create("purchase.product_supplier", {"template": template, "party": not_a_supplier})
    # The references hang on the template: the product's own write_date never moves.
    items, item_cursor = read_domain(c, "item", item_cursor)
    [item] = items
    assert item["id"] == product
    [ref] = item["product_suppliers"]
    assert (ref["party"], ref["code"], ref["name"], ref["lead_time"]) == (
        acme,
        "AC-77",
        "Acme glove",
        7 * 86400,
    )
    prices, price_cursor = read_domain(c, "price", price_cursor)
    assert sorted((p["quantity"], p["unit_price"]) for p in prices) == [(0, "4.50"), (100, "4.10")]
    assert {p["product_supplier"]["party"]["code"] for p in prices} == {"S-1"}

    # Only a supplier price changes (a child of the reference): that price is read again,
    # nothing else.
    [line] = tryton.search_read(
        "purchase.product_supplier.price",
        [["product_supplier", "=", reference], ["quantity", "=", 100]],
        ["id"],
    )
    tryton.write("purchase.product_supplier.price", [line["id"]], {"unit_price": decimal("3.90")})
    prices, price_cursor = read_domain(c, "price", price_cursor)
    assert [(p["id"], p["unit_price"]) for p in prices] == [(line["id"], "3.90")]
    assert read_domain(c, "item", item_cursor)[0] == []

    # The reference's own change (the supplier's code) reaches the item and its prices.
    tryton.write("purchase.product_supplier", [reference], {"code": "AC-78"})
    items, item_cursor = read_domain(c, "item", item_cursor)
    assert [i["product_suppliers"][0]["code"] for i in items] == ["AC-78"]
    prices, price_cursor = read_domain(c, "price", price_cursor)
    assert len(prices) == 2
    asyncio.run(c.close())


def test_stock_moves_change_the_quantities_read_per_warehouse(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tmp_path, tryton.url, tryton.database, read=PURCHASE_READS)
    _, product = goods(tryton, "ST-1")
    warehouse = tryton.id_of("stock.location", "code", "WH")
    key = f"{product}@{warehouse}"
    rows, cursor = read_domain(c, "inventory", None)
    assert rows == []

    stock_in(tryton, product, 12)
    rows, cursor = read_domain(c, "inventory", cursor)
    assert [(r["id"], r["quantity"], r["product"]["code"]) for r in rows] == [(key, "12", "ST-1")]
    assert rows[0]["location"] == {"id": warehouse, "code": "WH", "name": "Warehouse"}
    assert read_domain(c, "inventory", cursor)[0] == []  # the same move is not read twice

    # Goods still in the warehouse's input zone are not in its storage: read, unchanged.
    stock_in(tryton, product, 5, to="IN")
    rows, cursor = read_domain(c, "inventory", cursor)
    assert [(r["id"], r["quantity"]) for r in rows] == [(key, "12")]
    # A stock count in the storage zone (an inventory: its moves are done by confirming).
    count = tryton.create(
        "stock.inventory",
        {
            "location": tryton.id_of("stock.location", "code", "STO"),
            "lines": [["create", [{"product": product, "quantity": 10}]]],
        },
    )
    tryton.call("stock.inventory.confirm", [count])
    rows, cursor = read_domain(c, "inventory", cursor)
    assert [(r["id"], r["quantity"]) for r in rows] == [(key, "10")]
    assert {k: v["quantity"] for k, v in c.read_state("inventory")} == {key: "10"}
    assert any("stock.location, 1 location(s) of stock" in d for d in c.check().details)
    asyncio.run(c.close())
