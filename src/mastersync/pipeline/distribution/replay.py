"""Replay: send past events of a subscription again (consumers apply nothing twice)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mastersync.domain.golden import ChangeEvent
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import ExceptionStatus
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.ports.store import ExceptionFilter, ReplaySelection, Store


@dataclass
class ReplayPlan:
    """What a replay would queue."""

    replay_id: str
    subscription: str
    events: list[tuple[int, ChangeEvent]]


def plan_replay(
    store: Store, selection: ReplaySelection, domain: str, new_id: Callable[[str], str]
) -> ReplayPlan:
    """The events a replay selects, oldest first."""
    with store.unit_of_work(write=False) as uow:
        events = uow.replay_events(selection, domain)
    return ReplayPlan(new_id("rpl"), selection.subscription, events)


def queue_replay(
    store: Store,
    plan: ReplayPlan,
    domain: str,
    clock: Callable[[], str],
    progress: Callable[[int], None] | None = None,
    chunk: int = 1000,
) -> int:
    """Queue the replay's deliveries; the running hub (or `mastersync run`) sends them.

    Each replayed delivery carries the original idempotency key (master id + version), so a
    consumer that already applied the version acknowledges it as a duplicate.
    """
    enqueue = queue_events(plan.subscription, domain, clock, replay=plan.replay_id)
    queued = 0
    for start in range(0, len(plan.events), chunk):
        part = plan.events[start : start + chunk]
        with store.unit_of_work() as uow:
            queued += enqueue(uow, part)
            uow.commit()
        if progress is not None:
            progress(len(part))
    if queued:
        settle_dead_letters(store, plan, domain, clock)
    return queued


def settle_dead_letters(
    store: Store, plan: ReplayPlan, domain: str, clock: Callable[[], str]
) -> int:
    """Close the open dead letters of the versions a replay sends again, as `exceptions
    retry` does when it queues one: their deliveries are settled, their inbox entries
    resolved. A replay failing again is a dead letter of its own. Before, a replay by a
    dead letter's signature delivered the versions and left their entries open and their
    deliveries counted dead."""
    sent = {(e.master_id, e.version) for _, e in plan.events}
    note = f"sent again by replay {plan.replay_id}"
    settled = 0
    with store.unit_of_work() as uow:
        entries = uow.exceptions(
            ExceptionFilter(kind=ProblemKind.DEAD_LETTER.value, domain=domain, limit=100_000)
        )
        for entry in entries:
            payload = entry.payload if isinstance(entry.payload, dict) else {}
            if payload.get("subscription") != plan.subscription:
                continue
            if (payload.get("master_id"), payload.get("version")) not in sent:
                continue
            if payload.get("delivery_id") is not None:
                uow.supersede(int(payload["delivery_id"]), note)
            assert entry.id is not None
            uow.settle_exception(
                entry.id, ExceptionStatus.RESOLVED, {"by": "replay", "at": clock(), "note": note}
            )
            settled += 1
        uow.commit()
    return settled
