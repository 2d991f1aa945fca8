"""Distribution against real stores and a misbehaving consumer: nothing lost, nothing applied
twice, per-record order, poison records dead-lettered while the rest flows."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from mastersync.backends.sql.tables import applied, deliveries
from mastersync.bootstrap import open_store
from mastersync.connectors.sandbox.target import Faults, RateLimit, SandboxConnector
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.pipeline.distribution.deliverer import Deliverer
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed, queue_events
from mastersync.pipeline.distribution.replay import plan_replay, queue_replay
from mastersync.pipeline.distribution.state_cache import StateCache
from mastersync.pipeline.exceptions import ExceptionsInbox, RetryReport
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.inbound import parked_poller
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest
from mastersync.ports.store import ExceptionFilter, ReplaySelection, Store

FAST = {
    "max_attempts": 4,
    "backoff": {"initial": "20ms", "max": "100ms"},
    "timeout": "1s",
    "batch_size": 50,
}


def landscape(
    mapping: dict[str, Any] | None = None,
    filter: str = "lifecycle_state == 'active'",
    subscription: dict[str, Any] | None = None,
    shop: dict[str, Any] | None = None,
    domains: dict[str, Any] | None = None,
    **delivery: Any,
) -> CompiledLandscape:
    return compile_landscape(
        Landscape.model_validate(
            {
                "name": "dist",
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
                                    "lifecycle_state": {"from": "st", "default": "active"},
                                },
                            }
                        },
                    },
                    "shop": {
                        "kind": "ecommerce",
                        "delivery": {**FAST, **delivery},
                        "outbound": {
                            "items": {
                                "domain": "item",
                                "filter": filter,
                                "mapping": {
                                    "fields": mapping or {"handle": "sku", "title": "name"}
                                },
                                **(subscription or {}),
                            }
                        },
                        **(shop or {}),
                    },
                },
                **({"domains": domains} if domains else {}),
            }
        )
    )


class Estate:
    """A store, the ERP feeding it, and the shop consuming from it."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        faults: Faults | None = None,
        subscription: dict[str, Any] | None = None,
        shop: dict[str, Any] | None = None,
        domains: dict[str, Any] | None = None,
        **delivery: Any,
    ) -> None:
        self.store = store
        self.landscape = landscape(
            subscription=subscription, shop=shop, domains=domains, **delivery
        )
        self.ingestor = Ingestor(store, self.landscape, chunk_size=50)
        self.connector = SandboxConnector(folder / "shop.db", faults or Faults(seed=7))
        # What the hub delivers to (a test may put another consumer there).
        self.shop: Any = self.connector

    def send(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def deliver(self, timeout: float = 30) -> Any:
        hub = DistributionHub(
            self.store,
            list(self.landscape.subscriptions.values()),
            OutboxFeed(self.store, utc_now),
            {"shop": self.shop},
            poll_interval=0.02,
        )
        return asyncio.run(hub.run_until_idle(timeout=timeout, settle=0.3))

    def replay(self, master: str) -> None:
        """Queue a replay of every version of one record."""
        selection = ReplaySelection("shop.items", master_id=master)
        queue_replay(
            self.store, plan_replay(self.store, selection, "item", new_id), "item", utc_now
        )

    def master(self, sku: str) -> str:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.find_master("item", "erp", sku)
        assert found is not None
        return found

    def golden_versions(self) -> dict[str, int]:
        with self.store.unit_of_work(write=False) as uow:
            return {g.master_id: g.version for g in uow.list_golden("item", limit=10_000)}


def per_record(log: list[tuple[str, int, str]]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = defaultdict(list)
    for master, version, _ in log:
        versions[master].append(version)
    return versions


def test_every_change_reaches_the_consumer_in_order_once(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    for v in (1, 2, 3):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"Item {i} v{v}"} for i in range(30)))
    totals = estate.deliver()
    assert totals.delivered == 90 and totals.dead == 0
    log = estate.connector.target.log()
    assert all(v == [1, 2, 3] for v in per_record(log).values())
    held = estate.connector.target.records("item")
    assert held[estate.master("A7")]["payload"] == {"handle": "A7", "title": "Item 7 v3"}
    # Each delivery is in the record's lineage, with its attempts and latency.
    with store.unit_of_work(write=False) as uow:
        receipts = [e for e in uow.lineage(master_id=estate.master("A7")) if e.stage == "deliver"]
        stats = uow.delivery_stats({"shop.items": "item"})[0]
    assert [r.golden_version for r in receipts] == [1, 2, 3]
    assert receipts[0].system == "shop" and receipts[0].detail["attempts"] == 1
    assert receipts[0].source_key == held[estate.master("A7")]["key"]
    assert (stats.delivered, stats.pending, stats.lag) == (90, 0, 0)
    assert stats.p50_ms is not None and stats.p99_ms is not None
    # The shop's own key is now a cross-reference of the golden record, and no source
    # record: `status` counted the consumers' keys as "source records linked".
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("item", "shop", held[estate.master("A7")]["key"]) == (
            estate.master("A7")
        )
        [counts] = uow.domain_counts()
    assert (counts.golden, counts.source_records) == (30, 30)


def test_transient_failures_are_retried_without_loss_duplication_or_disorder(
    store: Store, tmp_path: Path
) -> None:
    faults = Faults(
        error_rate=0.25,
        duplicate_ack_rate=0.2,
        rate_limit=RateLimit(every=13, burst=2, retry_after=0.05),
        seed=3,
    )
    estate = Estate(store, tmp_path, faults, max_attempts=30)
    for v in (1, 2, 3, 4):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"n{v}"} for i in range(25)))
    totals = estate.deliver(timeout=60)
    assert totals.dead == 0 and totals.retried > 0
    versions = per_record(estate.connector.target.log())
    assert len(versions) == 25
    assert all(v == [1, 2, 3, 4] for v in versions.values())  # once each, in order


def test_a_poison_record_is_dead_lettered_while_the_others_flow(
    store: Store, tmp_path: Path
) -> None:
    faults = Faults(reject_when="title == 'POISON'", fail_when="title == 'FLAKY'", seed=1)
    estate = Estate(store, tmp_path, faults)
    estate.send(
        {"sku": "P1", "v": 1, "name": "POISON"},
        {"sku": "F1", "v": 1, "name": "FLAKY"},
        *({"sku": f"A{i}", "v": 1, "name": "fine"} for i in range(20)),
    )
    totals = estate.deliver()
    assert totals.delivered == 20 and totals.dead == 2
    with store.unit_of_work(write=False) as uow:
        dead = {e.master_id: e for e in uow.exceptions(ExceptionFilter(kind="dead_letter"))}
    rejected, exhausted = dead[estate.master("P1")], dead[estate.master("F1")]
    assert rejected.rule == "rejected" and "422" in rejected.message
    assert rejected.payload["request"] == {"handle": "P1", "title": "POISON"}
    assert rejected.payload["response"] == '{"error": "rejected"}'
    assert exhausted.rule == "exhausted" and len(exhausted.payload["attempts"]) == 4
    assert (exhausted.attempts, rejected.attempts) == (4, 1)  # the delivery's tries
    # Fixed at the consumer, the dead letters are sent again from the inbox.
    estate.connector.target.set_faults(Faults())
    time.sleep(0.6)  # the connector re-reads faults every half second
    inbox = ExceptionsInbox(store, estate.ingestor)
    report = inbox.retry(inbox.entries([rejected.id or 0, exhausted.id or 0]))
    # Queued again, not resolved: whether they get through is for the hub's next round.
    assert sorted(report.queued) == sorted([rejected.id, exhausted.id])
    assert report.resolved == []
    assert estate.deliver().delivered == 2
    assert len(estate.connector.target.records("item")) == 22
    # A dead letter whose record the consumer got since (a newer version) is resolved.
    estate.connector.target.set_faults(Faults(reject_when="title == 'again'", seed=1))
    time.sleep(0.6)
    estate.send({"sku": "A1", "v": 2, "name": "again"})
    estate.deliver()
    with store.unit_of_work(write=False) as uow:
        again = uow.exceptions(ExceptionFilter(kind="dead_letter"))[0]
    assert again.master_id == estate.master("A1") and again.payload["version"] == 2
    estate.connector.target.set_faults(Faults())
    time.sleep(0.6)
    estate.send({"sku": "A1", "v": 3, "name": "fixed"})
    estate.deliver()
    report = inbox.retry(inbox.entries([again.id or 0]))
    assert (report.resolved, report.queued) == ([again.id], [])


def _dead_then_skipped(store: Store, tmp_path: Path) -> Estate:
    """P1's version 1 dead-lettered, version 2 (discontinued) skipped by the filter while
    the shop held nothing; the shop takes everything again."""
    estate = Estate(store, tmp_path, Faults(reject_when="title == 'POISON'", seed=1))
    estate.send({"sku": "P1", "v": 1, "name": "POISON"})
    assert estate.deliver().dead == 1
    estate.send({"sku": "P1", "v": 2, "name": "POISON", "st": "discontinued"})
    assert estate.deliver().skipped == 1
    estate.connector.target.set_faults(Faults())
    time.sleep(0.6)  # the connector re-reads faults every half second
    return estate


def test_a_dead_letter_a_later_version_decided_against_is_not_sent_again(
    store: Store, tmp_path: Path
) -> None:
    """Version 1 died; version 2 (discontinued) was skipped, the consumer holding nothing:
    sending version 1 from the inbox put an active record there that the hub said was not."""
    estate = _dead_then_skipped(store, tmp_path)
    inbox = ExceptionsInbox(store, estate.ingestor)
    with store.unit_of_work(write=False) as uow:
        (dead,) = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    report = inbox.retry([dead])
    assert (report.resolved, report.queued) == ([dead.id], [])
    # Said apart from the resolved that were sent (the CLI printed "resolved: 1" alone).
    assert report.superseded == [dead.id]
    estate.deliver()
    assert estate.connector.target.records("item") == {}
    with store.unit_of_work(write=False) as uow:
        settled = uow.exception(dead.id or 0)
        stats = uow.delivery_stats({"shop.items": "item"})[0]
    assert settled is not None and settled.resolution is not None
    assert settled.resolution["note"] == "superseded: version 2 was skipped since"
    # Settled, the delivery is no longer counted as dead.
    assert (stats.dead, stats.skipped) == (0, 2)


def test_a_replay_of_a_dead_version_a_later_one_decided_against_sends_nothing(
    store: Store, tmp_path: Path
) -> None:
    """As the retry above, by replay: version 1 died, version 2 (discontinued) was skipped,
    and a replay of version 1 put a sellable item in the shop that the golden record had
    discontinued."""
    estate = _dead_then_skipped(store, tmp_path)
    master = estate.master("P1")
    with store.unit_of_work(write=False) as uow:
        [v1] = [e for e in uow.events(master) if e.version == 1]
    plan = plan_replay(store, ReplaySelection("shop.items", event_id=v1.event_id), "item", new_id)
    assert queue_replay(store, plan, "item", utc_now) == 1
    totals = estate.deliver()
    assert (totals.delivered, totals.skipped) == (0, 1)
    assert estate.connector.target.records("item") == {}
    d = deliveries.c
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        replayed = conn.execute(sa.select(d.status, d.last_error).where(d.replay != "")).all()
    assert [tuple(r) for r in replayed] == [("skipped", "superseded: version 2 was skipped since")]


def test_a_dead_letter_of_a_subscription_gone_from_the_landscape_is_not_queued(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path, Faults(reject_when="title == 'POISON'", seed=1))
    estate.send({"sku": "P1", "v": 1, "name": "POISON"})
    estate.deliver()
    with store.unit_of_work(write=False) as uow:
        (dead,) = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    renamed = landscape()
    renamed.subscriptions.pop("shop.items")  # say, renamed to shop.products
    inbox = ExceptionsInbox(store, Ingestor(store, renamed))
    report = inbox.retry([dead])
    assert report.queued == [] and "not in the landscape any more" in report.skipped[dead.id or 0]


def test_a_record_the_outbound_mapping_cannot_shape_is_a_dead_letter_naming_the_field(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    estate.landscape = landscape({"sku": "sku", "weight": {"from": "name", "number": True}})
    estate.ingestor = Ingestor(store, estate.landscape)
    estate.send({"sku": "A1", "v": 1, "name": "Not a number"})
    assert estate.deliver().dead == 1
    with store.unit_of_work(write=False) as uow:
        (dead,) = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    assert (dead.field, dead.rule) == ("weight", "undeliverable")
    assert "outbound mapping: weight: " in dead.message


def test_a_record_the_filter_cannot_evaluate_is_a_dead_letter_and_the_rest_flows(
    store: Store, tmp_path: Path
) -> None:
    """A TypeError in the filter ('Pen' > 1) failed every round: the subscription stood
    still for good, with nothing in the inbox."""
    estate = Estate(store, tmp_path)
    estate.landscape = landscape(filter="sku == 'B1' || name > `1`")
    estate.ingestor = Ingestor(store, estate.landscape)
    estate.send({"sku": "A1", "v": 1, "name": "Pen"}, {"sku": "B1", "v": 1, "name": "Ink"})
    report = estate.deliver()
    assert (report.delivered, report.dead) == (1, 1)
    assert [v for _, v, _ in estate.connector.target.log()] == [1]
    with store.unit_of_work(write=False) as uow:
        (dead,) = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    assert (dead.master_id, dead.field) == (estate.master("A1"), "filter")
    assert "cannot be evaluated on this record" in dead.message


def test_an_outage_holds_everything_until_the_consumer_returns(
    store: Store, tmp_path: Path
) -> None:
    start = time.time()
    estate = Estate(store, tmp_path, Faults(outages=[(start, start + 1.5)]), max_attempts=50)
    for v in (1, 2):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"n{v}"} for i in range(10)))
    totals = estate.deliver(timeout=30)
    assert totals.retried > 0 and totals.dead == 0
    log = estate.connector.target.log()
    assert all(v == [1, 2] for v in per_record(log).values()) and len(log) == 20


def test_a_hub_that_gives_up_waiting_for_idle_says_what_is_left(
    store: Store, tmp_path: Path
) -> None:
    """It said only "the log above says what held the hub up", with nothing in the log."""
    start = time.time()
    estate = Estate(store, tmp_path, Faults(outages=[(start, start + 60)]), max_attempts=50)
    estate.send(*({"sku": f"A{i}", "v": 1, "name": "n"} for i in range(3)))
    totals = estate.deliver(timeout=1.5)
    assert totals.idle is False
    assert totals.left == [
        "shop.items: 3 deliveries open in the queue (retrying, or behind one that is; "
        "`mastersync deliveries` has more)"
    ]
    assert estate.deliver(timeout=0.01).left  # given up at once: still there
    # The store failing as well: what is left says so, and the hub still stops in order.
    hub = DistributionHub(
        store,
        list(estate.landscape.subscriptions.values()),
        OutboxFeed(store, utc_now),
        {"shop": estate.shop},
        poll_interval=0.02,
    )

    async def store_down(*, ask_feed: bool = True) -> list[str]:
        raise OSError("the store went away")

    hub.left = store_down  # type: ignore[method-assign]
    totals = asyncio.run(hub.run_until_idle(timeout=0.5, settle=0.3))
    assert totals.idle is False
    assert totals.left == ["what is left could not be read (OSError: the store went away)"]


def test_duplicate_and_out_of_order_source_input_has_no_effect_beyond_the_newest(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    estate.send({"sku": "A1", "v": 3, "name": "third"})
    estate.send(
        {"sku": "A1", "v": 1, "name": "first"},
        {"sku": "A1", "v": 2, "name": "second"},
        {"sku": "A1", "v": 3, "name": "third"},
    )
    estate.deliver()
    assert estate.connector.target.log() == [(estate.master("A1"), 1, "upsert")]
    assert estate.connector.target.records("item")[estate.master("A1")]["payload"]["title"] == (
        "third"
    )


def test_records_that_stop_matching_are_deactivated(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    estate.send(
        {"sku": "A1", "v": 1, "name": "x"}, {"sku": "D1", "v": 1, "name": "y", "st": "draft"}
    )
    estate.send({"sku": "A1", "v": 2, "name": "x", "st": "discontinued"})
    totals = estate.deliver()
    assert (totals.delivered, totals.skipped) == (2, 1)
    assert [op for _, _, op in estate.connector.target.log()] == ["upsert", "deactivate"]


def _unchanged_for_the_shop(estate: Estate, *, rounds: bool) -> Any:
    """A1 v1; v2 changes only its lifecycle state, which the shop neither receives nor
    filters on; v3 renames it. Delivered in one go, or a round per version."""
    versions = (
        {"sku": "A1", "v": 1, "name": "x"},
        {"sku": "A1", "v": 2, "name": "x", "st": "draft"},
        {"sku": "A1", "v": 3, "name": "y", "st": "draft"},
    )
    totals = []
    for row in versions:
        estate.send(row)
        if rounds:
            totals.append(estate.deliver())
    if not rounds:
        totals.append(estate.deliver())
    return totals


@pytest.mark.parametrize("rounds", [False, True], ids=["one-round", "round-per-version"])
def test_a_version_that_changes_nothing_the_consumer_receives_is_not_sent(
    store: Store, tmp_path: Path, rounds: bool
) -> None:
    estate = Estate(store, tmp_path, filter="lifecycle_state != 'discontinued'")
    totals = _unchanged_for_the_shop(estate, rounds=rounds)
    assert sum(t.delivered for t in totals) == 2 and sum(t.skipped for t in totals) == 1
    assert [v for _, v, _ in estate.connector.target.log()] == [1, 3]
    master = estate.master("A1")
    with store.unit_of_work(write=False) as uow:
        rows = uow.conn.execute(  # type: ignore[attr-defined]
            sa.select(deliveries.c.version, deliveries.c.status, deliveries.c.last_error)
            .where(deliveries.c.master_id == master)
            .order_by(deliveries.c.version)
        ).all()
        held = uow.applied_for("shop.items", [master])[master]
        [stats] = uow.delivery_stats({"shop.items": "item"})
    assert [(v, s) for v, s, _ in rows] == [(1, "delivered"), (2, "skipped"), (3, "delivered")]
    assert (stats.delivered, stats.skipped, stats.unchanged) == (2, 1, 1)
    assert rows[1][2] == "nothing the consumer receives changed since version 1"
    # The consumer holds version 3, under the key it gave for version 1.
    assert (held.version, held.active) == (3, True)
    assert held.target_key == estate.connector.target.records("item")[master]["key"]
    # A replay sends again what was sent (duplicates to the shop), not the version that was
    # not: sent now, it would be an older state under a key the shop never saw.
    estate.replay(master)
    again = estate.deliver()
    assert (again.delivered, again.skipped) == (2, 1)
    assert [v for _, v, _ in estate.connector.target.log()] == [1, 3]


def test_a_consumer_that_asks_for_every_version_gets_the_unchanged_ones_too(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(
        store,
        tmp_path,
        filter="lifecycle_state != 'discontinued'",
        subscription={"send_unchanged": True},
    )
    totals = _unchanged_for_the_shop(estate, rounds=False)
    assert (totals[0].delivered, totals[0].skipped) == (3, 0)
    assert [v for _, v, _ in estate.connector.target.log()] == [1, 2, 3]


def test_an_unchanged_payload_goes_to_a_consumer_that_sent_the_record_since(
    store: Store, tmp_path: Path
) -> None:
    """The shop is also a source: it renamed the record (not its field to write) and gave
    it a description. The new version sends the shop what it was sent before, but the
    shop holds another name now: it is sent, which puts the owner's name back. (A source
    may change a record without the hub knowing, say in an edit the hub rejected: such a
    consumer gets every version.)"""
    estate = Estate(
        store,
        tmp_path,
        shop={
            "inbound": {
                "item": {
                    "key": "id",
                    "version": {"from": "rev", "kind": "counter"},
                    "fields": {"name": "title", "description": "body"},
                }
            }
        },
        domains={"item": {"ownership": {"name": ["erp"], "description": ["shop"]}}},
    )
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    master = estate.master("A1")
    key = estate.connector.target.records("item")[master]["key"]
    estate.ingestor.ingest(
        "shop", "item", [SourceRecord({"id": key, "rev": 1, "title": "renamed", "body": "d"})]
    )
    with store.unit_of_work(write=False) as uow:
        golden = uow.golden(master)
    assert golden is not None and golden.version == 2
    assert (golden.attributes["name"], golden.attributes["description"]) == ("x", "d")
    totals = estate.deliver()
    assert (totals.delivered, totals.skipped) == (1, 0)
    assert [v for _, v, _ in estate.connector.target.log()] == [1, 2]


def test_a_version_the_consumer_had_already_tells_nothing_of_what_it_holds(
    store: Store, tmp_path: Path
) -> None:
    """Review: the shop's field was renamed and the current version replayed; the shop
    answered 'duplicate' (it had that version, in the old shape), and the hub took the new
    shape as what it holds, so the next version, unchanged in that shape, was skipped."""
    estate = Estate(store, tmp_path, filter="lifecycle_state != 'discontinued'")
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    estate.landscape = landscape(
        mapping={"handle": "sku", "label": "name"}, filter="lifecycle_state != 'discontinued'"
    )
    master = estate.master("A1")
    estate.replay(master)
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "x", "st": "draft"})
    assert estate.deliver().delivered == 1
    held = estate.connector.target.records("item")[master]["payload"]
    assert held == {"handle": "A1", "label": "x"}


def test_a_digest_kept_for_an_older_version_is_not_trusted(store: Store, tmp_path: Path) -> None:
    """Review: a hub of the release before moves the consumer's version on without the
    digest; the digest of what it held before must not pass for what it holds now."""
    estate = Estate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "y"}, {"sku": "A1", "v": 3, "name": "x"})
    with store.unit_of_work() as uow:
        # What an older hub's delivery of version 2 leaves: the version moved, the digest not.
        uow.conn.execute(sa.update(applied).values(version=2))  # type: ignore[attr-defined]
        uow.commit()
    totals = estate.deliver()
    assert (totals.delivered, totals.skipped) == (1, 1)
    assert [v for _, v, _ in estate.connector.target.log()] == [1, 3]


def test_a_record_deactivated_then_back_unchanged_is_sent_again(
    store: Store, tmp_path: Path
) -> None:
    """The consumer deactivated it: the same payload as before is news to it."""
    estate = Estate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "x", "st": "discontinued"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 3, "name": "x", "st": "active"})
    assert estate.deliver().delivered == 1
    log = estate.connector.target.log()
    assert [(v, op) for _, v, op in log] == [(1, "upsert"), (2, "deactivate"), (3, "upsert")]


def test_an_upsert_after_a_deactivation_says_so_and_no_other_does(
    store: Store, tmp_path: Path
) -> None:
    """Connectors that deactivate by a flag set it back on such an upsert (and only then: a
    record a person archived at the consumer stays archived)."""
    estate = Estate(store, tmp_path)
    sent: list[tuple[int, str, bool]] = []
    real = estate.connector

    class Recording:
        applies_keys_once = True  # the sandbox target's, which it passes every send to

        async def send(self, request: DeliveryRequest) -> DeliveryAck:
            sent.append((request.version, request.operation.value, request.reactivate))
            return await real.send(request)

        async def close(self) -> None:
            await real.close()

    estate.shop = Recording()
    for v, st in ((1, "active"), (2, "discontinued"), (3, "active")):
        estate.send({"sku": "A1", "v": v, "name": f"x{v}", "st": st})
        estate.deliver()
    estate.send({"sku": "A1", "v": 4, "name": "x4", "st": "active"})
    estate.deliver()
    assert sent == [
        (1, "upsert", False),
        (2, "deactivate", False),
        (3, "upsert", True),
        (4, "upsert", False),
    ]
    # A replay re-asserts the hub's state: its upserts say so (its replayed deactivation
    # does not move the consumer's applied row back, which said nothing).
    sent.clear()
    estate.replay(estate.master("A1"))
    estate.deliver()
    assert sent[-2:] == [(3, "upsert", True), (4, "upsert", True)]


def test_a_replay_is_idempotent_for_the_consumer(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    for v in (1, 2):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"n{v}"} for i in range(5)))
    estate.deliver()
    before = estate.connector.target.log()
    with store.unit_of_work(write=False) as uow:
        first = uow.delivery_stats({"shop.items": "item"})[0]
    plan = plan_replay(store, ReplaySelection("shop.items", since="2000-01-01"), "item", new_id)
    assert len(plan.events) == 10
    assert queue_replay(store, plan, "item", utc_now) == 10
    totals = estate.deliver()
    assert totals.delivered == 10
    assert estate.connector.target.log() == before
    # Replays count apart (see the test below), and not towards latency from acceptance: a
    # replay of last week's events would otherwise make the week the subscription's p99.
    with store.unit_of_work(write=False) as uow:
        after = uow.delivery_stats({"shop.items": "item"})[0]
    assert (after.p50_ms, after.p99_ms) == (first.p50_ms, first.p99_ms)


def _figures(store: Store) -> tuple[int, int, int, int, int, int, int]:
    """shop.items' pending, retrying, dead, delivered, skipped, replayed, replaying."""
    with store.unit_of_work(write=False) as uow:
        [s] = uow.delivery_stats({"shop.items": "item"})
    return (s.pending, s.retrying, s.dead, s.delivered, s.skipped, s.replayed, s.replaying)


def test_a_replay_of_delivered_versions_shows_apart_and_leaves_delivered_as_it_was(
    store: Store, tmp_path: Path
) -> None:
    """Review: a `--since` replay of delivered versions added each of them to `delivered` a
    second time, as if the log held twice as many versions."""
    estate = Estate(store, tmp_path)
    for v in (1, 2):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"n{v}"} for i in range(5)))
    estate.deliver()
    assert _figures(store) == (0, 0, 0, 10, 0, 0, 0)
    plan = plan_replay(store, ReplaySelection("shop.items", since="2000-01-01"), "item", new_id)
    assert queue_replay(store, plan, "item", utc_now) == 10
    # In flight: the versions reached the consumer already; the replay is what is open.
    assert _figures(store) == (0, 0, 0, 10, 0, 10, 10)
    assert estate.deliver().delivered == 10
    assert _figures(store) == (0, 0, 0, 10, 0, 10, 0)


def test_a_replay_of_dead_letters_counts_each_version_once_and_shows_the_replay(
    store: Store, tmp_path: Path
) -> None:
    """Review: `replay --signature` of 129 dead letters, then `run`: their first deliveries
    were settled as skipped and the replays counted again as delivered or skipped, so 129
    versions made 258 outcomes and delivered + skipped exceeded the events in the log."""
    estate = Estate(store, tmp_path, Faults(reject_when="title == 'POISON'", seed=1))
    estate.send(
        *({"sku": f"A{i}", "v": 1, "name": "fine"} for i in range(4)),
        {"sku": "B1", "v": 1, "name": "POISON"},
        {"sku": "B2", "v": 1, "name": "POISON"},
    )
    assert estate.deliver().dead == 2
    # B1's version 2 reaches the shop: the replay will find its version 1 superseded.
    estate.send({"sku": "B1", "v": 2, "name": "fixed"})
    estate.deliver()
    events = 7
    assert _figures(store) == (0, 0, 2, 5, 0, 0, 0)
    estate.connector.target.set_faults(Faults())
    time.sleep(0.6)  # the connector re-reads faults every half second
    with store.unit_of_work(write=False) as uow:
        (signature,) = {e.signature for e in uow.exceptions(ExceptionFilter(kind="dead_letter"))}
    selection = ReplaySelection("shop.items", signature=signature)
    assert queue_replay(store, plan_replay(store, selection, "item", new_id), "item", utc_now) == 2
    # Queued: the two versions are on their way again (not skipped and pending both).
    pending, retrying, dead, delivered, skipped, replayed, replaying = _figures(store)
    assert (pending, dead, delivered, skipped, replayed, replaying) == (2, 0, 5, 0, 2, 2)
    assert pending + retrying + dead + delivered + skipped == events
    estate.deliver()
    # B2's version 1 delivered by the replay, B1's skipped (the shop holds version 2).
    assert _figures(store) == (0, 0, 0, 6, 1, 2, 0)


def test_a_merged_record_is_deactivated_at_the_consumer_and_back_after_unmerge(
    store: Store, tmp_path: Path
) -> None:
    from mastersync.pipeline.matching.merging import merge_records, unmerge_records

    estate = Estate(store, tmp_path)
    # Two items no matching joins (items without shared keys): the shop gets both.
    estate.send(
        {"sku": "A1", "v": 1, "name": "Nitrile gloves"}, {"sku": "B7", "v": 1, "name": "Tape"}
    )
    estate.deliver()
    a, b = estate.master("A1"), estate.master("B7")
    merge = merge_records(store, estate.landscape, a, b, actor="alice")
    totals = estate.deliver()
    assert totals.dead == 0
    held = estate.connector.target.records("item")
    assert (held[a]["active"], held[b]["active"]) == (True, False)
    unmerge_records(store, estate.landscape, merge.id or 0, actor="alice")
    estate.deliver()
    held = estate.connector.target.records("item")
    assert (held[a]["active"], held[b]["active"]) == (True, True)
    assert held[b]["payload"] == {"handle": "B7", "title": "Tape"}


def test_the_state_cache_keeps_the_most_recently_used_versions() -> None:
    cache = StateCache(size=2)
    cache.put(("itm_1", 1), ({"name": "a"}, "t1"))
    cache.put(("itm_1", 2), ({"name": "b"}, "t2"))
    assert cache.get(("itm_1", 1)) == ({"name": "a"}, "t1")  # now the most recent
    cache.put(("itm_2", 1), ({"name": "c"}, "t3"))
    assert ("itm_1", 2) not in cache
    assert ("itm_1", 1) in cache and ("itm_2", 1) in cache


def test_a_backlog_deeper_than_the_state_cache_is_still_delivered(
    store: Store, tmp_path: Path
) -> None:
    """Unwinding a backlog caches more versions than a small cache holds; a round must send
    what it read, not what the cache still has (a miss there is not a lost history)."""
    estate = Estate(store, tmp_path)
    for v in (1, 2, 3):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"Item {i} v{v}"} for i in range(30)))
    sub = next(iter(estate.landscape.subscriptions.values()))
    feed = OutboxFeed(store, utc_now)
    enqueue = queue_events(sub.id, sub.domain, utc_now)
    asyncio.run(feed.dispatch(sub.id, sub.domain, 1000, enqueue))
    deliverer = Deliverer(
        store, sub, estate.connector, clock=utc_now, ordered=True, cache=StateCache(size=2)
    )
    report = asyncio.run(deliverer.run_once())
    assert (report.delivered, report.dead) == (30, 0)


def _rows(store: Store, *, outbox: bool = True) -> list[tuple[str, int, str, int]]:
    with store.unit_of_work(write=False) as uow:
        stats = uow.delivery_stats({"shop.items": "item"})[0]
        # Read from the outbox, the subscription's cursor is past every event.
        assert stats.lag == 0 or not outbox
        conn = uow.conn  # type: ignore[attr-defined]
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                "SELECT master_id, version, status, attempts FROM deliveries ORDER BY id"
            )
        ]


def test_a_round_reading_the_log_sends_each_records_versions_in_order(
    store: Store, tmp_path: Path
) -> None:
    """Straight from the outbox: three versions of a record go in one round, one after the
    other, and each delivery row is written once, as it ends."""
    estate = Estate(store, tmp_path)
    for v in (1, 2, 3):
        estate.send(*({"sku": f"A{i}", "v": v, "name": f"Item {i} v{v}"} for i in range(10)))
    sub = next(iter(estate.landscape.subscriptions.values()))
    deliverer = Deliverer(store, sub, estate.connector, clock=utc_now, ordered=True, direct=True)
    report = asyncio.run(deliverer.run_once())
    assert (report.delivered, report.retrying, report.dead) == (30, 0, 0)
    assert all(v == [1, 2, 3] for v in per_record(estate.connector.target.log()).values())
    rows = _rows(store)
    assert len(rows) == 30 and {(s, a) for _, _, s, a in rows} == {("delivered", 1)}
    assert asyncio.run(deliverer.run_once()).attempted == 0  # the cursor moved with them


def test_a_version_to_retry_holds_the_later_ones_of_its_record_in_the_queue(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path, Faults(fail_when="title == 'FLAKY'", seed=1))
    estate.send({"sku": "F1", "v": 1, "name": "FLAKY"}, {"sku": "A1", "v": 1, "name": "a1"})
    estate.send({"sku": "F1", "v": 2, "name": "f2"}, {"sku": "A1", "v": 2, "name": "a2"})
    estate.send({"sku": "F1", "v": 3, "name": "f3"})
    sub = next(iter(estate.landscape.subscriptions.values()))
    deliverer = Deliverer(store, sub, estate.connector, clock=utc_now, ordered=True, direct=True)
    report = asyncio.run(deliverer.run_once())
    assert (report.delivered, report.retrying) == (2, 1)
    flaky = estate.master("F1")
    held = sorted((v, s) for m, v, s, _ in _rows(store) if m == flaky)
    assert held == [(1, "retrying"), (2, "pending"), (3, "pending")]
    estate.connector.target.set_faults(Faults())
    time.sleep(0.6)  # the connector re-reads faults every half second
    totals = estate.deliver()
    assert totals.dead == 0
    assert per_record(estate.connector.target.log()) == {
        estate.master("A1"): [1, 2],
        flaky: [1, 2, 3],
    }


def test_two_hubs_reading_one_subscription_record_each_event_once(
    store: Store, tmp_path: Path
) -> None:
    """Two deliverers take the same events (two hubs run the subscription): the first to
    record moves the cursor, the other's round is dropped; the consumer applied each
    version once (same idempotency keys)."""
    estate = Estate(store, tmp_path)
    estate.send(*({"sku": f"A{i}", "v": 1, "name": "x"} for i in range(5)))
    sub = next(iter(estate.landscape.subscriptions.values()))
    one, two = (
        Deliverer(store, sub, estate.connector, clock=utc_now, ordered=True, direct=True)
        for _ in range(2)
    )
    first, second = one.planner.plan(utc_now(), None), two.planner.plan(utc_now(), None)
    assert first is not None and second is not None

    async def send(d: Deliverer, planned: Any) -> Any:
        return list(zip(planned.items, await d._send_all(planned.items), strict=True))

    assert one.recorder.record(first, asyncio.run(send(one, first))).delivered == 5
    assert two.recorder.record(second, asyncio.run(send(two, second))).attempted == 0
    assert len(_rows(store)) == 5
    assert sorted(per_record(estate.connector.target.log()).values()) == [[1]] * 5


def test_events_a_dispatcher_queued_are_not_taken_again_from_the_log(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    estate.send(*({"sku": f"A{i}", "v": 1, "name": "x"} for i in range(4)))
    sub = next(iter(estate.landscape.subscriptions.values()))
    enqueue = queue_events(sub.id, sub.domain, utc_now)
    assert asyncio.run(OutboxFeed(store, utc_now).dispatch(sub.id, sub.domain, 2, enqueue)) == 2
    with store.unit_of_work() as uow:  # as if the queueing had not moved the cursor
        uow.conn.exec_driver_sql("DELETE FROM cursors")  # type: ignore[attr-defined]
        uow.commit()
    estate.send(*({"sku": f"A{i}", "v": 2, "name": "y"} for i in range(4)))
    totals = estate.deliver()
    assert (totals.delivered, totals.dead) == (8, 0)
    assert sorted(per_record(estate.connector.target.log()).values()) == [[1, 2]] * 4
    assert len(_rows(store)) == 8


class OutOfOrderBus:
    """A bus that hands events over in the order given (JetStream does, after redelivering
    what a dead hub held), batch by batch; it remembers how each batch was settled."""

    def __init__(self, store: Store, batches: list[list[int]]) -> None:
        with store.unit_of_work(write=False) as uow:
            self.log = uow.outbox_after(0, ["item"], 1000)
        self.batches = batches
        self.settled: list[bool] = []

    async def take(self, subscription: str, domain: str, limit: int) -> Any:
        batch = self.batches.pop(0) if self.batches else []

        async def settle(ok: bool) -> None:
            self.settled.append(ok)

        return [self.log[i] for i in batch], settle


def test_a_version_taken_from_a_bus_before_an_earlier_one_waits_for_it(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    for v in (1, 2, 3, 4):
        estate.send({"sku": "A1", "v": v, "name": f"n{v}"})
    # Version 3 first, then 1, then 2 and 4 (and 3 again, redelivered).
    bus = OutOfOrderBus(store, [[2], [0], [1, 3, 2]])
    sub = next(iter(estate.landscape.subscriptions.values()))
    deliverer = Deliverer(store, sub, estate.connector, clock=utc_now, taking=bus)
    reports = [asyncio.run(deliverer.run_once()) for _ in range(6)]
    assert sum(r.delivered for r in reports) == 4 and bus.settled == [True, True, True]
    assert per_record(estate.connector.target.log()) == {estate.master("A1"): [1, 2, 3, 4]}
    assert sorted((v, s) for _, v, s, _ in _rows(store, outbox=False)) == [
        (1, "delivered"),
        (2, "delivered"),
        (3, "delivered"),
        (4, "delivered"),
    ]


def test_a_hub_moved_off_the_bus_keeps_the_order_the_bus_left_in_the_queue(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    for v in (1, 2):
        estate.send({"sku": "A1", "v": v, "name": f"n{v}"})
    # On the bus, version 2 came first (version 1 still held for a dead hub): it waits.
    sub = next(iter(estate.landscape.subscriptions.values()))
    bus = OutOfOrderBus(store, [[1]])
    asyncio.run(Deliverer(store, sub, estate.connector, clock=utc_now, taking=bus).run_once())
    assert [(v, s) for _, v, s, _ in _rows(store, outbox=False)] == [(2, "pending")]
    # The hub is restarted without the bus (say, in a NATS outage): the outbox feed queues
    # in version order, but what the bus left in the queue is not.
    estate.deliver()
    assert per_record(estate.connector.target.log()) == {estate.master("A1"): [1, 2]}


class FlakyRelay:
    """A relay whose bus is down for its first ``failures`` rounds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []

    async def relay(self, limit: int) -> int:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise ConnectionRefusedError("nats://127.0.0.1:4222: connection refused")
        return 0

    async def backlog(self) -> int:
        return 0

    async def backlog_by_domain(self) -> dict[str, int]:
        return {}

    def interrupt(self) -> None:
        return None

    async def close(self) -> None:
        return None


def test_a_loop_that_keeps_failing_backs_off_logs_once_in_full_and_says_when_it_recovers(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage of the bus (or the store) must not write a traceback per loop several times
    a second: the pause doubles after each failure, the first is logged in full, and the
    loop says once when it works again."""
    store = open_store(sqlite_url)
    store.upgrade()
    relay = FlakyRelay(failures=4)
    hub = DistributionHub(
        store, [], OutboxFeed(store, utc_now), {}, relay=relay, poll_interval=0.01
    )

    async def run_for(seconds: float) -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(hub.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await runner

    with caplog.at_level(logging.WARNING, logger="mastersync.hub"):
        asyncio.run(run_for(2.5))
    store.close()
    failures = [r for r in caplog.records if "relay failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert "connection refused" in str(failures[0].exc_info[1])
    recovered = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert len(recovered) == 1 and "relay works again after 4 failed tries" in recovered[0]
    # Pauses of 0.05, 0.1, 0.2 and 0.4 s after the failed tries (a fixed 0.05 s pause would
    # have made about thirty tries in the same time).
    gaps = [b - a for a, b in pairwise(relay.calls[:5])]
    assert len(gaps) == 4 and all(gap >= 0.05 * 2**i * 0.9 for i, gap in enumerate(gaps))


def test_a_long_outage_logs_a_line_a_minute_and_a_new_kind_of_failure_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mastersync.pipeline.distribution.hub import _MAX_PAUSE, _Trouble

    trouble = _Trouble("deliver shop.items", 0.25)
    with caplog.at_level(logging.INFO, logger="mastersync.hub"):
        pauses = [trouble.failed(TimeoutError("no answer"), t) for t in range(0, 180, 5)]
        trouble.failed(ConnectionResetError("reset by peer"), 181)
        trouble.recovered(190)
    assert pauses[:3] == [0.25, 0.5, 1.0] and max(pauses) == _MAX_PAUSE
    said = [
        (r.getMessage().removeprefix(trouble.name + " "), r.exc_info is not None)
        for r in caplog.records
    ]
    assert said == [
        ("failed; retrying after a pause", True),
        (
            "still failing: 13 tries in 60 s, the last: TimeoutError: no answer",
            False,
        ),
        (
            "still failing: 25 tries in 120 s, the last: TimeoutError: no answer",
            False,
        ),
        ("failed; retrying after a pause", True),
        ("works again after 37 failed tries in 190.0 s", False),
    ]


class _DownThenUpInbox:
    """An inbox whose store is down for its first ``failures`` retries, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def retry_parked(self, now: Any) -> RetryReport:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("the store is down")
        return RetryReport()


def test_a_poller_between_its_polls_is_no_sign_the_store_works_again(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A poller that was not due (returned None without asking the store) was taken for a
    success: the failure count was reset, and a store outage logged a full traceback and a
    false "works again" at every poll."""
    store = open_store(sqlite_url)
    store.upgrade()
    inbox = _DownThenUpInbox(failures=3)
    poll = parked_poller(cast(ExceptionsInbox, inbox), every=0.1)
    hub = DistributionHub(
        store, [], OutboxFeed(store, utc_now), {}, pollers=[poll], poll_interval=0.01
    )

    async def run_for(seconds: float) -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(hub.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await runner

    with caplog.at_level(logging.WARNING, logger="mastersync.hub"):
        asyncio.run(run_for(2.0))
    store.close()
    assert inbox.calls > 3  # it failed three times, then got through
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if "poll 0 failed" in m] == ["poll 0 failed; retrying after a pause"]
    [recovered] = [m for m in said if "works again" in m]
    assert recovered.startswith("poll 0 works again after 3 failed tries")


def test_receipts_are_read_from_deliveries_in_time_order_by_record_and_by_trace(
    store: Store, tmp_path: Path
) -> None:
    """The delivered delivery row is the receipt (no lineage row of its own): a record's
    lineage and a trace's list each delivery after the ingest that made its version, with
    the trace's own version only, and a duplicate acknowledgement says so."""
    estate = Estate(store, tmp_path)
    estate.send({"sku": "R1", "v": 1, "name": "one"})
    estate.deliver()
    estate.send({"sku": "R1", "v": 2, "name": "two"})
    estate.deliver()
    master = estate.master("R1")
    with store.unit_of_work(write=False) as uow:
        entries = uow.lineage(master_id=master)
        stored = uow.conn.exec_driver_sql(  # type: ignore[attr-defined]
            "SELECT count(*) FROM lineage WHERE stage = 'deliver'"
        ).scalar()
    assert stored == 0
    steps = [(e.stage, e.golden_version) for e in entries]
    assert steps == [("ingest", 1), ("deliver", 1), ("ingest", 2), ("deliver", 2)]
    receipt = entries[-1]
    assert receipt.system == "shop" and receipt.detail["subscription"] == "shop.items"
    assert receipt.detail["attempts"] == 1 and receipt.detail["latency_ms"] is not None
    assert receipt.detail["operation"] == "upsert" and receipt.detail["duplicate"] is False
    with store.unit_of_work(write=False) as uow:
        trace = uow.lineage(trace_id=receipt.trace_id)
    assert [(e.stage, e.golden_version) for e in trace if e.stage == "deliver"] == [("deliver", 2)]


def test_a_receipt_comes_before_a_dead_letter_of_its_round_and_old_receipt_rows_once(
    store: Store, tmp_path: Path
) -> None:
    """Review: a dead letter written in the receipt's round has its time, and came first.
    And a hub of the earlier release, still running through the upgrade, writes receipt
    rows: read from its delivery rows, each shows once."""
    estate = Estate(store, tmp_path, Faults(reject_when="title == 'POISON'", seed=1))
    estate.send({"sku": "T1", "v": 1, "name": "fine"})
    estate.send({"sku": "T1", "v": 2, "name": "POISON"})
    estate.deliver()
    master = estate.master("T1")
    with store.unit_of_work() as uow:
        entries = uow.lineage(master_id=master)
        uow.conn.exec_driver_sql(  # type: ignore[attr-defined]
            "INSERT INTO lineage (at, trace_id, stage, outcome, domain, master_id, "
            "golden_version, system, detail) SELECT at, trace_id, 'deliver', 'delivered', "
            f"domain, master_id, golden_version, 'shop', '{{}}' FROM lineage WHERE "
            f"master_id = '{master}' AND golden_version = 1"
        )
        uow.commit()
    steps = [(e.stage, e.outcome, e.golden_version) for e in entries]
    assert steps == [
        ("ingest", "accepted", 1),
        ("ingest", "accepted", 2),
        ("deliver", "delivered", 1),
        ("deliver", "dead", 2),
    ]
    with store.unit_of_work(write=False) as uow:
        assert uow.lineage(master_id=master) == entries


def test_a_receipt_names_a_system_whose_name_holds_a_dot() -> None:
    from mastersync.backends.sql.rows import receipt

    row = {
        "subscription": "shop.eu.items",
        "trace_id": "t",
        "delivered_at": "2026-12-08T00:00:00.000000Z",
        "domain": "item",
        "master_id": "itm_1",
        "version": 1,
        "target_key": "K",
        "attempts": 1,
        "latency_ms": 3.21,
        "operation": "upsert",
        "history": "[]",
        "replay": "",
    }
    assert receipt(row).system == "shop.eu"
