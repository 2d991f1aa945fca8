"""Repair by re-publishing: the current version of records queued again for one consumer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping

from mastersync.domain.delivery import Applied
from mastersync.domain.subscriptions import Subscription
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.pipeline.distribution.replay import ReplayPlan, queue_replay
from mastersync.ports.store import DeliveryResults, Store


def queue_repairs(
    store: Store,
    subscription: Subscription,
    master_ids: Collection[str],
    repair_id: str,
    clock: Callable[[], str],
    reactivated: Mapping[str, Applied] | None = None,
) -> int:
    """Queue each record's newest event again as part of replay ``repair_id``; the number
    queued. The running hub (or `mastersync run`) delivers them.

    It is `mastersync replay --master M` for each record, keeping only the newest event:
    older versions are what the consumer should no longer hold. A repair's deliveries carry
    keys of their own (see ``idempotency_key``), so a consumer that applied the version
    before applies it again. The newest events of all the records are read in one query
    (one per record made a repair of 50,000 records 50,000 round trips).

    ``reactivated``: records the hub deactivated at the consumer that it lists as active
    again (master id -> what the hub holds it applied). The deliverer decides a repair on
    what the consumer holds, and would skip a deactivation of a record it holds inactive;
    so the hub's record of it is set to active (what the listing showed), in the
    transaction that queues the deactivation again.
    """
    reactivated = reactivated or {}
    ids = set(master_ids) | set(reactivated)
    if not ids:
        return 0
    with store.unit_of_work(write=False) as uow:
        newest = uow.newest_events(subscription.domain, ids)
    # In log order, as a replay queues them.
    events = sorted(
        (newest[m] for m in ids - set(reactivated) if m in newest), key=lambda found: found[0]
    )
    queued = 0
    if events:
        plan = ReplayPlan(repair_id, subscription.id, events)
        queued += queue_replay(store, plan, subscription.domain, clock)
    again = sorted((newest[m] for m in reactivated if m in newest), key=lambda found: found[0])
    if again:
        enqueue = queue_events(subscription.id, subscription.domain, clock, replay=repair_id)
        active = [
            dataclasses.replace(reactivated[e.master_id], active=True, digest=None)
            for _, e in again
        ]
        with store.unit_of_work() as uow:
            # A deactivation of what the hub holds inactive has no dead letter to settle
            # (it is skipped, not failed): queued here without `queue_replay`'s settling.
            uow.record_results(DeliveryResults(applied=active))
            queued += enqueue(uow, again)
            uow.commit()
    return queued
