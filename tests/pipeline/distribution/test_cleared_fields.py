"""A field cleared at its source reaches a consumer that holds the record as null, once;
a consumer that gets the record for the first time is never sent null."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mastersync.connectors.sandbox.target import Faults, SandboxConnector
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.pipeline.distribution.deliverer import Deliverer
from mastersync.pipeline.distribution.replay import plan_replay, queue_replay
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import ReplaySelection, Store

LANDSCAPE = {
    "name": "cleared",
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
                        "brand": "brand",
                        "lifecycle_state": {"from": "st", "default": "active"},
                        "dimensions.length_cm": {"from": "l", "optional": True, "number": True},
                        "dimensions.height_cm": {"from": "h", "optional": True, "number": True},
                    },
                }
            },
        },
        "shop": {
            "kind": "ecommerce",
            "delivery": {"batch_size": 50},
            "outbound": {
                "items": {
                    "domain": "item",
                    "filter": "lifecycle_state != 'discontinued'",
                    "mapping": {
                        "fields": {
                            "handle": "sku",
                            "title": "name",
                            "maker": "brand",
                            "dims": "dimensions",
                            "on_sale": {"from": "name", "when": "lifecycle_state == 'active'"},
                        }
                    },
                }
            },
        },
    },
}


class Shop:
    """The hub, the ERP feeding it and the shop it delivers to, with every payload sent."""

    def __init__(self, store: Store, folder: Path, faults: Faults | None = None) -> None:
        self.store = store
        landscape = compile_landscape(Landscape.model_validate(LANDSCAPE))
        self.ingestor = Ingestor(store, landscape)
        self.connector: Any = SandboxConnector(folder / "shop.db", faults or Faults(seed=1))
        self.sent: list[tuple[int, dict[str, Any]]] = []
        # (version, whether the hub said the consumer holds the record) of each request.
        self.held: list[tuple[int, bool]] = []
        original = self.connector.send_batch

        async def recording(requests: Any) -> Any:
            self.sent.extend((r.version, dict(r.payload)) for r in requests)
            self.held.extend((r.version, r.held) for r in requests)
            return await original(requests)

        self.connector.send_batch = recording
        sub = landscape.subscriptions["shop.items"]
        self.deliverer = Deliverer(store, sub, self.connector, clock=utc_now, direct=True)

    def send(self, *rows: dict[str, Any]) -> None:
        report = self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])
        assert report.outcomes["accepted"] == len(rows), report.samples

    def deliver(self) -> list[tuple[int, dict[str, Any]]]:
        self.sent.clear()
        for _ in range(3):
            asyncio.run(self.deliverer.run_once())
        return list(self.sent)


def test_a_cleared_field_goes_out_as_null_to_a_consumer_holding_the_record(
    store: Store, tmp_path: Path
) -> None:
    """The ERP clears an item's brand: the shop, which was sent the brand, is told null
    (left out, a consumer that merges what it is sent kept the old brand for good); the
    next change does not send null again."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "A1", "v": 1, "name": "Gloves", "brand": "Acme"})
    assert shop.deliver() == [
        (1, {"handle": "A1", "title": "Gloves", "on_sale": "Gloves", "maker": "Acme"})
    ]
    shop.send({"sku": "A1", "v": 2, "name": "Gloves", "brand": None})
    assert shop.deliver() == [
        (2, {"handle": "A1", "title": "Gloves", "on_sale": "Gloves", "maker": None})
    ]
    shop.send({"sku": "A1", "v": 3, "name": "Gloves XL", "brand": None})
    assert shop.deliver() == [(3, {"handle": "A1", "title": "Gloves XL", "on_sale": "Gloves XL"})]
    # Requests say whether the consumer holds the record (what a null is trusted by).
    assert shop.held == [(1, False), (2, True), (3, True)]


def test_a_new_record_is_never_sent_null(store: Store, tmp_path: Path) -> None:
    """A record the consumer does not hold yet goes out without the fields it lacks: null
    would override the consumer's own defaults (NOT NULL columns, on_create values)."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "B1", "v": 1, "name": "Tape", "brand": None})
    assert shop.deliver() == [(1, {"handle": "B1", "title": "Tape", "on_sale": "Tape"})]


def test_versions_sent_in_one_round_each_clear_against_the_one_before(
    store: Store, tmp_path: Path
) -> None:
    """Three versions reach the consumer in one round: the one that clears the brand says
    null, the one after it (brand still empty) does not."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "C1", "v": 1, "name": "Bolts", "brand": "Würth"})
    shop.deliver()
    shop.send({"sku": "C1", "v": 2, "name": "Bolts M8", "brand": "Würth"})
    shop.send({"sku": "C1", "v": 3, "name": "Bolts M8", "brand": None})
    shop.send({"sku": "C1", "v": 4, "name": "Hex bolts", "brand": None})
    assert shop.deliver() == [
        (2, {"handle": "C1", "title": "Bolts M8", "on_sale": "Bolts M8", "maker": "Würth"}),
        (3, {"handle": "C1", "title": "Bolts M8", "on_sale": "Bolts M8", "maker": None}),
        (4, {"handle": "C1", "title": "Hex bolts", "on_sale": "Hex bolts"}),
    ]


def test_a_backlog_read_from_the_store_clears_against_what_the_consumer_holds(
    store: Store, tmp_path: Path
) -> None:
    """A hub started afresh (nothing cached) finds the consumer holding version 1 and the
    record at version 3 with its brand gone: the state the consumer holds is read back from
    the record's history, and the brand goes out as null."""
    Shop(store, tmp_path).send({"sku": "D1", "v": 1, "name": "Towels", "brand": "Tork"})
    first = Shop(store, tmp_path)
    first.deliver()
    first.send({"sku": "D1", "v": 2, "name": "Towels", "brand": None})
    first.send({"sku": "D1", "v": 3, "name": "Paper towels", "brand": None})
    fresh = Shop(store, tmp_path)  # another deliverer: an empty state cache
    assert fresh.deliver() == [
        (2, {"handle": "D1", "title": "Towels", "on_sale": "Towels", "maker": None}),
        (3, {"handle": "D1", "title": "Paper towels", "on_sale": "Paper towels"}),
    ]


def test_a_field_of_an_object_cleared_goes_out_as_null_inside_it(
    store: Store, tmp_path: Path
) -> None:
    """Review: only fields gone from the record's top level were looked at: a height
    cleared from the item's dimensions stayed at a consumer that merges objects."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "N1", "v": 1, "name": "Box", "brand": None, "l": "30", "h": "20"})
    shop.deliver()
    shop.send({"sku": "N1", "v": 2, "name": "Box", "brand": None, "l": "30", "h": None})
    shop.send({"sku": "N1", "v": 3, "name": "Box", "brand": None, "l": None, "h": None})
    [(_, second), (_, third)] = shop.deliver()
    assert second["dims"] == {"length_cm": "30", "height_cm": None}
    # The whole object gone: each field the consumer had, null (not a null object, which
    # would wipe fields the hub never sent there).
    assert third["dims"] == {"length_cm": None}


def test_an_output_a_condition_drops_goes_out_as_null(store: Store, tmp_path: Path) -> None:
    """Review: a mapped field whose condition stops holding (no field of the record gone)
    stayed at the consumer."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "K1", "v": 1, "name": "Pen", "brand": None})
    shop.deliver()
    shop.send({"sku": "K1", "v": 2, "name": "Pen", "brand": None, "st": "approved"})
    assert shop.deliver() == [(2, {"handle": "K1", "title": "Pen", "on_sale": None})]


def test_a_dead_letter_replayed_clears_what_its_version_cleared(
    store: Store, tmp_path: Path
) -> None:
    """Review: the version that cleared the brand was refused (dead); replayed once the
    consumer took it again, it went without the null, and the next version compared with
    it found nothing cleared: the old brand stayed for good."""
    shop = Shop(store, tmp_path, Faults(seed=1, reject_when="title == 'POISON'"))
    shop.send({"sku": "D1", "v": 1, "name": "Tape", "brand": "Tesa"})
    shop.deliver()
    shop.send({"sku": "D1", "v": 2, "name": "POISON", "brand": None})
    shop.deliver()
    shop.connector.target.set_faults(Faults(seed=1))
    healed = Shop(store, tmp_path)
    with store.unit_of_work(write=False) as uow:
        found = uow.find_master("item", "erp", "D1")
    assert found is not None
    selection = ReplaySelection("shop.items", master_id=found)
    plan = plan_replay(store, selection, "item", new_id, keyed=True)
    queue_replay(store, plan, "item", utc_now)
    sent = healed.deliver()
    assert (2, {"handle": "D1", "title": "POISON", "on_sale": "POISON", "maker": None}) in sent


def test_a_record_reactivated_clears_against_the_last_version_it_was_sent_in_full(
    store: Store, tmp_path: Path
) -> None:
    """Review: the brand was cleared in the version that took the item out of the shop's
    filter (a deactivation, which sends no fields); reactivated, the item was compared
    with that version and the shop kept the old brand. The applied row keeps naming the
    last version sent in full."""
    shop = Shop(store, tmp_path)
    shop.send({"sku": "R1", "v": 1, "name": "Mop", "brand": "Vileda"})
    shop.deliver()
    shop.send({"sku": "R1", "v": 2, "name": "Mop", "brand": None, "st": "discontinued"})
    shop.deliver()
    shop.send({"sku": "R1", "v": 3, "name": "Mop", "brand": None})
    assert shop.deliver() == [
        (3, {"handle": "R1", "title": "Mop", "on_sale": "Mop", "maker": None})
    ]
