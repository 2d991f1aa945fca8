"""A replay by error signature closes each dead letter with what it did to that version."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mastersync.backends.sql import rows as sql_rows
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.pipeline.distribution.deliverer import Deliverer
from mastersync.pipeline.distribution.replay import (
    dead_letter_fates,
    plan_replay,
    queue_and_settle,
)
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)
from mastersync.ports.store import ChangeSet, ExceptionFilter, ReplaySelection, Store
from tests.pipeline.test_replay import KeyConsumer, KeyEstate

SUB = "shop.items"


def dead_letters(store: Store, status: ExceptionStatus | None) -> dict[int, ExceptionEntry]:
    """Version -> its dead-letter entry (one per version here)."""
    with store.unit_of_work(write=False) as uow:
        found = uow.exceptions(ExceptionFilter(status=status, kind="dead_letter"))
    return {e.payload["version"]: e for e in found if isinstance(e.payload, dict)}


def signature_of(store: Store) -> str:
    with store.unit_of_work(write=False) as uow:
        (signature,) = {e.signature for e in uow.exceptions(ExceptionFilter())}
    return signature


def note(entry: ExceptionEntry) -> str:
    assert entry.resolution is not None
    return str(entry.resolution["note"])


def test_a_dead_letter_a_newer_version_overtook_is_closed_as_superseded(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.consumer.reject = "BAD"
    estate.send({"sku": "A1", "v": 1, "name": "BAD"})
    estate.deliver()
    estate.send({"sku": "A1", "v": 2, "name": "good"})
    estate.deliver()
    estate.consumer.reject = None
    estate.replay(signature=signature_of(store))
    # Nothing went out: the consumer holds version 2, and version 1 behind it is moot.
    assert estate.consumer.log == []
    [entry] = dead_letters(store, ExceptionStatus.RESOLVED).values()
    # It said "sent again by replay rpl_…" though nothing was sent.
    assert note(entry) == "superseded: the consumer has version 2"


def test_of_two_dead_versions_the_older_is_superseded_by_the_newer_sent_again(
    store: Store, tmp_path: Path
) -> None:
    estate = KeyEstate(store, tmp_path)
    estate.consumer.reject = "BAD1"
    estate.send({"sku": "A1", "v": 1, "name": "BAD1"})
    estate.deliver()
    estate.consumer.reject = "BAD2"
    estate.send({"sku": "A1", "v": 2, "name": "BAD2"})
    estate.deliver()
    assert set(dead_letters(store, ExceptionStatus.OPEN)) == {1, 2}
    estate.consumer.reject = None
    estate.replay(signature=signature_of(store))
    # Version 2 carries the record whole: version 1 is not sent before it.
    assert estate.consumer.log == [(2, "upsert")]
    closed = dead_letters(store, ExceptionStatus.RESOLVED)
    assert note(closed[2]).startswith("sent again by replay rpl_")
    # Version 1's said "sent again" too, though the replay skipped it.
    assert note(closed[1]) == "superseded: version 2, sent again by this replay"


class Refusing(KeyConsumer):
    """The key-trusting consumer, refusing (422) the titles it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: set[str] = set()

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        if request.payload.get("title") in self.refused:
            raise TerminalFailure("422 rejected", status=422, response="title refused")
        return await super().send(request)


def deliver(store: Store, estate: KeyEstate, consumer: Refusing) -> None:
    """Rounds until two in a row find nothing to do (a refusal is dead at once: no waits)."""
    sub = estate.landscape.subscriptions[SUB]
    deliverer = Deliverer(store, sub, consumer, clock=utc_now, ordered=True, direct=True)
    idle = 0
    for _ in range(40):
        idle = idle + 1 if asyncio.run(deliverer.run_once()).attempted == 0 else 0
        if idle == 2:
            return
    raise AssertionError("the deliverer did not settle")


def snapshot(store: Store) -> tuple[list[Any], list[Any]]:
    """Every inbox entry's status and every delivery's status (what a dry run must leave)."""
    with store.unit_of_work(write=False) as uow:
        entries = uow.conn.exec_driver_sql(
            "SELECT id, status, resolution FROM exceptions ORDER BY id"
        ).all()
        sent = uow.conn.exec_driver_sql("SELECT id, status FROM deliveries ORDER BY id").all()
    return [tuple(r) for r in entries], [tuple(r) for r in sent]


# What the consumer does with a version's first delivery: takes it, refuses it (a dead
# letter), or the version is a draft (filtered out, or a deactivation).
Verdict = Literal["take", "refuse", "draft"]
histories = st.lists(st.sampled_from(["take", "refuse", "draft"]), min_size=1, max_size=4)


def test_each_dead_letter_is_closed_with_what_the_replay_did_and_a_dry_run_says_so(
    store: Store, tmp_path: Path
) -> None:
    """For any history of one record's versions taken, refused and filtered, a replay (of
    the record, or of the refusals' signature) closes each open dead letter of its versions
    as sent again exactly when the consumer then receives that version, else as
    superseded; and the dry run, changing nothing, foresees each closure as it happens."""
    estate = KeyEstate(store, tmp_path)
    consumer = Refusing()
    skus = itertools.count(1)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories, by_signature=st.booleans())
    def check(history: list[Verdict], by_signature: bool) -> None:
        sku = f"H{next(skus)}"
        for v, verdict in enumerate(history, start=1):
            row = {"sku": sku, "v": v, "name": f"{sku}-{v}"}
            if verdict == "draft":
                row["st"] = "draft"
            if verdict == "refuse":
                consumer.refused.add(row["name"])
            estate.send(row)
            deliver(store, estate, consumer)
        master = estate.master(sku)
        with store.unit_of_work(write=False) as uow:
            dead = [
                e
                for e in uow.exceptions(ExceptionFilter(kind="dead_letter"))
                if e.master_id == master
            ]
        if by_signature:
            assume(dead)
            selection = ReplaySelection(SUB, signature=dead[0].signature)
        else:
            selection = ReplaySelection(SUB, master_id=master)
        plan = plan_replay(store, selection, "item", new_id)
        before = snapshot(store)
        foreseen = dead_letter_fates(store, plan, "item")
        assert snapshot(store) == before
        done = queue_and_settle(store, plan, "item", utc_now)
        assert done.settled == foreseen
        assert sorted(f.entry_id for f in done.settled) == sorted(e.id for e in dead if e.id)
        consumer.refused.clear()
        consumer.log.clear()
        deliver(store, estate, consumer)
        received = {v for v, _ in consumer.log}
        closed = dead_letters_by_id(store, [f.entry_id for f in done.settled])
        for fate in done.settled:
            assert fate.resent == (fate.version in received), (history, fate)
            entry = closed[fate.entry_id]
            assert entry.status is ExceptionStatus.RESOLVED
            assert note(entry) == fate.note
            if fate.resent:
                assert fate.note == f"sent again by replay {plan.replay_id}"
            else:
                assert fate.note.startswith("superseded: ")

    check()


def dead_letters_by_id(store: Store, ids: list[int]) -> dict[int, ExceptionEntry]:
    with store.unit_of_work(write=False) as uow:
        return uow.exceptions_by_id(ids)


class Scripted(Refusing):
    """Fails the next requests as scripted, then takes them."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list[DeliveryFailed] = []

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        if self.script:
            raise self.script.pop(0)
        return await super().send(request)


def test_a_dead_letter_filed_after_the_replay_was_queued_is_closed_once_it_is_sent(
    store: Store, tmp_path: Path
) -> None:
    """Version 1 is retrying when a replay of the record is queued (it waits behind it);
    its last attempt is refused, and the replay then sends it: its dead letter stays open
    and the delivery counts dead, though the consumer has the version."""
    estate = KeyEstate(store, tmp_path)
    consumer = Scripted()
    consumer.script = [TransientFailure("503 busy", retry_after=3600)]
    estate.send({"sku": "A1", "v": 1, "name": "x"})
    deliver(store, estate, consumer)
    master = estate.master("A1")
    plan = plan_replay(store, ReplaySelection(SUB, master_id=master), "item", new_id)
    assert queue_and_settle(store, plan, "item", utc_now).settled == []
    with store.unit_of_work() as uow:
        # Its hour of backoff is over.
        uow.conn.exec_driver_sql(
            "UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000Z' "
            "WHERE replay = ''"
        )
        uow.commit()
    consumer.script = [TerminalFailure("422 rejected", status=422)]
    deliver(store, estate, consumer)
    assert consumer.state[master][:2] == ("upsert", 1)
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter(kind="dead_letter")) == []


def test_a_replay_reads_only_the_dead_letters_of_its_records_however_many_others_are_open(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: queueing a replay (a reconciliation repair's batch) read every open dead
    letter of the domain, up to 100,000, to settle those of its few records."""
    estate = KeyEstate(store, tmp_path)
    consumer = Refusing()
    consumer.refused = {"A1-1", "B1-1"}
    estate.send({"sku": "A1", "v": 1, "name": "A1-1"}, {"sku": "B1", "v": 1, "name": "B1-1"})
    deliver(store, estate, consumer)
    a1, b1 = estate.master("A1"), estate.master("B1")
    [signature] = {e.signature for e in dead_letters(store, ExceptionStatus.OPEN).values()}
    # Many more open dead letters of other records of the subscription's domain.
    unrelated = [
        ExceptionEntry(
            "dead_letter",
            "shop",
            "item",
            "rejected",
            f"{SUB}: version 1 of itm_other_{i} not delivered",
            signature,
            {"subscription": SUB, "master_id": f"itm_other_{i}", "version": 1},
            utc_now(),
            source_key=f"{SUB}#{900_000 + i}",
            master_id=f"itm_other_{i}",
        )
        for i in range(300)
    ]
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(exceptions=unrelated))
        uow.commit()

    decoded: list[str | None] = []
    exception = sql_rows.exception

    def counting(row: Any) -> ExceptionEntry:
        entry = exception(row)
        decoded.append(entry.master_id)
        return entry

    monkeypatch.setattr(sql_rows, "exception", counting)
    plan = plan_replay(store, ReplaySelection(SUB, master_id=a1), "item", new_id)
    done = queue_and_settle(store, plan, "item", utc_now)
    monkeypatch.undo()

    assert [(f.master_id, f.resent) for f in done.settled] == [(a1, True)]
    assert decoded == [a1]
    with store.unit_of_work(write=False) as uow:
        still = uow.exceptions(ExceptionFilter(kind="dead_letter", limit=1000))
    assert len(still) == 301 and b1 in {e.master_id for e in still}
    consumer.refused.clear()
    consumer.log.clear()
    deliver(store, estate, consumer)
    assert consumer.state[a1][:2] == ("upsert", 1)
