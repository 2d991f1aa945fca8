"""Replay: send past events of a subscription again (consumers apply nothing twice)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mastersync.domain.golden import ChangeEvent
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.ports.store import ReplaySelection, Store


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
    return queued
