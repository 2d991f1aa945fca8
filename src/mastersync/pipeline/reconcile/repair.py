"""Repair by re-publishing: the current version of records queued again for one consumer."""

from __future__ import annotations

from collections.abc import Callable, Collection

from mastersync.domain.golden import ChangeEvent
from mastersync.domain.subscriptions import Subscription
from mastersync.pipeline.distribution.replay import ReplayPlan, queue_replay
from mastersync.ports.store import ReplaySelection, Store


def queue_repairs(
    store: Store,
    subscription: Subscription,
    master_ids: Collection[str],
    repair_id: str,
    clock: Callable[[], str],
) -> int:
    """Queue each record's newest event again as part of replay ``repair_id``; the number
    queued. The running hub (or `mastersync run`) delivers them.

    It is `mastersync replay --master M` for each record, keeping only the newest event:
    older versions are what the consumer should no longer hold. A repair's deliveries carry
    keys of their own (see ``idempotency_key``), so a consumer that applied the version
    before applies it again.
    """
    if not master_ids:
        return 0
    events: list[tuple[int, ChangeEvent]] = []
    with store.unit_of_work(write=False) as uow:
        for master in sorted(set(master_ids)):
            found = uow.replay_events(
                ReplaySelection(subscription.id, master_id=master), subscription.domain
            )
            if found:
                events.append(found[-1])
    plan = ReplayPlan(repair_id, subscription.id, events)
    return queue_replay(store, plan, subscription.domain, clock)
