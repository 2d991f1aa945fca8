"""Deliveries not sent: waiting for a record they reference (held while that record is on
its way to the consumer, dead-lettered with their own rule when it never gets there, sent by
themselves once it does), or for their turn at a paced connector (never dead-lettered for
it). Neither spends the attempts that count what the consumer answers."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from mastersync.connectors.sandbox.faults import Faults
from mastersync.connectors.sandbox.target import SandboxConnector
from mastersync.domain.delivery import AWAITING_REFERENCE
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, NotSent
from mastersync.ports.store import ExceptionFilter, Store

FAST = {"backoff": {"initial": "20ms", "max": "100ms"}, "batch_size": 50}


def landscape() -> CompiledLandscape:
    # Stock goes to the shop under the shop's own key for its item: the item must be there
    # first. Items get six tries, stock two.
    return compile_landscape(
        Landscape.model_validate(
            {
                "name": "refs",
                "systems": {
                    "erp": {
                        "kind": "erp",
                        "inbound": {"item": {"key": "sku", "fields": {"sku": "sku"}}},
                    },
                    "wms": {
                        "kind": "wms",
                        "inbound": {
                            "inventory": {
                                "key": "sku",
                                "fields": {
                                    "item": {
                                        "from": "sku",
                                        "ref": {"domain": "item", "system": "erp"},
                                    },
                                    "available": {"from": "qty", "number": True},
                                },
                            }
                        },
                    },
                    "shop": {
                        "kind": "ecommerce",
                        "delivery": FAST,
                        "outbound": {
                            "items": {
                                "domain": "item",
                                "delivery": {"max_attempts": 6},
                                "mapping": {"fields": {"handle": "sku"}},
                            },
                            "stock": {
                                "domain": "inventory",
                                "delivery": {"max_attempts": 2},
                                "mapping": {
                                    "fields": {"product": "_keys.item.key", "qty": "available"}
                                },
                            },
                        },
                    },
                },
            }
        )
    )


def deliver(store: Store, compiled: CompiledLandscape, shop: SandboxConnector) -> None:
    hub = DistributionHub(
        store,
        list(compiled.subscriptions.values()),
        OutboxFeed(store, utc_now),
        {"shop": shop},
        poll_interval=0.02,
    )
    asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))


def dead_letters(store: Store) -> list[ExceptionEntry]:
    with store.unit_of_work(write=False) as uow:
        found = uow.exceptions(ExceptionFilter(kind=ProblemKind.DEAD_LETTER.value))
    return sorted(found, key=lambda e: e.id or 0)


def test_a_delivery_waits_for_its_reference_on_its_way_then_goes_by_itself_once_it_arrives(
    store: Store, tmp_path: Path
) -> None:
    compiled = landscape()
    ingest = Ingestor(store, compiled)
    ingest.ingest("erp", "item", [SourceRecord({"sku": s}) for s in ("A", "B")])
    ingest.ingest("wms", "inventory", [SourceRecord({"sku": s, "qty": "5"}) for s in ("A", "B")])
    shop = SandboxConnector(tmp_path / "shop.db", Faults(fail_when="handle == 'A'"))
    deliver(store, compiled, shop)

    with store.unit_of_work(write=False) as uow:
        item_a = uow.find_master("item", "erp", "A")
        stock_a = uow.find_master("inventory", "wms", "A")
    # B went through; item A failed six times; stock A, two attempts at most, waited while
    # item A was still being tried (it used to give up first and never follow it).
    assert {r["payload"]["handle"] for r in shop.target.records("item").values()} == {"B"}
    assert len(shop.target.records("inventory")) == 1
    item_dead, stock_dead = dead_letters(store)
    assert (item_dead.master_id, item_dead.rule) == (item_a, "exhausted")
    assert (stock_dead.master_id, stock_dead.rule) == (stock_a, AWAITING_REFERENCE)
    assert stock_dead.field == "item"
    assert f"waiting for item {item_a} to reach shop" in stock_dead.message
    assert isinstance(stock_dead.payload, dict)
    assert stock_dead.payload["awaiting"] == {"item": [item_a]}
    # Two attempts counted; the rounds it waited are one line of its history.
    assert "after 2 attempt(s)" in stock_dead.message
    outcomes = [a["outcome"] for a in stock_dead.payload["attempts"]]
    assert outcomes.count("waiting") == 1
    waited = next(a for a in stock_dead.payload["attempts"] if a["outcome"] == "waiting")
    assert waited["since"] < waited["at"]

    inbox = ExceptionsInbox(store, ingest, references_every=0)
    # Item A never reached the shop: stock A is not due again.
    assert inbox.retry_parked(dt.datetime.now(dt.UTC)).queued == []

    # The shop takes item A now; a steward retries its dead letter.
    shop.target.set_faults(Faults())
    shop = SandboxConnector(tmp_path / "shop.db")
    assert inbox.retry([item_dead]).queued == [item_dead.id]
    deliver(store, compiled, shop)
    item_key = next(r["key"] for m, r in shop.target.records("item").items() if m == item_a)
    # Stock A follows by itself, under the shop's key for item A.
    report = inbox.retry_parked(dt.datetime.now(dt.UTC))
    assert report.queued == [stock_dead.id]
    deliver(store, compiled, shop)
    stock = shop.target.records("inventory")
    assert stock[stock_a]["payload"] == {"product": item_key, "qty": "5"}
    with store.unit_of_work(write=False) as uow:
        settled = uow.exception(stock_dead.id or 0)
    assert settled is not None and settled.status is ExceptionStatus.RESOLVED
    assert dead_letters(store) == []


class PacedShop:
    """A shop whose connector paces itself: each request is turned away, unsent, a few
    times (its turn not come) before it goes."""

    def __init__(self, inner: SandboxConnector, turned_away: int) -> None:
        self.inner = inner
        self.turned_away = turned_away
        self.calls: dict[str, int] = {}

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        n = self.calls[request.master_id] = self.calls.get(request.master_id, 0) + 1
        if n <= self.turned_away:
            raise NotSent(f"not sent, its turn comes in {0.01 * n:.2f} s", retry_after=0.01)
        return await self.inner.send(request)

    async def close(self) -> None:
        await self.inner.close()


def test_a_delivery_its_connector_did_not_send_spends_no_attempt(
    store: Store, tmp_path: Path
) -> None:
    compiled = landscape()
    Ingestor(store, compiled).ingest("erp", "item", [SourceRecord({"sku": s}) for s in "AB"])
    shop = PacedShop(SandboxConnector(tmp_path / "shop.db"), turned_away=8)
    hub = DistributionHub(
        store,
        [compiled.subscriptions["shop.items"]],  # six attempts: fewer than it is turned away
        OutboxFeed(store, utc_now),
        {"shop": shop},  # type: ignore[dict-item]
        poll_interval=0.02,
    )
    asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))
    assert dead_letters(store) == []
    assert {r["payload"]["handle"] for r in shop.inner.target.records("item").values()} == {
        "A",
        "B",
    }
    with store.unit_of_work(write=False) as uow:
        conn = uow.conn  # type: ignore[attr-defined]
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM deliveries ORDER BY id")]
        delivered = [uow.delivery(i) for i in ids]
    assert len(delivered) == 2
    for d in delivered:
        assert d is not None and d.attempts == 1
        # The turns it waited are one line of its history, before the attempt that went.
        assert [a["outcome"] for a in d.history] == ["not sent", "delivered"]


def test_a_wait_on_a_delivery_no_hub_works_on_spends_attempts(store: Store, tmp_path: Path) -> None:
    """Held while its item had any open delivery, stock waited for ever behind one no hub
    was moving (its subscription's hub stopped, or left out of `hub -s`)."""
    compiled = landscape()
    ingest = Ingestor(store, compiled)
    ingest.ingest("erp", "item", [SourceRecord({"sku": "A"})])
    ingest.ingest("wms", "inventory", [SourceRecord({"sku": "A", "qty": "5"})])
    every = list(compiled.subscriptions.values())
    failing = SandboxConnector(tmp_path / "shop.db", Faults(fail_when="handle == 'A'"))

    async def items_once() -> None:
        hub = DistributionHub(
            store,
            [compiled.subscriptions["shop.items"]],
            OutboxFeed(store, utc_now),
            {"shop": failing},
            every_subscription=every,
        )
        await hub.deliverers[0].run_once()

    asyncio.run(items_once())  # item A: tried once, retrying, then its hub stops
    with store.unit_of_work() as uow:
        conn = uow.conn  # type: ignore[attr-defined]
        # Long overdue: nothing works on it.
        conn.exec_driver_sql(
            "UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000Z' "
            "WHERE status = 'retrying'"
        )
        uow.commit()
    stock_only = DistributionHub(
        store,
        [compiled.subscriptions["shop.stock"]],
        OutboxFeed(store, utc_now),
        {"shop": SandboxConnector(tmp_path / "shop.db")},
        poll_interval=0.02,
        every_subscription=every,
    )
    asyncio.run(stock_only.run_until_idle(timeout=30, settle=0.3))
    [dead] = dead_letters(store)
    assert dead.rule == AWAITING_REFERENCE and "after 2 attempt(s)" in dead.message


def test_dead_letters_awaiting_a_reference_are_looked_at_on_their_own_cadence(
    store: Store, tmp_path: Path
) -> None:
    """Every look reads them all; the parked poller looked twice a second (20,000 of them
    took 1 to 2 s a look, back to back)."""
    compiled = landscape()
    ingest = Ingestor(store, compiled)
    ingest.ingest("erp", "item", [SourceRecord({"sku": "A"})])
    ingest.ingest("wms", "inventory", [SourceRecord({"sku": "A", "qty": "5"})])
    deliver(
        store, compiled, SandboxConnector(tmp_path / "shop.db", Faults(fail_when="handle == 'A'"))
    )
    inbox = ExceptionsInbox(store, ingest, references_every=3600)
    looked: list[int] = []
    real = inbox._references_arrived

    def counted(uow: object, entries: list[ExceptionEntry]) -> list[ExceptionEntry]:
        looked.append(len(entries))
        return real(uow, entries)  # type: ignore[arg-type]

    inbox._references_arrived = counted  # type: ignore[method-assign]
    for _ in range(3):
        inbox.retry_parked(dt.datetime.now(dt.UTC))
    assert looked == [1]
