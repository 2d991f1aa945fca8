"""Rounds that take new events straight from the log or a bus: per-record order across gaps
and replays, dead letters that name their delivery when rounds overlap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mastersync.connectors.sandbox.target import Faults
from mastersync.pipeline.distribution.deliverer import Deliverer
from mastersync.pipeline.distribution.replay import plan_replay, queue_replay
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.store import ExceptionFilter, ReplaySelection, Store
from tests.pipeline.test_distribution import Estate, OutOfOrderBus, _rows, per_record


def _deliveries(store: Store) -> list[tuple[str, int, str, int]]:
    return _rows(store, outbox=False)


def test_a_bus_batch_with_a_gap_does_not_send_the_version_after_the_gap(
    store: Store, tmp_path: Path
) -> None:
    """JetStream hands v2 and v4 in one batch while v3 is still held by a dead hub (or was
    nak'd): v4 waits in the queue for v3 (version N+1 never before N), though v2, the next
    after what the consumer has, goes at once."""
    estate = Estate(store, tmp_path)
    for v in (1, 2, 3, 4):
        estate.send({"sku": "A1", "v": v, "name": f"n{v}"})
    # v1 alone; then v2 and v4 (v3 held elsewhere); then v3 redelivered.
    bus = OutOfOrderBus(store, [[0], [1, 3], [2]])
    sub = next(iter(estate.landscape.subscriptions.values()))
    deliverer = Deliverer(store, sub, estate.connector, clock=utc_now, taking=bus)
    for _ in range(6):
        asyncio.run(deliverer.run_once())
    # The consumer must have received every version, in order.
    assert per_record(estate.connector.target.log()) == {estate.master("A1"): [1, 2, 3, 4]}


def test_a_dead_letter_of_a_bus_round_names_a_delivery_that_exists(
    store: Store, tmp_path: Path
) -> None:
    """A bus round whose event another round recorded meanwhile (a redelivered copy taken by
    another hub) drops its outcome: the one dead letter names the delivery row that exists,
    which `exceptions retry` can reopen, and there is one receipt."""
    estate = Estate(store, tmp_path, Faults(reject_when="title == 'POISON'", seed=1))
    estate.send({"sku": "P1", "v": 1, "name": "POISON"})
    sub = next(iter(estate.landscape.subscriptions.values()))
    one = Deliverer(store, sub, estate.connector, clock=utc_now, taking=OutOfOrderBus(store, []))
    two = Deliverer(store, sub, estate.connector, clock=utc_now, taking=OutOfOrderBus(store, []))
    log = OutOfOrderBus(store, []).log
    first, second = one.planner.plan(utc_now(), log), two.planner.plan(utc_now(), log)
    assert first is not None and second is not None

    async def send(d: Deliverer, planned: Any) -> Any:
        return list(zip(planned.items, await d._send_all(planned.items), strict=True))

    assert one.recorder.record(first, asyncio.run(send(one, first))).dead == 1
    two.recorder.record(second, asyncio.run(send(two, second)))
    assert len(_deliveries(store)) == 1
    with store.unit_of_work(write=False) as uow:
        dead = uow.exceptions(ExceptionFilter(kind="dead_letter"))
        receipts = [e for e in uow.lineage(master_id=estate.master("P1")) if e.stage == "deliver"]
    # One delivery row, so one dead letter naming it, and one receipt.
    assert sorted((e.source_key, e.payload["delivery_id"]) for e in dead) == [("shop.items#1", 1)]
    assert len(receipts) == 1


def _execute(store: Store, sql: str) -> None:
    with store.unit_of_work() as uow:
        uow.conn.exec_driver_sql(sql)  # type: ignore[attr-defined]
        uow.commit()


def test_a_new_version_waits_behind_an_open_replay_of_an_earlier_one(
    store: Store, tmp_path: Path
) -> None:
    """A replay of v1..v2 is under way (its v1 failed once and waits for its backoff) when v3
    arrives: a round reading the log queues v3 behind the replay, as ``due`` holds a delivery
    behind any open earlier version, replays included; the consumer is never handed an older
    version after a newer one."""
    estate = Estate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "n1"})
    estate.send({"sku": "A1", "v": 2, "name": "n2"})
    estate.deliver()
    master = estate.master("A1")
    plan = plan_replay(store, ReplaySelection("shop.items", master_id=master), "item", new_id)
    assert queue_replay(store, plan, "item", utc_now) == 2
    # The replay's v1 failed once: retrying, due later.
    _execute(
        store,
        "UPDATE deliveries SET status = 'retrying', attempts = 1, "
        "next_attempt_at = '2999-01-01T00:00:00.000000Z' WHERE replay <> '' AND version = 1",
    )
    estate.send({"sku": "A1", "v": 3, "name": "n3"})
    sent: list[tuple[int, str]] = []
    connector: Any = estate.connector
    original = connector.send_batch

    async def recording(requests: Any) -> Any:
        sent.extend((r.version, r.idempotency_key) for r in requests)
        return await original(requests)

    connector.send_batch = recording
    sub = next(iter(estate.landscape.subscriptions.values()))
    deliverer = Deliverer(store, sub, connector, clock=utc_now, ordered=True, direct=True)
    asyncio.run(deliverer.run_once())
    _execute(store, "UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000Z'")
    for _ in range(5):
        asyncio.run(deliverer.run_once())
    versions = [v for v, _ in sent]
    assert sorted(versions) == [1, 2, 3]
    assert versions == [1, 2, 3], f"sent in this order: {sent}"
