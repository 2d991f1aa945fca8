"""Replays and repairs against a consumer that trusts idempotency keys and nothing else.

The sandbox target also refuses versions older than the one it holds, which would hide a
replay that sends a version the consumer never had: the consumer here applies every key it
has not seen, as the contract asks of consumers and no more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mastersync.domain.records import ExceptionStatus
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.pipeline.distribution.replay import plan_replay, queue_replay
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, TerminalFailure
from mastersync.ports.store import ExceptionFilter, ReplaySelection, Store
from tests.pipeline.test_distribution import Estate


class KeyConsumer:
    """Applies each idempotency key once; a rejected name is a 422."""

    applies_keys_once = True

    def __init__(self) -> None:
        self.keys: set[str] = set()
        # master id -> (operation, version, payload)
        self.state: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.log: list[tuple[int, str]] = []
        self.reject: str | None = None

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        self.log.append((request.version, request.operation.value))
        if request.payload.get("title") == self.reject:
            raise TerminalFailure("422 rejected", status=422, response="title refused")
        if request.idempotency_key in self.keys:
            return DeliveryAck(target_key=request.master_id, duplicate=True)
        self.keys.add(request.idempotency_key)
        self.state[request.master_id] = (
            request.operation.value,
            request.version,
            dict(request.payload),
        )
        return DeliveryAck(target_key=request.master_id)

    async def close(self) -> None:
        pass

    def forget(self) -> None:
        """The consumer lost its data (restored from an empty backup)."""
        self.keys.clear()
        self.state.clear()


class KeyEstate(Estate):
    """The test estate, with the key-trusting consumer as the shop."""

    def __init__(self, store: Store, folder: Path) -> None:
        super().__init__(store, folder)
        self.consumer = self.shop = KeyConsumer()

    def replay(self, **selection: Any) -> None:
        plan = plan_replay(self.store, ReplaySelection("shop.items", **selection), "item", new_id)
        queue_replay(self.store, plan, "item", utc_now)
        self.consumer.log.clear()
        self.deliver()


def test_a_replay_never_sends_a_version_the_consumer_skipped_before_a_newer_one(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    # Version 1 is a draft (filtered out: never sent), version 2 is active (sent).
    estate.send({"sku": "A1", "v": 1, "name": "x", "st": "draft"})
    estate.send({"sku": "A1", "v": 2, "name": "x2"})
    estate.deliver()
    master = estate.master("A1")
    assert estate.consumer.state[master][:2] == ("upsert", 2)
    estate.replay(since="2000-01-01")
    # Version 1 as a deactivation (the consumer holds the record now) would have switched
    # the record off at the consumer, and version 2 again would then be a duplicate.
    assert estate.consumer.log == [(2, "upsert")]
    assert estate.consumer.state[master][:2] == ("upsert", 2)


def test_a_replay_of_a_dead_letter_a_newer_version_overtook_sends_nothing(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.consumer.reject = "BAD"
    estate.send({"sku": "A1", "v": 1, "name": "BAD"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "good"})
    estate.deliver()
    master = estate.master("A1")
    assert estate.consumer.state[master][1:] == (2, {"handle": "A1", "title": "good"})
    with store.unit_of_work(write=False) as uow:
        (signature,) = {e.signature for e in uow.exceptions(ExceptionFilter())}
    estate.consumer.reject = None
    estate.replay(signature=signature)
    assert estate.consumer.log == []
    assert estate.consumer.state[master][1:] == (2, {"handle": "A1", "title": "good"})
    # Settled by the replay (its version sent again, here found overtaken), it is no dead
    # letter to select any more.
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter()) == []
    plan = plan_replay(store, ReplaySelection("shop.items", signature=signature), "item", new_id)
    assert plan.events == []
    with store.unit_of_work(write=False) as uow:
        rows = uow.conn.exec_driver_sql(
            "SELECT version, status, last_error FROM deliveries WHERE replay != ''"
        ).all()
    assert [(v, s) for v, s, _ in rows] == [(1, "skipped")]
    assert "the consumer has version 2" in rows[0][2]


def test_a_replay_to_a_consumer_that_lost_its_data_rebuilds_it_as_delivered(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "x", "st": "discontinued"})
    estate.deliver()
    master = estate.master("A1")
    assert estate.consumer.state[master][:2] == ("deactivate", 2)
    estate.consumer.forget()
    estate.replay(since="2000-01-01")
    # The deactivation is sent again as it was first sent: deciding it from what the hub
    # knows the consumer holds now (inactive) would have skipped it.
    assert estate.consumer.log == [(1, "upsert"), (2, "deactivate")]
    assert estate.consumer.state[master][:2] == ("deactivate", 2)


def test_a_replay_sends_a_never_delivered_version_the_consumer_needs(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    estate.consumer.reject = "BAD"
    estate.send({"sku": "A1", "v": 2, "name": "BAD"})
    estate.deliver()
    master = estate.master("A1")
    with store.unit_of_work(write=False) as uow:
        (signature,) = {e.signature for e in uow.exceptions(ExceptionFilter())}
    estate.consumer.reject = None
    estate.replay(signature=signature)
    # The newest version died and nothing overtook it: the replay is how it gets there.
    assert estate.consumer.log == [(2, "upsert")]
    assert estate.consumer.state[master][1:] == (2, {"handle": "A1", "title": "BAD"})
    # Its dead letter is closed, as a retry from the inbox closes it (it stayed open, and
    # the delivery counted dead, though the version had arrived).
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter()) == []
        [entry] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
        dead = uow.conn.exec_driver_sql(
            "SELECT count(*) FROM deliveries WHERE status = 'dead'"
        ).scalar()
    assert entry.resolution is not None and entry.resolution["by"] == "replay"
    assert entry.resolution["note"].startswith("sent again by replay rpl_")
    assert dead == 0


def test_a_repair_overtaken_by_a_newer_version_sends_nothing(store: Store, tmp_path: Path) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    with store.unit_of_work(write=False) as uow:
        ((position, v1),) = uow.outbox_after(0, ["item"], 10)
    # Version 2 goes out between the repair reading version 1 and its delivery.
    estate.send({"sku": "A1", "v": 2, "name": "x2"})
    estate.deliver()
    enqueue = queue_events("shop.items", "item", utc_now, replay=new_id("rpr"))
    with store.unit_of_work() as uow:
        assert enqueue(uow, [(position, v1)]) == 1
        uow.commit()
    estate.consumer.log.clear()
    estate.deliver()
    assert estate.consumer.log == []
    assert estate.consumer.state[estate.master("A1")][1:] == (2, {"handle": "A1", "title": "x2"})


def test_a_version_the_consumer_acknowledges_as_a_duplicate_keeps_the_time_it_was_applied(
    store: Store, tmp_path: Path
) -> None:
    """Review: a replay the consumer answered "applied before" moved the version's
    ``applied_at`` to the replay's time, so a value the consumer set between the two looked
    older than the hub's last delivery: reconciliation took it for a lost delivery."""
    estate = KeyEstate(store, tmp_path)
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    estate.deliver()
    master = estate.master("A1")
    with store.unit_of_work(write=False) as uow:
        first = uow.applied_for("shop.items", [master])[master]

    estate.replay(master_id=master)

    assert estate.consumer.log == [(1, "upsert")]  # sent again, answered as a duplicate
    with store.unit_of_work(write=False) as uow:
        after = uow.applied_for("shop.items", [master])[master]
    assert (after.version, after.applied_at) == (1, first.applied_at)


class PlainConsumer(KeyConsumer):
    """Applies whatever comes, as most systems (and file partners) do: no key is known."""

    applies_keys_once = False

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        self.log.append((request.version, request.operation.value))
        self.state[request.master_id] = (
            request.operation.value,
            request.version,
            dict(request.payload),
        )
        return DeliveryAck(target_key=request.master_id)


def test_a_replay_behind_a_newer_version_sends_nothing_to_a_consumer_that_applies_every_send(
    store: Store, tmp_path: Path
) -> None:
    """Review: a replay of a time window to a file partner wrote version 2 of records the
    partner held version 8 of, and ended there: the partner went back to version 2 while the
    hub believed it held 8. A consumer that does not apply each key once gets nothing behind
    the version it holds; the version it holds is sent again (the same values)."""
    estate = KeyEstate(store, tmp_path)
    estate.consumer = estate.shop = PlainConsumer()
    estate.send({"sku": "A1", "v": 1, "name": "x1"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "x2"})
    estate.deliver()
    master = estate.master("A1")
    with store.unit_of_work(write=False) as uow:
        [(_, first)] = [(p, e) for p, e in uow.outbox_after(0, ["item"], 10) if e.version == 1]

    estate.replay(event_id=first.event_id)

    assert estate.consumer.log == []
    assert estate.consumer.state[master][1] == 2
    estate.replay(master_id=master)
    assert estate.consumer.log == [(2, "upsert")]
    assert estate.consumer.state[master][1:] == (2, {"handle": "A1", "title": "x2"})
