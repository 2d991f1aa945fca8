"""JetStream durable consumer names: one per subscription id, and an upgrade that keeps what
was had (earlier releases folded ``shop_eu.items`` and ``shop.eu_items`` into one name, so
two subscriptions shared one consumer and each lost the other's share of its messages)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from mastersync.backends.nats import NatsFeed, NatsRelay
from mastersync.backends.nats.bus import BusSettings, delete_stream
from mastersync.bootstrap import open_store
from mastersync.connectors.sandbox.target import Faults, SandboxConnector
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import DeliveryAck, DeliveryFailed, DeliveryRequest
from mastersync.ports.store import Store
from tests.backends.test_event_feeds import nats_url

# Ids that folded into a few names before; each must now have a name of its own.
TRICKY = [
    "shop_eu.items",
    "shop.eu_items",
    "shop.eu.items",
    "shop eu.items",
    "shop/eu.items",
    "shöp_eu.items",
    "shop.eu__items",
    "shop_.items",
    "shop._items",
    "shop.",
    "shop_items",
    "s" * 300 + ".items",
    "s" * 300 + ".other",
]
# Ids earlier releases already named apart from any other: they keep their consumers.
KEPT = ["shop.items", "erp-1.items", "ERP.Items2", "a.b", "shop.d"]
# What the server accepts in a consumer name (and a directory name holds).
VALID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")


@pytest.mark.parametrize("prefix", ["mastersync", "ms_x", "ms.x"])
def test_every_subscription_id_gets_a_durable_name_of_its_own(prefix: str) -> None:
    settings = BusSettings(f"nats://127.0.0.1:4222?prefix={prefix}")
    names = [settings.durable(s) for s in TRICKY + KEPT]
    assert len(set(names)) == len(names), names
    assert all(VALID.match(n) for n in names), names
    assert settings.durable("shop_eu.items") != settings.durable("shop.eu_items")


def test_ids_named_apart_before_keep_their_earlier_name() -> None:
    settings = BusSettings("nats://127.0.0.1:4222")
    assert settings.durable("shop.items") == "mastersync_shop_items"
    for s in KEPT:
        assert settings.durable(s) == settings.earlier_durable(s)
    earlier = {settings.earlier_durable(t) for t in TRICKY + KEPT}
    for s in TRICKY:
        # Renamed, and to no name an earlier release gave any id, kept or not.
        assert settings.durable(s) not in earlier, s


class _Counting(SandboxConnector):
    """A sandbox target that notes every (record, version) the hub sends it."""

    def __init__(self, database: Path) -> None:
        super().__init__(database, Faults(seed=1))
        self.sent: list[tuple[str, int]] = []

    async def send_batch(
        self, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        """Note the requests, then deliver them."""
        self.sent += [(r.master_id, r.version) for r in requests]
        return await super().send_batch(requests)


def _landscape(shops: list[tuple[str, str]]) -> CompiledLandscape:
    consumer = {
        "kind": "ecommerce",
        "delivery": {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "50ms"}},
    }
    systems: dict[str, object] = {
        "erp": {
            "kind": "erp",
            "inbound": {"item": {"key": "sku", "fields": {"sku": "sku", "name": "name"}}},
        }
    }
    for system, name in shops:
        systems[system] = {**consumer, "outbound": {name: {"domain": "item"}}}
    return compile_landscape(Landscape.model_validate({"name": "dur", "systems": systems}))


def _ingest(store: Store, landscape: CompiledLandscape, numbers: range) -> None:
    records = [SourceRecord({"sku": f"A{i}", "name": "n"}) for i in numbers]
    Ingestor(store, landscape).ingest("erp", "item", records)


def _run(
    store: Store, landscape: CompiledLandscape, url: str, targets: dict[str, _Counting]
) -> None:
    hub = DistributionHub(
        store,
        list(landscape.subscriptions.values()),
        NatsFeed(store, url, utc_now),
        dict(targets),
        relay=NatsRelay(store, url, utc_now),
        poll_interval=0.02,
    )
    asyncio.run(hub.run_until_idle(timeout=20, settle=0.5))


SHOPS = [("shop_eu", "items"), ("shop", "eu_items"), ("web", "items")]


def test_subscriptions_whose_ids_folded_together_each_get_every_event(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    store.upgrade()
    landscape = _landscape(SHOPS)
    _ingest(store, landscape, range(20))
    url = nats_url()
    targets = {s: _Counting(tmp_path / f"{s}.db") for s, _ in SHOPS}
    try:
        _run(store, landscape, url, targets)
    finally:
        asyncio.run(delete_stream(url))
        store.close()
    got = {s: len(t.target.records("item")) for s, t in targets.items()}
    assert got == {"shop_eu": 20, "shop": 20, "web": 20}


def test_an_upgrade_neither_loses_nor_sends_again(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hub of an earlier release ran on the bus (the folded ids sharing one consumer), then
    the upgraded one: renamed subscriptions read their stream anew and get what the shared
    consumer gave the other, not what they had; a kept id goes on with its consumer."""
    store = open_store(sqlite_url)
    store.upgrade()
    landscape = _landscape(SHOPS)
    url = nats_url()
    settings = BusSettings(url)
    before: dict[str, list[tuple[str, int]]] = {}
    targets = {s: _Counting(tmp_path / f"{s}.db") for s, _ in SHOPS}
    try:
        _ingest(store, landscape, range(20))
        with monkeypatch.context() as earlier:
            earlier.setattr(BusSettings, "durable", BusSettings.earlier_durable)
            _run(store, landscape, url, targets)
        before = {s: t.sent for s, t in targets.items()}
        _ingest(store, landscape, range(20, 25))
        targets = {s: _Counting(tmp_path / f"{s}.db") for s, _ in SHOPS}
        with caplog.at_level(logging.WARNING, logger="mastersync.hub"):
            _run(store, landscape, url, targets)

        async def consumers() -> set[str]:
            feed = NatsFeed(store, url, utc_now)
            try:
                js = await feed.connection.js()
                return {c.name for c in await js.consumers_info(settings.stream)}
            finally:
                await feed.close()

        names = asyncio.run(consumers())
    finally:
        asyncio.run(delete_stream(url))
        store.close()
    # The shared consumer split the first 20 between the folded ids (the fault).
    assert len(before["shop_eu"]) + len(before["shop"]) == 20
    assert len(before["web"]) == 20
    for system, target in targets.items():
        assert len(target.target.records("item")) == 25, system
        # Nothing sent twice: the renamed ones replayed the stream, and the queue's key
        # and the applied versions dropped what they had.
        assert not set(before[system]) & set(target.sent), system
        assert len(before[system]) + len(target.sent) == 25, system
    assert names == {
        settings.earlier_durable("shop_eu.items"),  # left for the operator to delete
        settings.durable("shop_eu.items"),
        settings.durable("shop.eu_items"),
        settings.earlier_durable("web.items"),
    }
    left = [r.getMessage() for r in caplog.records if "is no longer read" in r.getMessage()]
    assert len(left) == 2, left
