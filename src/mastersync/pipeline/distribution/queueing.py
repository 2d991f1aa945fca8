"""From the event log into a subscription's queue, and the outbox read as a feed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mastersync.domain.delivery import Delivery
from mastersync.domain.golden import ChangeEvent
from mastersync.ports.feed import Enqueue
from mastersync.ports.store import Store, UnitOfWork


def queue_events(
    subscription: str, domain: str, clock: Callable[[], str], replay: str = ""
) -> Enqueue:
    """An enqueue function: each event of the domain becomes a pending delivery."""

    def enqueue(uow: UnitOfWork, events: list[tuple[int, ChangeEvent]]) -> int:
        now = clock()
        return uow.enqueue(
            [
                Delivery.pending(subscription, position, e, now, replay)
                for position, e in events
                if e.domain == domain
            ]
        )

    return enqueue


class OutboxFeed:
    """The embedded feed: the outbox table read with one cursor per subscription.

    The cursor moves in the transaction that queues the events (or, read by a deliverer
    directly, records their outcome), so an event is taken exactly once. Readers never pass
    over a gap a later commit could fill: SQLite has one writer at a time, and the
    PostgreSQL store makes commit order the position order.
    """

    ordered = True
    # Deliverers take new events from the outbox themselves (dispatch stays for callers
    # that only queue).
    direct = True

    def __init__(self, store: Store, clock: Callable[[], str]) -> None:
        self.store = store
        self.clock = clock

    def _dispatch_group(
        self, subscriptions: dict[str, Enqueue], domain: str, limit: int
    ) -> dict[str, int]:
        taken = dict.fromkeys(subscriptions, 0)
        with self.store.unit_of_work(write=False) as uow:
            # Most polls find nothing: look before taking the write lock.
            starts = {s: uow.cursor(f"sub:{s}") for s in subscriptions}
            if not uow.outbox_after(min(starts.values()), [domain], 1, changes=False):
                return taken
        with self.store.unit_of_work() as uow:
            read: dict[int, list[tuple[int, ChangeEvent]]] = {}
            for sub, enqueue in subscriptions.items():
                name = f"sub:{sub}"
                start = uow.cursor(name)
                # Subscriptions that have kept up together share one read of the log.
                if start not in read:
                    read[start] = uow.outbox_after(start, [domain], limit, changes=False)
                events = read[start]
                if events:
                    enqueue(uow, events)
                    uow.set_cursor(name, events[-1][0], self.clock())
                    taken[sub] = len(events)
            uow.commit()
        return taken

    async def dispatch_group(
        self, subscriptions: dict[str, Enqueue], domain: str, limit: int
    ) -> dict[str, int]:
        """Queue new events of the domain for several subscriptions in one transaction."""
        return await asyncio.to_thread(self._dispatch_group, subscriptions, domain, limit)

    async def dispatch(self, subscription: str, domain: str, limit: int, enqueue: Enqueue) -> int:
        """Queue up to ``limit`` new events of the domain for the subscription."""
        taken = await self.dispatch_group({subscription: enqueue}, domain, limit)
        return taken[subscription]

    def _lag(self, subscription: str, domain: str) -> int:
        with self.store.unit_of_work(write=False) as uow:
            cursor = uow.cursor(f"sub:{subscription}")
            return len(uow.outbox_after(cursor, [domain], 1, changes=False))

    def interrupt(self) -> None:
        """Nothing to interrupt: the outbox is in the store."""

    async def lag(self, subscription: str, domain: str) -> int:
        """Whether events of the domain wait after the subscription's cursor (0 or 1: the
        cheap check the idle test needs; `delivery_stats` counts them)."""
        return await asyncio.to_thread(self._lag, subscription, domain)

    async def close(self) -> None:
        """Nothing to release."""
