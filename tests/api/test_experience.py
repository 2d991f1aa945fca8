"""Experience APIs: the price and availability GET /v1/sales/items shows a sales channel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.api.conftest import Consumers

SHOP = [
    "item:read",
    "item:write",
    "price:read",
    "price:write",
    "inventory:read",
    "inventory:write",
    "location:read",
    "location:write",
]


def _item(client: httpx.Client, h: dict[str, str]) -> str:
    attrs = {
        "sku": "A",
        "name": "Gloves",
        "gtin": "4006381333931",
        "channels": ["web"],
        "lifecycle_state": "active",
        "base_uom": "ea",
    }
    r = client.post("/v1/items", json={"key": "A", "attributes": attrs}, headers=h)
    assert r.status_code == 200, r.text
    master_id: str = r.json()["master_id"]
    return master_id


def _price(client: httpx.Client, h: dict[str, str], key: str, item: str, **attrs: Any) -> None:
    body = {"item": item, "price_list": "retail", "currency": "EUR", "uom": "EA", **attrs}
    r = client.post("/v1/prices", json={"key": key, "attributes": body}, headers=h)
    assert r.status_code == 200, r.text


def _shown(client: httpx.Client, h: dict[str, str], query: str = "") -> dict[str, Any]:
    r = client.get(f"/v1/sales/items?channel=web{query}", headers=h)
    assert r.status_code == 200, r.text
    item: dict[str, Any] = r.json()["items"][0]
    return item


def _days(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


def test_only_a_price_valid_today_is_shown(client: httpx.Client, consumer: Consumers) -> None:
    # Review: the most recently changed price won, expired or not yet valid.
    h = consumer("shop", SHOP, system="portal")
    item = _item(client, h)
    _price(client, h, "OLDER", item, amount="11.00", valid_from="2023-01-01")
    _price(client, h, "CURRENT", item, amount="12.50", valid_from="2024-01-01")
    _price(
        client, h, "EXPIRED", item, amount="9.99", valid_from="2020-01-01", valid_to="2021-01-01"
    )
    _price(client, h, "NEXT", item, amount="14.00", valid_from=_days(365))
    # Of two valid prices for the same quantity, the one valid since the latest date.
    assert _shown(client, h)["price"]["amount"] == "12.5"
    _price(client, h, "TODAY", item, amount="13.00", valid_from=_days(-5), valid_to=_days(0))
    assert _shown(client, h)["price"]["amount"] == "13"


def test_no_price_is_shown_when_none_is_valid(client: httpx.Client, consumer: Consumers) -> None:
    h = consumer("shop", SHOP, system="portal")
    item = _item(client, h)
    _price(
        client, h, "EXPIRED", item, amount="9.99", valid_from="2020-01-01", valid_to="2021-01-01"
    )
    assert _shown(client, h)["price"] is None


def test_purchase_prices_are_never_shown(client: httpx.Client, consumer: Consumers) -> None:
    # Review: a cost price (list PURCHASE:<supplier>, as the Tryton connector writes them)
    # was shown to the sales channel when it was the more recently changed one.
    h = consumer("shop", SHOP, system="portal")
    item = _item(client, h)
    _price(client, h, "R", item, amount="12.50", min_quantity="1")
    _price(client, h, "P", item, amount="7.20", min_quantity="1", price_list="PURCHASE:ACME")
    _price(client, h, "P0", item, amount="7.00", min_quantity="0", price_list="PURCHASE:ACME")
    price = _shown(client, h)["price"]
    assert price["price_list"] == "retail" and price["amount"] == "12.5"
    assert _shown(client, h, "&price_list=PURCHASE:ACME")["price"] is None


def test_a_price_list_and_currency_can_be_chosen(client: httpx.Client, consumer: Consumers) -> None:
    h = consumer("shop", SHOP, system="portal")
    item = _item(client, h)
    _price(client, h, "R", item, amount="12.50")
    _price(client, h, "W", item, amount="10.00", price_list="wholesale")
    _price(client, h, "U", item, amount="14.00", currency="USD")
    assert _shown(client, h, "&price_list=wholesale")["price"]["amount"] == "10"
    usd = _shown(client, h, "&currency=usd")["price"]
    assert usd["amount"] == "14" and usd["currency"] == "USD"
    assert _shown(client, h, "&price_list=wholesale&currency=USD")["price"] is None
    # Without a choice, the same price every time, not the most recently changed one.
    assert _shown(client, h)["price"]["price_list"] == "retail"
    _price(client, h, "W", item, amount="9.00", price_list="wholesale")
    assert _shown(client, h)["price"]["price_list"] == "retail"


@pytest.mark.parametrize(
    ("quantities", "expected"),
    [(["0.5", "0.5"], "1"), (["0.0000001"], "0.0000001"), (["2.50", "1"], "3.5")],
)
def test_available_is_spelled_as_a_canonical_amount(
    client: httpx.Client, consumer: Consumers, quantities: list[str], expected: str
) -> None:
    # Review: str() of the Decimal sum answered "1.0" and "1E-7".
    h = consumer("shop", SHOP, system="portal")
    item = _item(client, h)
    for i, qty in enumerate(quantities):
        r = client.post(
            "/v1/locations", json={"key": f"L{i}", "attributes": {"code": f"WH{i}"}}, headers=h
        )
        assert r.status_code == 200, r.text
        attrs = {"item": item, "location": r.json()["master_id"], "uom": "EA", "available": qty}
        r = client.post("/v1/inventory", json={"key": f"I{i}", "attributes": attrs}, headers=h)
        assert r.status_code == 200, r.text
    assert _shown(client, h)["available"] == expected
