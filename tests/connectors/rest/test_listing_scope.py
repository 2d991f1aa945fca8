"""Whether the REST connector's listing holds the records the hub deactivated, against the
Shopify stand-in (its documented contract: GET /products.json lists products of every status
unless `status` asks for some; a DELETE removes one): the `read:` entry declares it, and
reconciliation takes its word."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mastersync.bootstrap import open_store
from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.rest.client import RestConnector
from mastersync.connectors.rest.spec import RestSettings
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.reconciliation import Bucket, DriftReport
from mastersync.domain.subscriptions import Operation
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.reconcile import ReconcileOptions, reconcile_target
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import DeliveryRequest
from mastersync.ports.reconciliation import lists_inactive
from mastersync.ports.store import Store
from mastersync.sandbox.apis.serve import LoopbackServer
from mastersync.sandbox.apis.shopify import API, ShopifyApi, ShopState

AUTH = {
    "kind": "oauth2",
    "token_url": "/admin/oauth/access_token",
    "client_id": "mastersync-sandbox",
    "client_secret": "shpss_sandbox_secret",
    "client_auth": "body",
    "header": "X-Shopify-Access-Token",
    "prefix": "",
}
PRODUCTS = {"path": "/products.json", "records": "products", "key": "id"}
ARCHIVE = {
    "method": "PUT",
    "path": "/products/{target_key}.json",
    "body": {"product": {"status": "archived"}},
}
DELETE = {"method": "DELETE", "path": "/products/{target_key}.json"}


@pytest.fixture
def shop() -> Iterator[tuple[ShopState, str]]:
    state = ShopState()
    with LoopbackServer(ShopifyApi(state).app) as server:
        yield state, server.url


def connector(
    url: str, read: dict[str, dict[str, Any]], deactivate: dict[str, Any], tmp_path: Path
) -> RestConnector:
    settings = RestSettings.model_validate(
        {
            "type": "rest",
            "base_url": url + API,
            "auth": AUTH,
            "retries": 0,
            "read": read,
            "write": {
                "products": {
                    "create": {
                        "method": "POST",
                        "path": "/products.json",
                        "body": {"product": "$payload"},
                    },
                    "update": {
                        "method": "PUT",
                        "path": "/products/{target_key}.json",
                        "body": {"product": "$payload"},
                    },
                    "deactivate": deactivate,
                    "response": {"key": "product.id"},
                }
            },
        }
    )
    return RestConnector(settings, ConnectorContext("shop", tmp_path))


def request(sku: str, operation: Operation, target: str | None) -> DeliveryRequest:
    version = 1 if operation is Operation.UPSERT else 2
    return DeliveryRequest(
        subscription="shop.products",
        system="shop",
        domain="item",
        master_id=f"itm_{sku}",
        version=version,
        operation=operation,
        idempotency_key=f"itm_{sku}:{version}",
        target_key=target,
        payload={"title": f"Product {sku}", "handle": sku.lower()},
        trace_id="t",
    )


async def deliver_two_deactivate_one(c: RestConnector) -> tuple[str, str]:
    """A1 and A2 created through the connector, then A2 deactivated through it."""
    kept = await c.send(request("A1", Operation.UPSERT, None))
    gone = await c.send(request("A2", Operation.UPSERT, None))
    assert kept.target_key is not None and gone.target_key is not None
    await c.send(request("A2", Operation.DEACTIVATE, gone.target_key))
    return kept.target_key, gone.target_key


def test_a_listing_of_every_status_holds_the_archived_product_and_says_so(
    shop: tuple[ShopState, str], tmp_path: Path
) -> None:
    _, url = shop
    c = connector(url, {"item": PRODUCTS}, ARCHIVE, tmp_path)

    async def scenario() -> None:
        try:
            kept, gone = await deliver_two_deactivate_one(c)
            listed = dict(c.read_state("item"))
        finally:
            await c.close()
        assert set(listed) == {kept, gone}
        # The listed record shows the deactivation: the product as the shop has it.
        assert (listed[kept]["status"], listed[gone]["status"]) == ("active", "archived")

    asyncio.run(scenario())
    assert c.lists_inactive is True
    assert lists_inactive(c) is True


def test_a_listing_of_active_products_leaves_the_archived_one_out_and_says_so(
    shop: tuple[ShopState, str], tmp_path: Path
) -> None:
    state, url = shop
    read = {**PRODUCTS, "params": {"status": "active"}, "lists_inactive": False}
    c = connector(url, {"item": read}, ARCHIVE, tmp_path)

    async def scenario() -> None:
        try:
            kept, gone = await deliver_two_deactivate_one(c)
            assert [key for key, _ in c.read_state("item")] == [kept]
            # Turned on again in the shop's admin: listed again, which (a listing of active
            # products only) can only mean active there.
            state.products[int(gone)]["status"] = "active"
            assert [key for key, _ in c.read_state("item")] == [kept, gone]
        finally:
            await c.close()

    asyncio.run(scenario())
    assert lists_inactive(c) is False


def test_a_product_deactivated_by_delete_is_not_listed(
    shop: tuple[ShopState, str], tmp_path: Path
) -> None:
    state, url = shop
    read = {**PRODUCTS, "lists_inactive": False}
    c = connector(url, {"item": read}, DELETE, tmp_path)

    async def scenario() -> None:
        try:
            kept, gone = await deliver_two_deactivate_one(c)
            assert int(gone) not in state.products
            assert [key for key, _ in c.read_state("item")] == [kept]
        finally:
            await c.close()

    asyncio.run(scenario())
    assert c.lists_inactive is False


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ({}, True),
        ({"item": True}, True),
        ({"item": False}, False),
        ({"item": False, "location": False}, False),
        # Asked once per run, not per domain: one listing holding them is enough.
        ({"item": False, "location": True}, True),
    ],
    ids=["no-reads", "default", "declared-false", "all-false", "one-holds-them"],
)
def test_the_declaration_of_the_read_entries_is_the_connectors(
    tmp_path: Path, declared: dict[str, bool], says: bool
) -> None:
    read = {domain: {**PRODUCTS, "lists_inactive": value} for domain, value in declared.items()}
    # Left out, the setting is its default (true: the port's assumption).
    read = {d: {k: v for k, v in r.items() if v is not True} for d, r in read.items()}
    c = connector("http://shop.invalid", read, ARCHIVE, tmp_path)
    assert lists_inactive(c) is says
    asyncio.run(c.close())


FAST = {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "100ms"}}


def hub_landscape() -> CompiledLandscape:
    """Items from the ERP; the shop gets those with a price as products."""
    return compile_landscape(
        Landscape.model_validate(
            {
                "name": "scope",
                "systems": {
                    "erp": {
                        "kind": "erp",
                        "inbound": {
                            "item": {
                                "key": "sku",
                                "version": {"from": "v", "kind": "counter"},
                                "fields": {
                                    "sku": "sku",
                                    "name": "name",
                                    "list_price": {
                                        "from": "price",
                                        "number": True,
                                        "optional": True,
                                    },
                                },
                            }
                        },
                    },
                    "shop": {
                        "kind": "ecommerce",
                        "delivery": FAST,
                        "outbound": {
                            "products": {
                                "domain": "item",
                                "filter": "list_price != null",
                                "mapping": {
                                    "fields": {
                                        "title": "name",
                                        "handle": {"from": "sku", "case": "lower"},
                                        "status": {"const": "active"},
                                    }
                                },
                            }
                        },
                    },
                },
            }
        )
    )


class Estate:
    """A hub store fed by the ERP, delivering to the shop through the REST connector."""

    def __init__(self, store: Store, shop: Callable[[], RestConnector]) -> None:
        self.store = store
        self.landscape = hub_landscape()
        self.ingestor = Ingestor(store, self.landscape)
        # A connector for each run: the hub closes its connectors when it stops.
        self.shop = shop
        self.sub = self.landscape.subscriptions["shop.products"]

    def send(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def deliver(self) -> None:
        hub = DistributionHub(
            self.store,
            [self.sub],
            OutboxFeed(self.store, utc_now),
            {"shop": self.shop()},
            poll_interval=0.02,
        )
        stats = asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))
        assert stats.dead == 0

    def reconcile(self, repair: bool = False) -> DriftReport:
        reader = self.shop()
        # The scope the reconciliation goes by is the connector's own declaration.
        options = ReconcileOptions(repair=repair)
        try:
            result = reconcile_target(self.store, self.landscape, reader, self.sub, options)
        finally:
            asyncio.run(reader.close())
        return result.report


def item(sku: str, v: int, price: str | None) -> dict[str, Any]:
    return {"sku": sku, "v": v, "name": f"Gloves {sku}", "price": price}


def archived_by_the_hub(estate: Estate) -> None:
    """GL-1 and GL-2 in the shop; GL-2 then archived there by the hub (its price went)."""
    estate.send(item("GL-1", 1, "12.50"), item("GL-2", 1, "12.90"))
    estate.deliver()
    estate.send(item("GL-2", 2, None))
    estate.deliver()


def product(state: ShopState, handle: str) -> dict[str, Any]:
    [found] = [p for p in state.products.values() if p["handle"] == handle]
    return found


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[Store]:
    store = open_store(sqlite_url)
    store.upgrade()
    yield store
    store.close()


def test_reconciliation_takes_an_archived_product_listed_by_every_status_as_retired(
    shop: tuple[ShopState, str], hub: Store, tmp_path: Path
) -> None:
    state, url = shop
    estate = Estate(hub, lambda: connector(url, {"item": PRODUCTS}, ARCHIVE, tmp_path))
    archived_by_the_hub(estate)
    gone = product(state, "gl-2")
    assert gone["status"] == "archived"
    report = estate.reconcile()
    assert (report.counts[Bucket.MATCHED], report.counts[Bucket.RETIRED]) == (1, 1)
    assert report.keys(Bucket.RETIRED) == [str(gone["id"])]
    assert report.clean


def test_reconciliation_finds_and_repairs_an_archived_product_active_again(
    shop: tuple[ShopState, str], hub: Store, tmp_path: Path
) -> None:
    """Listing active products only, and saying so: the archived product is no drift while
    it stays archived; turned on again in the shop it is, and a repair archives it again."""
    state, url = shop
    read = {**PRODUCTS, "params": {"status": "active"}, "lists_inactive": False}
    estate = Estate(hub, lambda: connector(url, {"item": read}, ARCHIVE, tmp_path))
    archived_by_the_hub(estate)
    report = estate.reconcile()
    assert report.counts[Bucket.MATCHED] == 1 and report.clean

    gone = product(state, "gl-2")
    gone["status"] = "active"  # by hand, in the shop's admin
    report = estate.reconcile()
    [entry] = report.examples[Bucket.MISMATCHED]
    assert entry.key == str(gone["id"])
    assert entry.note is not None and entry.note.endswith("active at shop again")

    estate.reconcile(repair=True)
    estate.deliver()
    assert gone["status"] == "archived"
    report = estate.reconcile()
    assert report.counts[Bucket.MATCHED] == 1 and report.clean


def test_a_listing_of_every_status_tells_an_archived_product_active_again_by_its_active_path(
    shop: tuple[ShopState, str], hub: Store, tmp_path: Path
) -> None:
    """Listing every status, the archived product was `retired` whatever its status said:
    with `active` declared, one turned on again in the shop is drift, and a repair archives
    it again."""
    state, url = shop
    read = {**PRODUCTS, "active": "status == 'active'"}
    estate = Estate(hub, lambda: connector(url, {"item": read}, ARCHIVE, tmp_path))
    archived_by_the_hub(estate)
    report = estate.reconcile()
    assert (report.counts[Bucket.MATCHED], report.counts[Bucket.RETIRED]) == (1, 1)

    gone = product(state, "gl-2")
    gone["status"] = "active"  # by hand, in the shop's admin
    report = estate.reconcile()
    [entry] = report.examples[Bucket.MISMATCHED]
    assert entry.key == str(gone["id"])
    assert entry.note is not None and entry.note.endswith("active at shop again")

    estate.reconcile(repair=True)
    estate.deliver()
    assert gone["status"] == "archived"
    report = estate.reconcile()
    assert (report.counts[Bucket.MATCHED], report.counts[Bucket.RETIRED]) == (1, 1)
    assert report.clean


@pytest.mark.parametrize(
    ("active", "native", "says"),
    [
        (None, {"status": "active"}, None),
        ("status == 'active'", {"status": "active"}, True),
        ("status == 'active'", {"status": "archived"}, False),
        ("is_active", {"is_active": False}, False),
        # Not a boolean (left out of the listing, or no flag at all): it cannot tell.
        ("is_active", {}, None),
        ("status", {"status": "active"}, None),
    ],
)
def test_a_listed_record_is_active_as_the_read_entrys_path_says(
    tmp_path: Path, active: str | None, native: dict[str, Any], says: bool | None
) -> None:
    read = {**PRODUCTS, **({"active": active} if active else {})}
    c = connector("http://shop.invalid", {"item": read}, ARCHIVE, tmp_path)
    assert c.listed_active("item", "products", native) is says
    assert c.listed_active("location", "products", native) is None
    asyncio.run(c.close())


def test_an_active_path_that_does_not_parse_is_refused_with_the_setting_named(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="'active' is not a JMESPath expression"):
        connector(
            "http://shop.invalid", {"item": {**PRODUCTS, "active": "status =="}}, ARCHIVE, tmp_path
        )
