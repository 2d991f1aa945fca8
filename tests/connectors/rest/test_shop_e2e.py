"""With a landscape and no Python code: items and stock pulled from a SQL database, pushed to
a Shopify-style REST API as products with nested variants and as inventory levels that
reference those products by the keys the shop gave them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mastersync.cli import app
from mastersync.sandbox.apis.serve import LoopbackServer
from mastersync.sandbox.apis.shopify import ShopifyApi, ShopState

runner = CliRunner()

LANDSCAPE = """
name: sql-to-shop
systems:
  erp:
    kind: erp
    connector:
      type: sql
      url: sqlite:///erp.db
      poll_every: 0.1
      read:
        item: {table: items, cursor: changed_seq, key: item_no}
        location: {table: sites, cursor: changed_seq, key: code}
        inventory: {table: stock, cursor: changed_seq, key: id}
    inbound:
      item:
        key: item_no
        version: {from: changed_seq, kind: counter}
        fields:
          sku: item_no
          name: title
          brand: brand
          gtin: {from: ean, optional: true}
          list_price: {from: price, number: true, optional: true}
          net_weight_kg: {from: weight_kg, number: true, optional: true}
      location:
        key: code
        fields: {code: code, name: name}
      inventory:
        key: id
        version: {from: changed_seq, kind: counter}
        fields:
          item: {from: item_no, ref: {domain: item}}
          location: {from: site, ref: {domain: location, by: code}}
          available: {from: qty, number: true}
  shop:
    kind: ecommerce
    connector:
      type: rest
      base_url: SHOP_URL/admin/api/2025-07
      auth:
        kind: oauth2
        token_url: /admin/oauth/access_token
        client_id: mastersync-sandbox
        client_secret: {env: SHOP_CLIENT_SECRET}
        client_auth: body
        header: X-Shopify-Access-Token
        prefix: ""
      rate_limit: {per_second: 50, burst: 10}
      poll_every: 0.1
      read:
        location: {path: /locations.json, records: locations, key: id}
      write:
        products:
          lookup:
            path: /products.json
            params: {handle: "{payload.product.handle}"}
            records: products
          create: {method: POST, path: /products.json, body: $payload}
          update: {method: PUT, path: "/products/{target_key}.json", body: $payload}
          deactivate:
            method: PUT
            path: "/products/{target_key}.json"
            body: {product: {status: archived}}
          response:
            key: product.id
            version: product.updated_at
            keys: {inventory_item: "product.variants[0].inventory_item_id"}
        stock:
          upsert: {method: POST, path: /inventory_levels/set.json}
          response:
            key: "join(':', [to_string(inventory_level.inventory_item_id),
              to_string(inventory_level.location_id)])"
    inbound:
      location:
        key: id
        fields: {code: name, name: name}
    outbound:
      products:
        domain: item
        filter: "list_price != null"
        delivery: {backoff: {initial: 50ms, max: 200ms}}
        mapping:
          fields:
            product.title: name
            product.vendor: brand
            product.handle: {from: sku, case: lower}
            product.status: {const: active}
            product.variants:
              - sku: sku
                barcode: gtin
                price: list_price
                weight: net_weight_kg
                weight_unit: {const: kg}
      stock:
        domain: inventory
        delivery: {backoff: {initial: 50ms, max: 200ms}, max_attempts: 40}
        mapping:
          fields:
            inventory_item_id: _keys.item.inventory_item
            location_id: _keys.location.key
            available: available
"""


@pytest.fixture
def shop() -> Iterator[tuple[ShopState, str]]:
    state = ShopState()
    state.add_location("DC-EAST")
    state.add_location("DC-WEST")
    with LoopbackServer(ShopifyApi(state).app) as server:
        yield state, server.url


def cli(*args: str) -> str:
    result = runner.invoke(
        app, list(args), env={"COLUMNS": "200", "SHOP_CLIENT_SECRET": "shpss_sandbox_secret"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def erp(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (item_no TEXT PRIMARY KEY, changed_seq INT, title TEXT, "
            "brand TEXT, ean TEXT, price TEXT, weight_kg TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE sites (code TEXT PRIMARY KEY, changed_seq INT, name TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE stock (id TEXT PRIMARY KEY, changed_seq INT, item_no TEXT, "
            "site TEXT, qty TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO items VALUES "
            "('GL-100', 1, 'Nitrile gloves M', 'Hygia', '4006381333931', '12.50', '0.25'), "
            "('GL-200', 2, 'Nitrile gloves L', 'Hygia', NULL, '12.90', '0.27'), "
            "('SP-1', 3, 'Spare part, not sold online', 'Acme', NULL, NULL, NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO sites VALUES ('DC-EAST', 1, 'DC-EAST'), ('DC-WEST', 2, 'DC-WEST')"
        )
        conn.exec_driver_sql(
            "INSERT INTO stock VALUES ('GL-100@DC-EAST', 1, 'GL-100', 'DC-EAST', '40'), "
            "('GL-100@DC-WEST', 2, 'GL-100', 'DC-WEST', '7'), "
            "('GL-200@DC-EAST', 3, 'GL-200', 'DC-EAST', '0')"
        )
    return engine


def test_sql_items_and_stock_reach_a_rest_shop(tmp_path: Path, shop: tuple[ShopState, str]) -> None:
    state, url = shop
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(LANDSCAPE.replace("SHOP_URL", url))
    engine = erp(tmp_path)

    out = cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert "dead 0" in out, out

    # Two sellable items became products, each with a nested variant; the spare part
    # (no price) was filtered out.
    products = {p["handle"]: p for p in state.products.values()}
    assert set(products) == {"gl-100", "gl-200"}
    gloves = products["gl-100"]
    assert gloves["title"] == "Nitrile gloves M"
    assert gloves["vendor"] == "Hygia"
    [variant] = gloves["variants"]
    assert variant["sku"] == "GL-100"
    assert variant["price"] == "12.50"
    assert variant["barcode"] == "04006381333931"  # the canonical GTIN-14
    assert variant["grams"] == 250
    # Stock reached the shop under the shop's own ids: the variant's inventory item (a
    # key the product's create response gave) and the shop location matched by code.
    # Stock rows read before the shop's locations were are parked and retried on backoff; a
    # running hub gets them in by itself, so here the hub runs again until they are in.
    runs = 1
    for _ in range(6):
        if len(state.levels) == 3:
            break
        time.sleep(1.0)
        runs += 1
        cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    east = next(loc["id"] for loc in state.locations.values() if loc["name"] == "DC-EAST")
    west = next(loc["id"] for loc in state.locations.values() if loc["name"] == "DC-WEST")
    levels = {(k[0], k[1]): v["available"] for k, v in state.levels.items()}
    inv_100 = variant["inventory_item_id"]
    inv_200 = products["gl-200"]["variants"][0]["inventory_item_id"]
    assert levels == {(inv_100, east): 40, (inv_100, west): 7, (inv_200, east): 0}
    assert variant["inventory_quantity"] == 47

    # The golden item carries the shop's product id as a cross-reference.
    record = json.loads(cli("-l", str(landscape), "get", "item", "erp:GL-100", "--json"))
    assert {"system": "shop", "key": str(gloves["id"])}.items() <= next(
        x for x in record["xrefs"] if x["system"] == "shop"
    ).items()

    # A price change updates the product in place (PUT), no new product.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE items SET price = '13.20', changed_seq = 4 WHERE item_no = 'GL-100'"
        )
        conn.exec_driver_sql(
            "UPDATE stock SET qty = '35', changed_seq = 4 WHERE id = 'GL-100@DC-EAST'"
        )
    cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert len(state.products) == 2
    assert state.products[gloves["id"]]["variants"][0]["price"] == "13.20"
    assert state.levels[(inv_100, east)]["available"] == 35
    # Each run fetched one token and used it for all its reads and writes.
    assert sum(1 for _, path in state.requests if path.endswith("access_token")) == runs + 1
    # Removing the price takes the item off the channel: the product is archived.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE items SET price = NULL, changed_seq = 5 WHERE item_no = 'GL-200'"
        )
    cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert products["gl-200"]["status"] == "archived"
    engine.dispose()
