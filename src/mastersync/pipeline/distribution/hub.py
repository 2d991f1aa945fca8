"""The running hub: relay, per-subscription dispatchers and deliverers, inbound pollers.

Every loop does one unit of work at a time and checks for the stop signal between units,
so SIGTERM lets in-flight deliveries finish and commit before the process exits. A SIGKILL
at any moment loses nothing: every unit commits atomically, and what was in flight is
attempted again (consumers see the same idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mastersync.domain.subscriptions import Subscription
from mastersync.pipeline.distribution.deliverer import Deliverer
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.pipeline.distribution.rounds import RoundReport
from mastersync.pipeline.distribution.state_cache import StateCache
from mastersync.pipeline.ids import utc_now
from mastersync.ports.feed import EventFeed, GroupDispatch, Interrupted, Relay, Taking
from mastersync.ports.outbound import OutboundConnector
from mastersync.ports.store import Store

log = logging.getLogger("mastersync.hub")

# A poller returns the records it took in, or None when it was not due and did nothing.
Poller = Callable[[], Awaitable[int | None]]

# After this long without work a loop that has a wake-up event of its own (or the watcher)
# polls less often: an idle hub spent a fifth of a core polling, mostly on thread hand-offs.
_QUIET = 1.0
# How much longer the idle polls are than the busy ones.
_IDLE_POLL = 10
_IDLE_WATCH = 5
# A loop that keeps failing (its store or bus down) pauses twice as long after each failure,
# from five polls up to this, and logs its first failure in full, then a line at most this
# often: an outage otherwise wrote a traceback per loop four times a second.
_MAX_PAUSE = 5.0
_REPEAT_LOG = 60.0
# How long a hub that gave up waiting for idle spends finding out what is left.
_LEFT_TIMEOUT = 15.0


class _Trouble:
    """One loop's run of failures: how long to pause before the next try, and what to log."""

    def __init__(self, name: str, pause: float) -> None:
        self.name, self.pause = name, pause
        self.count = 0
        self.since = self.logged_at = 0.0
        self.kind = ""

    def failed(self, exc: BaseException, now: float) -> float:
        """Log this failure (in full when it is the first, or of a new kind) and return the
        pause before the next try."""
        self.count += 1
        kind = type(exc).__name__
        if self.count == 1 or kind != self.kind:
            if self.count == 1:
                self.since = now
            self.kind, self.logged_at = kind, now
            log.error("%s failed; retrying after a pause", self.name, exc_info=exc)
        elif now - self.logged_at >= _REPEAT_LOG:
            self.logged_at = now
            log.error(
                "%s still failing: %d tries in %.0f s, the last: %s: %s",
                self.name,
                self.count,
                now - self.since,
                kind,
                exc,
            )
        return float(min(_MAX_PAUSE, self.pause * 2 ** min(self.count - 1, 16)))

    def recovered(self, now: float) -> None:
        """The loop's work went through: say so once, if it had been failing."""
        if self.count:
            log.warning(
                "%s works again after %d failed tries in %.1f s",
                self.name,
                self.count,
                now - self.since,
            )
            self.count, self.kind = 0, ""


@dataclass
class HubTotals:
    """What the hub has done since it started."""

    relayed: int = 0
    queued: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    ingested: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # After run_until_idle: whether it found nothing left to do (False: it gave up), and
    # when it gave up, what was left.
    idle: bool | None = None
    left: list[str] = field(default_factory=list)
    # ... and whether it was told to stop (a signal) before it was idle.
    told: bool = False

    def add(self, report: RoundReport) -> None:
        """Count a delivery round."""
        self.delivered += report.delivered
        self.retried += report.retrying
        self.dead += report.dead
        self.skipped += report.skipped
        self.latencies_ms.extend(report.latencies_ms[-1000:])
        del self.latencies_ms[:-10_000]


class DistributionHub:
    """Runs distribution (and inbound polling) until told to stop."""

    def __init__(
        self,
        store: Store,
        subscriptions: Sequence[Subscription],
        feed: EventFeed,
        connectors: Mapping[str, OutboundConnector],
        *,
        relay: Relay | None = None,
        pollers: Sequence[Poller] = (),
        clock: Callable[[], str] = utc_now,
        poll_interval: float = 0.05,
        dispatch_batch: int = 1000,
        watch_interval: float = 0.01,
        every_subscription: Sequence[Subscription] | None = None,
    ) -> None:
        self.store = store
        self.subscriptions = list(subscriptions)
        self.feed = feed
        self.relay = relay
        self.pollers = list(pollers)
        self.clock = clock
        self.poll_interval = poll_interval
        self.dispatch_batch = dispatch_batch
        self.watch_interval = watch_interval
        self.totals = HubTotals()
        # Run first in each of the hub's worker threads (the CLI blocks stop signals there,
        # so they reach the main thread).
        self.worker_init: Callable[[], object] | None = None
        cache = StateCache()
        # Each consumer's subscriptions by domain, this hub's or another's (``--hubs``):
        # where a record another one references is on its way to it.
        siblings: dict[tuple[str, str], list[str]] = {}
        for sub in every_subscription or subscriptions:
            siblings.setdefault((sub.system, sub.domain), []).append(sub.id)
        self.deliverers = [
            Deliverer(
                store,
                sub,
                connectors[sub.system],
                clock=clock,
                ordered=feed.ordered,
                direct=feed.direct,
                taking=feed if feed.direct and isinstance(feed, Taking) else None,
                cache=cache,
                siblings={
                    domain: siblings[(sub.system, domain)]
                    for domain in set(sub.key_refs.values())
                    if (sub.system, domain) in siblings
                },
            )
            for sub in subscriptions
        ]
        self.connectors = connectors
        # Set whenever work may be waiting: wakes idle loops early.
        self._nudge = asyncio.Event()
        # One per loop that takes events from the outbox, all set when it grew: a loop
        # clears its own when it wakes, never another's.
        self._arrivals: list[asyncio.Event] = []
        # Set once the hub is told to stop: wakes every sleeping loop.
        self._halt = asyncio.Event()
        # What each poller's last poll took in (None: not polled yet).
        self._polled: dict[int, int | None] = dict.fromkeys(range(len(self.pollers)))

    async def _loop(
        self,
        name: str,
        work: Callable[[], Awaitable[int | None]],
        stop: asyncio.Event,
        wake: asyncio.Event | None = None,
    ) -> None:
        busy_at = loop_time()
        trouble = _Trouble(name, 5 * self.poll_interval)
        while not stop.is_set():
            try:
                done = await work()
            except Interrupted:
                break  # stopping, with no bus connection to finish on: nothing in flight
            except Exception as exc:
                done = 0
                await _wait(trouble.failed(exc, loop_time()), self._halt, clear=False)
            else:
                # None: the work was not due and did nothing (a poller between its polls).
                # That says nothing of the store: taken for success, it reset the failure
                # count, and an outage logged a full traceback and a false "works again"
                # at every poll.
                if done is not None:
                    trouble.recovered(loop_time())
            if done:
                busy_at = loop_time()
                self._nudge.set()
            elif not stop.is_set():
                # A loop with its own wake-up hears of new work at once; its polls only
                # catch retries coming due, which may wait a little longer when all is quiet.
                quiet = wake is not None and loop_time() - busy_at > _QUIET
                pause = self.poll_interval * (_IDLE_POLL if quiet else 1)
                await _wait(pause, wake or self._nudge)

    def _arrival(self) -> asyncio.Event:
        """A new loop's own wake-up for outbox growth."""
        event = asyncio.Event()
        self._arrivals.append(event)
        return event

    def _announce(self) -> None:
        """The outbox grew (or the bus has new messages): wake every loop that takes them."""
        for event in self._arrivals:
            event.set()

    async def _watch(self, stop: asyncio.Event) -> None:
        """Wake the loops as soon as the outbox grows, whoever wrote to it.

        Changes ingested by another process (the CLI, the API) would otherwise wait for the
        next poll of each loop; reading the outbox's head is much cheaper than a poll.
        """

        def head() -> int:
            with self.store.unit_of_work(write=False) as uow:
                return uow.outbox_head()

        seen: int | None = None
        changed_at = loop_time()
        trouble = _Trouble("watching the outbox", 5 * self.poll_interval)
        while not stop.is_set():
            try:
                now = await asyncio.to_thread(head)
            except Exception as exc:
                await _wait(trouble.failed(exc, loop_time()), self._halt, clear=False)
                continue
            trouble.recovered(loop_time())
            if seen is not None and now != seen:
                changed_at = loop_time()
                self._announce()
            seen = now
            quiet = loop_time() - changed_at > _QUIET
            pause = self.watch_interval * (_IDLE_WATCH if quiet else 1)
            await _wait(pause, self._halt, clear=False)

    async def _relay(self) -> int:
        assert self.relay is not None
        n = await self.relay.relay(self.dispatch_batch)
        self.totals.relayed += n
        if n:
            # Published: the feed's dispatchers have messages to take.
            self._announce()
        return n

    def _dispatch_group(
        self, feed: GroupDispatch, domain: str, subs: list[Subscription]
    ) -> Callable[[], Awaitable[int]]:
        enqueues = {s.id: queue_events(s.id, s.domain, self.clock) for s in subs}

        async def work() -> int:
            taken = await feed.dispatch_group(enqueues, domain, self.dispatch_batch)
            n = sum(taken.values())
            self.totals.queued += n
            return n

        return work

    def _dispatch(self, sub: Subscription) -> Callable[[], Awaitable[int]]:
        enqueue = queue_events(sub.id, sub.domain, self.clock)

        async def work() -> int:
            n = await self.feed.dispatch(sub.id, sub.domain, self.dispatch_batch, enqueue)
            self.totals.queued += n
            return n

        return work

    def _deliver(self, deliverer: Deliverer) -> Callable[[], Awaitable[int]]:
        async def work() -> int:
            report = await deliverer.run_once()
            self.totals.add(report)
            return report.attempted

        return work

    def _poll(self, index: int, poller: Poller) -> Callable[[], Awaitable[int | None]]:
        async def work() -> int | None:
            n = await poller()
            if n is None:
                # Not due: nothing taken in since its last poll (as busy() sees it), unless
                # it has not polled at all yet.
                if self._polled[index] is not None:
                    self._polled[index] = 0
                return None
            self.totals.ingested += n
            self._polled[index] = n
            return n

        return work

    def executor(self) -> ThreadPoolExecutor:
        """The worker threads store calls run in: the default pool (cores + 4) is too small
        for a dispatcher and a deliverer per subscription."""
        return ThreadPoolExecutor(
            max_workers=8 + 3 * len(self.deliverers),
            thread_name_prefix="hub",
            initializer=self.worker_init,
        )

    async def run(self, stop: asyncio.Event) -> HubTotals:
        """Run every loop until ``stop`` is set; in-flight work finishes first."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor())
        tasks = [
            asyncio.create_task(self._loop(f"poll {i}", self._poll(i, p), stop))
            for i, p in enumerate(self.pollers)
        ]
        self._halt = asyncio.Event()
        halting = asyncio.create_task(self._halt_on(stop))
        tasks.append(asyncio.create_task(self._watch(stop)))
        if self.relay is not None:
            tasks.append(
                asyncio.create_task(self._loop("relay", self._relay, stop, self._arrival()))
            )
        # A direct feed has no dispatch loops: each deliverer takes new events itself (below).
        if not self.feed.direct and isinstance(self.feed, GroupDispatch):
            # One loop and one transaction per domain queue for all its subscriptions.
            domains: dict[str, list[Subscription]] = {}
            for sub in self.subscriptions:
                domains.setdefault(sub.domain, []).append(sub)
            for domain, subs in domains.items():
                work = self._dispatch_group(self.feed, domain, subs)
                tasks.append(
                    asyncio.create_task(
                        self._loop(f"dispatch {domain}", work, stop, self._arrival())
                    )
                )
        elif not self.feed.direct:
            for sub in self.subscriptions:
                tasks.append(
                    asyncio.create_task(
                        self._loop(f"dispatch {sub.id}", self._dispatch(sub), stop, self._arrival())
                    )
                )
        for sub, deliverer in zip(self.subscriptions, self.deliverers, strict=True):
            # A deliverer that reads the log wakes when it grows.
            wake = self._arrival() if deliverer.direct else None
            tasks.append(
                asyncio.create_task(
                    self._loop(f"deliver {sub.id}", self._deliver(deliverer), stop, wake)
                )
            )
        try:
            await asyncio.gather(*tasks)
        finally:
            halting.cancel()
            await self.close()
        return self.totals

    async def _halt_on(self, stop: asyncio.Event) -> None:
        """Once told to stop, wake every loop that sleeps, and let none wait on a bus
        connection that is not there (loops took turns, 8 s each, before they saw it)."""
        await stop.wait()
        self.feed.interrupt()
        if self.relay is not None:
            self.relay.interrupt()
        self._halt.set()
        self._nudge.set()
        self._announce()

    async def run_until_idle(
        self, timeout: float = 60.0, settle: float = 0.5, told: asyncio.Event | None = None
    ) -> HubTotals:
        """Run until nothing is left to relay, queue or deliver (or ``timeout``, or until
        ``told`` to stop: a signal drains in-flight work here too)."""
        stop = asyncio.Event()
        runner = asyncio.create_task(self.run(stop))
        # A signal stops the loops at once (interrupting connects), not after the busy
        # check under way: one waiting on a bus that does not answer took 30 s to see it.
        relay_told = asyncio.create_task(_pass_on(told, stop)) if told is not None else None
        deadline = loop_time() + timeout
        quiet_since: float | None = None
        idle = False
        left: list[str] = []
        try:
            while loop_time() < deadline and not runner.done():
                if told is not None and told.is_set():
                    break
                await asyncio.sleep(settle / 2)
                try:
                    busy = await asyncio.wait_for(self.busy(), max(deadline - loop_time(), 0.01))
                except Exception:  # the loops log why (a bus or store down): not idle, go on
                    busy = True
                if busy:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = loop_time()
                elif loop_time() - quiet_since >= settle:
                    idle = True
                    break
            if not idle and not runner.done() and not (told is not None and told.is_set()):
                # Bounded: the store or bus that held the hub up may hang these reads too.
                left = await self._left_bounded()
        finally:
            stop.set()
            if relay_told is not None:
                relay_told.cancel()
        totals = await runner
        totals.told = told is not None and told.is_set() and not idle
        if totals.told:
            # After the drain: what the stop left undone, not what was in flight. A bus
            # feed is closed by then (and the bus may be what held the hub up): the
            # store's part; the outbox feed is the store.
            left = await self._left_bounded(ask_feed=self.relay is None)
        totals.idle, totals.left = idle, left
        return totals

    async def _left_bounded(self, *, ask_feed: bool = True) -> list[str]:
        """``left``, bounded: the store or bus that held the hub up may hang it too."""
        try:
            return await asyncio.wait_for(self.left(ask_feed=ask_feed), _LEFT_TIMEOUT)
        except TimeoutError:
            return [f"what is left could not be read within {_LEFT_TIMEOUT:g} s"]
        except Exception as exc:
            return [f"what is left could not be read ({type(exc).__name__}: {exc})"]

    async def left(self, *, ask_feed: bool = True) -> list[str]:
        """What is left to do, a line per part (for a hub that gave up waiting for idle;
        without ``ask_feed``, what the store says: a stopped hub's feed is closed)."""
        out: list[str] = []
        polling = sum(1 for n in self._polled.values() if n is None or n > 0)
        if polling:
            out.append(f"{polling} inbound poller(s) still taking records in")
        if self.relay is not None:
            try:
                backlog = await self.relay.backlog()
            except Exception as exc:
                out.append(f"the relay's backlog could not be read ({type(exc).__name__}: {exc})")
            else:
                if backlog > 0:
                    out.append(
                        f"up to {backlog} event(s) not published to the bus yet (the bus is "
                        "down, or another hub's relay holds the lease)"
                    )
        ids = [s.id for s in self.subscriptions]
        for sub in self.subscriptions if ask_feed else []:
            try:
                lag = await asyncio.wait_for(self.feed.lag(sub.id, sub.domain), 10)
            except Exception as exc:  # the bus down: asking for each subscription waits each
                out.append(f"the feed did not say what it holds ({type(exc).__name__}: {exc})")
                break
            if lag > 0:
                out.append(f"{sub.id}: {lag} event(s) not taken from the feed yet")

        def open_deliveries() -> dict[str, int]:
            with self.store.unit_of_work(write=False) as uow:
                return {i: uow.open_deliveries([i]) for i in ids}

        for sub_id, n in (await asyncio.to_thread(open_deliveries)).items():
            if n:
                out.append(
                    f"{sub_id}: {n} deliveries open in the queue (retrying, or behind one "
                    "that is; `mastersync deliveries` has more)"
                )
        return out

    async def busy(self) -> bool:
        """Anything left to poll, relay, take from the log, or deliver?"""
        if any(n is None or n > 0 for n in self._polled.values()):
            return True
        if self.relay is not None and await self.relay.backlog() > 0:
            return True
        for sub in self.subscriptions:
            if await self.feed.lag(sub.id, sub.domain) > 0:
                return True
        ids = [s.id for s in self.subscriptions]

        def open_deliveries() -> bool:
            with self.store.unit_of_work(write=False) as uow:
                return uow.open_deliveries(ids) > 0

        return await asyncio.to_thread(open_deliveries)

    async def close(self) -> None:
        """Release connectors, feed and relay."""
        for connector in self.connectors.values():
            await connector.close()
        await self.feed.close()
        if self.relay is not None:
            await self.relay.close()


async def _pass_on(told: asyncio.Event, stop: asyncio.Event) -> None:
    await told.wait()
    stop.set()


def loop_time() -> float:
    """The event loop's clock."""
    return asyncio.get_running_loop().time()


async def _wait(seconds: float, wake: asyncio.Event, *, clear: bool = True) -> None:
    """Sleep up to ``seconds``, or until ``wake`` is set (then clear it, if asked).

    One event and a timeout, no helper tasks: the hub's loops sleep hundreds of times a
    second, and creating, waiting for and cancelling two tasks each time cost an idle hub
    a tenth of a core. Stopping sets every event a loop sleeps on.
    """
    if not wake.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()
    if clear:
        wake.clear()
