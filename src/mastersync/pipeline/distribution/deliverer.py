"""Delivery rounds: take due deliveries, decide, send concurrently, record the outcomes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mastersync.domain.delivery import Applied, DeliveryStatus, after_failure, held_version
from mastersync.domain.golden import ChangeEvent
from mastersync.domain.subscriptions import Operation, Subscription
from mastersync.pipeline.distribution.deciding import decide
from mastersync.pipeline.distribution.planning import Planner
from mastersync.pipeline.distribution.recording import Recorder
from mastersync.pipeline.distribution.rounds import (
    Item,
    Outcome,
    RoundReport,
    held_digest,
    not_sent,
)
from mastersync.pipeline.distribution.state_cache import StateCache
from mastersync.ports.feed import Taking
from mastersync.ports.outbound import (
    BatchSending,
    DeliveryAck,
    DeliveryFailed,
    OutboundConnector,
    TerminalFailure,
    TransientFailure,
    applies_keys_once,
)
from mastersync.ports.store import Store


class Deliverer:
    """Delivers one subscription to its consumer, a round at a time: what its queue has due,
    and new events taken straight from the log or the bus."""

    def __init__(
        self,
        store: Store,
        subscription: Subscription,
        connector: OutboundConnector,
        *,
        clock: Callable[[], str],
        rng: random.Random | None = None,
        ordered: bool = False,
        direct: bool = False,
        taking: Taking | None = None,
        cache: StateCache | None = None,
        siblings: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.store = store
        self.sub = subscription
        self.connector = connector
        self.clock = clock
        # Whether rounds take new events themselves (see EventFeed.direct): from the bus
        # given, else from the outbox.
        self.direct = direct or taking is not None
        self.taking = taking
        self.planner = Planner(
            store,
            subscription,
            clock=clock,
            # Whether the feed queues each record's versions in order (EventFeed.ordered).
            ordered=ordered,
            direct=self.direct,
            cache=cache if cache is not None else StateCache(),
            # The consumer's subscriptions by domain: where a record this one references
            # gets to it (a delivery waiting for one on its way spends no attempt).
            siblings=siblings or {},
            keyed=applies_keys_once(connector),
        )
        self.recorder = Recorder(store, subscription, clock=clock, rng=rng or random.Random())

    async def run_once(self) -> RoundReport:
        """One round: up to batch_size due deliveries (and, reading the log directly, new
        events after them); a record's versions go one after the other."""
        if self.taking is None:
            return await self._round(None)
        sub = self.sub
        events, settle = await self.taking.take(sub.id, sub.domain, sub.delivery.batch_size)
        try:
            report = await self._round(events)
        except BaseException:
            if events:
                await settle(False)  # redelivered, and taken again
            raise
        if events:
            await settle(True)
        return report

    async def _round(self, events: list[tuple[int, ChangeEvent]] | None) -> RoundReport:
        planned = await asyncio.to_thread(self.planner.plan, self.clock(), events)
        if planned is None:
            return RoundReport()
        sent = list(zip(planned.items, await self._send_all(planned.items), strict=True))
        last = {item.delivery.master_id: (item, outcome) for item, outcome in sent}
        blocked: set[str] = set()
        # Record states by version, for what a later version clears of the one before it.
        states = {(m, held_version(planned.held[m])): s for m, s in planned.previous.items()}
        states.update(_states_of(planned.items))
        for layer in planned.later:
            # Version N + 1 of a record goes only once version N has an outcome that
            # lets it (delivered, skipped or dead; not one to retry).
            items = []
            for d, state, trace in layer:
                before = last[d.master_id]
                if d.master_id in blocked or self._ends(*before) is DeliveryStatus.RETRYING:
                    blocked.add(d.master_id)
                    planned.waiting.append(d)
                    continue
                applied = self._applied_after(*before)
                held = states.get((d.master_id, held_version(applied))) if applied else None
                items.append(decide(self.sub, d, state, trace, applied, planned, held))
            states.update(_states_of(items))
            outcomes = await self._send_all(items)
            for item, outcome in zip(items, outcomes, strict=True):
                last[item.delivery.master_id] = (item, outcome)
                sent.append((item, outcome))
        return await asyncio.to_thread(self.recorder.record, planned, sent)

    async def _send_all(self, items: list[Item]) -> list[Outcome]:
        if not items:
            return []
        if isinstance(self.connector, BatchSending):
            return await self._send_batch(self.connector, items)
        limit = asyncio.Semaphore(self.sub.delivery.concurrency)
        return list(await asyncio.gather(*(self._send(item, limit) for item in items)))

    def _ends(self, item: Item, outcome: Outcome) -> DeliveryStatus:
        """Where a delivery stands after this round's attempt (as ``Recorder.record`` writes it)."""
        if item.settled is not None:
            return item.settled[0]
        if not_sent(item, outcome[0]):
            return DeliveryStatus.RETRYING
        result = item.wait or outcome[0]
        if isinstance(result, DeliveryAck):
            return DeliveryStatus.DELIVERED
        assert isinstance(result, DeliveryFailed)
        terminal = isinstance(result, TerminalFailure) or not result.transient
        return after_failure(item.delivery.attempts + 1, self.sub.delivery, terminal)

    def _applied_after(self, item: Item, outcome: Outcome) -> Applied | None:
        """What the consumer holds of the record once this round's attempt is done."""
        if item.holds is not None:
            return item.holds
        ack = outcome[0]
        if item.settled is not None or item.wait is not None or not isinstance(ack, DeliveryAck):
            return item.applied
        assert item.request is not None
        d = item.delivery
        refs = ack.refs or (item.applied.refs if item.applied else None)
        active = item.request.operation is Operation.UPSERT
        return Applied(
            self.sub.id,
            d.master_id,
            d.version,
            ack.target_key,
            active,
            "",
            refs,
            held_digest(item, ack),
        )

    # --- send: one bulk call, or concurrent calls each with its timeout -------------------
    async def _send_batch(
        self, connector: BatchSending, items: list[Item]
    ) -> list[tuple[DeliveryAck | DeliveryFailed | None, float]]:
        requests = [i.request for i in items if i.request is not None]
        started = time.perf_counter()
        results: list[DeliveryAck | DeliveryFailed]
        try:
            results = (
                await asyncio.wait_for(connector.send_batch(requests), self.sub.delivery.timeout)
                if requests
                else []
            )
        except DeliveryFailed as exc:
            results = [exc] * len(requests)
        except TimeoutError:
            failure = TransientFailure(f"no answer within {self.sub.delivery.timeout:g} s")
            results = [failure] * len(requests)
        except Exception as exc:  # a connector's unexpected error: worth another try
            results = [TransientFailure(f"{type(exc).__name__}: {exc}")] * len(requests)
        seconds = time.perf_counter() - started
        sent = iter(results)
        return [(next(sent), seconds) if i.request is not None else (None, 0.0) for i in items]

    async def _send(
        self, item: Item, limit: asyncio.Semaphore
    ) -> tuple[DeliveryAck | DeliveryFailed | None, float]:
        if item.request is None:
            return None, 0.0
        async with limit:
            started = time.perf_counter()
            try:
                # A timeout scope rather than wait_for, which on Python 3.11 wraps each send
                # in a task of its own.
                async with asyncio.timeout(self.sub.delivery.timeout):
                    ack = await self.connector.send(item.request)
            except DeliveryFailed as exc:
                return exc, time.perf_counter() - started
            except TimeoutError:
                failure = TransientFailure(f"no answer within {self.sub.delivery.timeout:g} s")
                return failure, time.perf_counter() - started
            except Exception as exc:  # a connector's unexpected error: worth another try
                return TransientFailure(f"{type(exc).__name__}: {exc}"), 0.0
            return ack, time.perf_counter() - started


def _states_of(items: list[Item]) -> dict[tuple[str, int], dict[str, Any]]:
    """The record states these items were decided on, by (master id, version)."""
    return {
        (i.delivery.master_id, i.delivery.version): i.state for i in items if i.state is not None
    }
