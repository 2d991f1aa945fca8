"""Delivery rounds: take due deliveries, decide, send concurrently, record the outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from mastersync.domain.delivery import (
    AWAITING_REFERENCE,
    UNCHANGED,
    Applied,
    Attempt,
    Delivery,
    DeliveryStatus,
    after_failure,
    backoff_delay,
    idempotency_key,
    resent_as,
    state_at,
    unwind,
)
from mastersync.domain.golden import ChangeEvent, Contribution
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.records import ExceptionEntry, LineageEntry
from mastersync.domain.subscriptions import Operation, OutboundMappingFailed, Subscription
from mastersync.domain.validation import digest
from mastersync.ports.feed import Taking
from mastersync.ports.outbound import (
    BatchSending,
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    NotSent,
    OutboundConnector,
    TerminalFailure,
    TransientFailure,
)
from mastersync.ports.store import DeliveryResults, Store, UnitOfWork

log = logging.getLogger("mastersync.hub")

# Seconds past its due time after which an open delivery counts as not being worked on: a
# delivery waiting for its record spends attempts again (see Deliverer._coming).
STALLED_AFTER = 120.0


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Item:
    delivery: Delivery
    trace_id: str | None
    applied: Applied | None
    request: DeliveryRequest | None = None
    # Decided without sending: (status, reason).
    settled: tuple[DeliveryStatus, str] | None = None
    terminal: bool = False
    # The consumer's field that could not be made (an outbound mapping failure).
    field: str | None = None
    # Not sent this round: a retry is due later (a referenced record is not there yet).
    wait: TransientFailure | None = None
    # The records it waits for (domain -> master ids), and whether each of them is on its
    # way to the consumer (a delivery of it open): then the wait spends no attempt.
    awaiting: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    coming: bool = False
    # ``digest`` of the payload sent (an upsert's), which the consumer holds once applied.
    digest: str | None = None
    # Skipped as unchanged: what the consumer holds, now as of this version.
    holds: Applied | None = None


_Planned = tuple[Delivery, dict[str, Any] | None, str | None]
_Outcome = tuple[DeliveryAck | DeliveryFailed | None, float]


@dataclass
class _Round:
    """What one round plans: deliveries to decide on, and (reading the log directly) the
    stretch of the log it took."""

    items: list[_Item]
    # The subscription's cursor before and after the events taken (None: none taken).
    start: int | None = None
    end: int | None = None
    # Events taken that wait in the queue: behind an open delivery of their record, behind a
    # version a bus has not handed over yet, or behind one this round must retry.
    waiting: list[Delivery] = field(default_factory=list)
    # Later versions of records in ``items``, a layer per version: each is decided and
    # sent once the one before it has an outcome.
    later: list[list[_Planned]] = field(default_factory=list)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    # Referenced records the consumer has no key for yet but that one of its subscriptions
    # has an open delivery of (see Deliverer.siblings).
    coming: set[str] = field(default_factory=set)
    # For replays and repairs: what the consumer held when the round began, and how each
    # replayed event was first delivered (event id -> status, operation).
    held: Mapping[str, Applied] = field(default_factory=dict)
    firsts: dict[str, tuple[DeliveryStatus, str | None]] = field(default_factory=dict)
    # ... and the newest version of each replayed record first delivered or skipped.
    decided: dict[str, tuple[int, DeliveryStatus]] = field(default_factory=dict)


def referenced(
    sub: Subscription, states: Iterable[Mapping[str, Any] | None]
) -> dict[str, set[str]]:
    """Domain -> master ids of the records these records reference through the
    subscription's key references."""
    wanted: dict[str, set[str]] = {}
    for state in states:
        for name, domain in sub.key_refs.items():
            value = state.get(name) if state else None
            if isinstance(value, str):
                wanted.setdefault(domain, set()).add(value)
    return wanted


def referenced_keys(
    uow: UnitOfWork,
    sub: Subscription,
    states: Iterable[Mapping[str, Any] | None],
    siblings: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, str]]:
    """The consumer's keys (master id -> its key names) of the records that these records
    reference through the subscription's key references, as deliveries stored them
    (``siblings``: the consumer's subscriptions by domain, if known)."""
    found: dict[str, dict[str, str]] = {}
    for domain, ids in referenced(sub, states).items():
        subs = (siblings or {}).get(domain) or None  # unknown: every one of the system's
        found.update(uow.consumer_keys(sub.system, domain, ids, subs))
    return found


class StateCache:
    """Record states by (master id, version), shared by the deliverers of one hub.

    A version's state never changes, and every subscription of a domain sends the same
    versions: the first deliverer to plan one reads it, the others find it here.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._states: OrderedDict[tuple[str, int], tuple[dict[str, Any], str]] = OrderedDict()
        # Deliverers plan in worker threads at the same time.
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, int]) -> bool:
        with self._lock:
            return key in self._states

    def get(self, key: tuple[str, int]) -> tuple[dict[str, Any], str] | None:
        """A state and its trace id, if held."""
        return self.get_many([key]).get(key)

    def put(self, key: tuple[str, int], value: tuple[dict[str, Any], str]) -> None:
        """Hold a state, dropping the least recently used beyond the size."""
        self.put_many({key: value})

    def get_many(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[dict[str, Any], str]]:
        """The states held among these (one lock for a round's lookups)."""
        found = {}
        with self._lock:
            states = self._states
            for key in keys:
                value = states.get(key)
                if value is not None:
                    states.move_to_end(key)
                    found[key] = value
        return found

    def put_many(self, values: Mapping[tuple[str, int], tuple[dict[str, Any], str]]) -> None:
        """Hold states, dropping the least recently used beyond the size."""
        with self._lock:
            states = self._states
            for key, value in values.items():
                states[key] = value
                states.move_to_end(key)
            while len(states) > self.size:
                states.popitem(last=False)


@dataclass
class RoundReport:
    """What one round did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    skipped: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        """Deliveries this round decided on."""
        return self.delivered + self.retrying + self.dead + self.skipped


def _not_sent(item: _Item, outcome: DeliveryAck | DeliveryFailed | None) -> bool:
    """A delivery held back unsent, which spends no attempt: waiting for referenced
    records on their way to the consumer, or turned away by a paced connector."""
    return (item.wait is not None and item.coming) or isinstance(outcome, NotSent)


def _held(item: _Item, ack: DeliveryAck) -> str | None:
    """The digest of what the consumer holds once it acknowledged ``item``: not known when
    it had the version already (a duplicate, applied before, maybe in another shape)."""
    return None if ack.duplicate else item.digest


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
        # The consumer's subscriptions by domain: where a record this one references gets
        # to it (a delivery waiting for one still on its way spends no attempt).
        self.siblings: Mapping[str, Sequence[str]] = siblings or {}
        # Whether the feed queues each record's versions in order (see EventFeed.ordered).
        self.ordered = ordered
        # Until the queue is first seen empty, it may hold versions a bus queued out of
        # order (the hub ran on a bus before): it is read with the bus's checks till then.
        self._unsure = ordered
        # Whether rounds take new events themselves (see EventFeed.direct): from the bus
        # given, else from the outbox.
        self.direct = direct or taking is not None
        self.taking = taking
        self.cache = cache if cache is not None else StateCache()
        self.sub = subscription
        self.connector = connector
        self.clock = clock
        self.rng = rng or random.Random()
        self._parsed: tuple[str, dt.datetime] | None = None

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
        planned = await asyncio.to_thread(self._plan, self.clock(), events)
        if planned is None:
            return RoundReport()
        sent = list(zip(planned.items, await self._send_all(planned.items), strict=True))
        last = {item.delivery.master_id: (item, outcome) for item, outcome in sent}
        blocked: set[str] = set()
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
                items.append(self._decide(d, state, trace, applied, planned))
            outcomes = await self._send_all(items)
            for item, outcome in zip(items, outcomes, strict=True):
                last[item.delivery.master_id] = (item, outcome)
                sent.append((item, outcome))
        return await asyncio.to_thread(self._record, planned, sent)

    async def _send_all(self, items: list[_Item]) -> list[_Outcome]:
        if not items:
            return []
        if isinstance(self.connector, BatchSending):
            return await self._send_batch(self.connector, items)
        limit = asyncio.Semaphore(self.sub.delivery.concurrency)
        return list(await asyncio.gather(*(self._send(item, limit) for item in items)))

    def _ends(self, item: _Item, outcome: _Outcome) -> DeliveryStatus:
        """Where a delivery stands after this round's attempt (as ``_record`` writes it)."""
        if item.settled is not None:
            return item.settled[0]
        if _not_sent(item, outcome[0]):
            return DeliveryStatus.RETRYING
        result = item.wait or outcome[0]
        if isinstance(result, DeliveryAck):
            return DeliveryStatus.DELIVERED
        assert isinstance(result, DeliveryFailed)
        terminal = isinstance(result, TerminalFailure) or not result.transient
        return after_failure(item.delivery.attempts + 1, self.sub.delivery, terminal)

    def _applied_after(self, item: _Item, outcome: _Outcome) -> Applied | None:
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
            self.sub.id, d.master_id, d.version, ack.target_key, active, "", refs, _held(item, ack)
        )

    # --- plan: what to send (in a worker thread, off the event loop) ---------------------
    def _plan(self, now: str, taken: list[tuple[int, ChangeEvent]] | None) -> _Round | None:
        """Due deliveries from the queue, then new events: ``taken`` from a bus, or (reading
        the outbox directly) the ones after the subscription's cursor."""
        sub = self.sub
        limit = sub.delivery.batch_size
        with self.store.unit_of_work(write=False) as uow:
            due = uow.due(sub.id, now, limit, ordered=self.ordered and not self._unsure)
            if self._unsure and not due and not uow.open_deliveries([sub.id]):
                self._unsure = False
            fresh: list[Delivery] = []
            waiting: list[Delivery] = []
            start = end = None
            events = taken or []
            if self.direct and taken is None and len(due) < limit:
                start = uow.cursor(f"sub:{sub.id}")
                events = uow.outbox_after(start, [sub.domain], limit - len(due), changes=False)
                end = events[-1][0] if events else None
            masters = {d.master_id for d in due} | {e.master_id for _, e in events}
            applied = uow.applied_for(sub.id, masters) if masters else {}
            if events:
                busy = {d.master_id for d in due}
                fresh, waiting = self._take(uow, events, busy, applied, now)
            if not due and not fresh and not waiting and end is None:
                return None
            todo = due + fresh
            states = self._states(uow, todo)
            keys = self._consumer_keys(uow, states)
            coming = self._coming(uow, states, keys)
            replayed = [d.event_id for d in due if d.replay]
            firsts = uow.first_deliveries(sub.id, replayed) if replayed else {}
            decided = (
                uow.newest_decided(sub.id, {d.master_id for d in due if d.replay})
                if replayed
                else {}
            )
        # A record's first version in the round is decided now, each later one after the
        # outcome of the one before it (fresh events come in version order).
        first: list[_Planned] = []
        later: list[list[_Planned]] = []
        seen: dict[str, int] = {}
        for planned in states:
            n = seen.get(planned[0].master_id, 0)
            seen[planned[0].master_id] = n + 1
            if n == 0:
                first.append(planned)
            else:
                while len(later) < n:
                    later.append([])
                later[n - 1].append(planned)
        round_ = _Round([], start, end, waiting, later, keys, coming, applied, firsts, decided)
        round_.items = [
            self._decide(d, state, trace, applied.get(d.master_id), round_)
            for d, state, trace in first
        ]
        return round_

    def _take(
        self,
        uow: UnitOfWork,
        events: list[tuple[int, ChangeEvent]],
        busy: set[str],
        applied: Mapping[str, Applied],
        now: str,
    ) -> tuple[list[Delivery], list[Delivery]]:
        """New events: the ones to send now, and the ones that wait in the queue behind an
        open delivery of their record (or, from a bus, behind an earlier version that has
        not arrived yet).

        Sending straight from the feed spares the happy path a queue row written, read and
        rewritten; only what cannot go at once is queued.
        """
        sub = self.sub
        queued = uow.queued_events(sub.id, [e.event_id for _, e in events])
        held = busy | uow.held_records(sub.id, {e.master_id for _, e in events})
        # Versions of a record above this wait in the queue (a bus left a gap below them).
        after_gap: dict[str, int] = {}
        if not self.ordered:
            # A bus may hand a version over before an earlier one (redelivered after a
            # crash, or nak'd): a record whose first version here is not the next after
            # what the consumer has may have one missing, which the outbox and queue tell;
            # and past a gap between the versions here, the rest waits (the queue holds
            # it until the missing version is queued).
            versions: dict[str, set[int]] = {}
            for _, e in events:
                if e.event_id not in queued:
                    versions.setdefault(e.master_id, set()).add(e.version)
            unsure: dict[str, int] = {}
            for m, found in versions.items():
                if m in held:
                    continue
                ordered = sorted(found)
                if ordered[0] > (applied[m].version if m in applied else 0) + 1:
                    unsure[m] = ordered[0]
                gap = next((a for a, b in pairwise(ordered) if b != a + 1), None)
                if gap is not None:
                    after_gap[m] = gap
            if unsure:
                held |= uow.unqueued_before(sub.id, unsure)
        fresh: list[Delivery] = []
        waiting: list[Delivery] = []
        seen: set[str] = set()
        for position, e in events:
            if e.event_id in queued or e.event_id in seen:  # queued before: it goes from there
                continue
            seen.add(e.event_id)
            d = Delivery.pending(sub.id, position, e, now)
            wait = e.master_id in held or e.version > after_gap.get(e.master_id, e.version)
            (waiting if wait else fresh).append(d)
        return fresh, waiting

    def _states(
        self, uow: UnitOfWork, due: list[Delivery]
    ) -> list[tuple[Delivery, dict[str, Any] | None, str | None]]:
        """Each delivery's record state at its version, and the trace of that version."""
        # What this round found, whatever the cache keeps: other deliverers fill it at the
        # same time, and a deep backlog may overflow it, so a miss there is no answer.
        found = self.cache.get_many((d.master_id, d.version) for d in due)
        wanted = [d for d in due if (d.master_id, d.version) not in found]
        if wanted:
            read = {key: (state, trace) for key, state, trace in self._read_states(uow, wanted)}
            found.update(read)
            self.cache.put_many(read)
        out: list[tuple[Delivery, dict[str, Any] | None, str | None]] = []
        for d in due:
            at = found.get((d.master_id, d.version))
            out.append((d, *at) if at else (d, None, None))
        return out

    def _read_states(
        self, uow: UnitOfWork, due: list[Delivery]
    ) -> Iterator[tuple[tuple[str, int], dict[str, Any], str]]:
        """States read from the store: the golden record, and for an older version (a
        backlog, a replay) the golden record with the events after it undone, which gives
        every version between as well. A version whose event is gone yields nothing."""
        current = uow.golden_states({d.master_id for d in due})
        since: dict[str, int] = {}
        for d in due:
            if d.master_id in current and current[d.master_id][0] == d.version:
                _, state, trace = current[d.master_id]
                if trace is not None:
                    yield (d.master_id, d.version), state, trace
            else:
                since[d.master_id] = min(d.version, since.get(d.master_id, d.version))
        if not since:
            return
        events = uow.events_for(since, since)
        rebuild: set[str] = set()
        for master, version in since.items():
            history = events.get(master, [])
            states = (
                unwind(current[master][1], current[master][0], history, version)
                if master in current
                else {}
            )
            if not states:
                rebuild.add(master)
                continue
            traces = {e.version: e.trace_id for e in history}
            for v, at in states.items():
                if v in traces:
                    yield (master, v), at, traces[v]
        # Where the recent events cannot rebuild a state, the whole history can.
        if rebuild:
            full = uow.events_for(rebuild)
            for d in due:
                history = full.get(d.master_id, [])
                event = next((e for e in history if e.event_id == d.event_id), None)
                folded = state_at(history, d.version) if event is not None else None
                if event is not None and folded is not None:
                    yield (d.master_id, d.version), folded, event.trace_id

    def _consumer_keys(
        self, uow: UnitOfWork, states: list[tuple[Delivery, dict[str, Any] | None, str | None]]
    ) -> dict[str, dict[str, str]]:
        """The consumer's keys for the records these records reference (when mapped)."""
        return referenced_keys(uow, self.sub, (state for _, state, _ in states), self.siblings)

    def _coming(
        self,
        uow: UnitOfWork,
        states: list[tuple[Delivery, dict[str, Any] | None, str | None]],
        keys: Mapping[str, dict[str, str]],
    ) -> set[str]:
        """Referenced records without a key at the consumer that one of its subscriptions
        has an open delivery of: a delivery waiting for them is held, not failed."""
        wanted = referenced(self.sub, (state for _, state, _ in states))
        missing = {d: rest for d, ids in wanted.items() if (rest := ids - keys.keys())}
        coming: set[str] = set()
        if not missing:
            return coming
        # Only a delivery being worked on: one long overdue (no hub runs its subscription)
        # would hold the wait for ever. (Canonical references form no cycle, so two
        # records cannot wait for each other either.)
        since = _stamp(self._now(self.clock()) - dt.timedelta(seconds=STALLED_AFTER))
        for domain, ids in missing.items():
            for sibling in self.siblings.get(domain, ()):
                coming |= uow.held_records(sibling, ids - coming, since)
        return coming

    def _decide(
        self,
        d: Delivery,
        state: dict[str, Any] | None,
        trace_id: str | None,
        applied: Applied | None,
        planned: _Round,
    ) -> _Item:
        item = _Item(d, trace_id, applied)
        if state is None or trace_id is None:
            item.settled, item.terminal = (DeliveryStatus.DEAD, "the event's history is gone"), True
            return item
        if not d.replay and applied is not None and applied.version >= d.version:
            item.settled = (
                DeliveryStatus.SKIPPED,
                f"the consumer already has version {applied.version}",
            )
            return item
        again: str | None = None
        if d.replay:
            # Against what the consumer holds, not this round's earlier replayed versions.
            held = planned.held.get(d.master_id)
            newest = max(v.version for v in (held, applied) if v) if held or applied else None
            why, again = resent_as(
                d.version,
                d.replay,
                newest,
                planned.firsts.get(d.event_id),
                planned.decided.get(d.master_id),
            )
            if why is not None:
                item.settled = (DeliveryStatus.SKIPPED, why)
                return item
        keys = planned.keys
        ref_keys: dict[str, dict[str, str]] | None = None
        missing: list[str] = []
        awaiting: dict[str, list[str]] = {}
        if self.sub.key_refs:
            ref_keys = {}
            for name, domain in self.sub.key_refs.items():
                target = state.get(name)
                if target is None:
                    continue
                if keys and target in keys:
                    ref_keys[name] = keys[target]
                else:
                    missing.append(f"{name} {target}")
                    awaiting.setdefault(domain, []).append(str(target))
                    item.field = item.field or name
        forced = again in (Operation.UPSERT, Operation.DEACTIVATE)
        if missing and self.sub.filter_reads_keys and not forced:
            # The filter asks what the consumer holds: decided on a referenced record not
            # there yet, a record delivered in the same round was filtered out for good.
            item.wait = TransientFailure(
                f"waiting for {', '.join(missing)} to reach {self.sub.system} "
                "(the filter reads the consumer's key for it)"
            )
            return self._awaits(item, awaiting, planned)
        view = self.sub.view(d.master_id, d.version, state, ref_keys)
        try:
            operation = (
                Operation(again)
                if forced and again is not None
                else self.sub.operation(view, applied.active if applied else False)
            )
        except OutboundMappingFailed as exc:  # a filter that cannot be evaluated on it
            return self._unmappable(item, exc)
        if operation is Operation.SKIP:
            item.settled = (DeliveryStatus.SKIPPED, "filtered out by the subscription")
            item.field = None
            return item
        if missing and operation is Operation.UPSERT:
            # Per-entity order across domains: the referenced record must reach the consumer
            # first (its key goes into this payload); try again after a backoff.
            item.wait = TransientFailure(
                f"waiting for {', '.join(missing)} to reach {self.sub.system} "
                "(the consumer has no key for it yet)"
            )
            return self._awaits(item, awaiting, planned)
        item.field = None  # only a wait names the reference
        try:
            payload = self.sub.payload(view)
        except OutboundMappingFailed as exc:
            return self._unmappable(item, exc)
        if operation is Operation.UPSERT:
            item.digest = digest(payload)
            if (
                not d.replay
                and self.sub.skips_unchanged
                and applied is not None
                and applied.active
                and applied.digest == item.digest
            ):
                # A change to fields this consumer does not receive: sent, it would only
                # cost the consumer a write and a duplicate of what it shows.
                item.settled = (
                    DeliveryStatus.SKIPPED,
                    f"{UNCHANGED} {applied.version}",
                )
                item.holds = dataclasses.replace(applied, version=d.version)
                return item
        item.request = DeliveryRequest(
            self.sub.id,
            self.sub.system,
            d.domain,
            d.master_id,
            d.version,
            operation,
            idempotency_key(d.master_id, d.version, d.replay),
            applied.target_key if applied else None,
            payload,
            trace_id,
            # A replay or repair re-asserts the hub's state on purpose, and the consumer's
            # applied row does not follow a replayed deactivation (never moved back).
            reactivate=operation is Operation.UPSERT
            and (bool(d.replay) or (applied is not None and not applied.active)),
        )
        return item

    @staticmethod
    def _awaits(item: _Item, awaiting: dict[str, list[str]], planned: _Round) -> _Item:
        """A delivery that waits for referenced records: held without spending an attempt
        while every one of them is on its way to the consumer."""
        item.awaiting = awaiting
        item.coming = all(t in planned.coming for ids in awaiting.values() for t in ids)
        return item

    @staticmethod
    def _unmappable(item: _Item, exc: OutboundMappingFailed) -> _Item:
        """A delivery the subscription cannot put in the consumer's shape: dead at once."""
        item.settled = (DeliveryStatus.DEAD, f"outbound mapping: {exc.field}: {exc.message}")
        item.terminal, item.field = True, exc.field
        return item

    # --- send: one bulk call, or concurrent calls each with its timeout -------------------
    async def _send_batch(
        self, connector: BatchSending, items: list[_Item]
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
        self, item: _Item, limit: asyncio.Semaphore
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

    # --- record: statuses, applied versions, receipts, dead letters (one transaction) ------
    def _record(self, planned: _Round, sent_items: list[tuple[_Item, _Outcome]]) -> RoundReport:
        now = self.clock()
        waiting = planned.waiting
        if planned.end is None:
            # From a bus: a copy redelivered while this round ran (a slow round) may have
            # been recorded by another round since; that round's outcome stands. (Should one
            # be recorded between this look and the insert below, the insert fails on the
            # queue's event key and the round's messages are redelivered, then found here.)
            taken = [i.delivery.event_id for i, _ in sent_items if i.delivery.id is None]
            taken += [d.event_id for d in waiting]
            done = self._recorded(taken)
            if done:
                sent_items = [
                    (i, o)
                    for i, o in sent_items
                    if i.delivery.id is not None or i.delivery.event_id not in done
                ]
                waiting = [d for d in waiting if d.event_id not in done]
        # Decided before taking the write lock, which other writers wait for.
        results, report, dead = self._outcomes(sent_items, now)
        queued = [i.delivery for i, _ in sent_items if i.delivery.id is not None]
        fresh = [i.delivery for i, _ in sent_items if i.delivery.id is None]
        with self.store.unit_of_work() as uow:
            if planned.end is not None:
                assert planned.start is not None
                if not uow.claim_cursor(f"sub:{self.sub.id}", planned.start, planned.end, now):
                    # Another hub runs this subscription and took these events first; what
                    # this round sent carried the same idempotency keys.
                    log.warning("%s: events taken by another hub; round dropped", self.sub.id)
                    return RoundReport()
            # Written once, as they end (sent, skipped, retrying or dead), and those that
            # wait; the dead need their ids, which their inbox entries name.
            dead_ones = {id(item.delivery) for item, _, _ in dead}
            uow.insert_deliveries([d for d in fresh if id(d) in dead_ones], ids=True)
            uow.insert_deliveries([*(d for d in fresh if id(d) not in dead_ones), *waiting])
            for item, reason, failure in dead:
                self._dead_letter(item, reason, failure, now, results)
            results.deliveries = queued
            uow.record_results(results)
            uow.commit()
        return report

    def _recorded(self, event_ids: list[str]) -> set[str]:
        """The events among these the subscription's queue holds already."""
        if not event_ids:
            return set()
        with self.store.unit_of_work(write=False) as uow:
            return uow.queued_events(self.sub.id, event_ids)

    def _outcomes(
        self, sent_items: list[tuple[_Item, _Outcome]], now: str
    ) -> tuple[DeliveryResults, RoundReport, list[tuple[_Item, str, DeliveryFailed | None]]]:
        """Each delivery's new state, its receipt, and the ones to dead-letter."""
        results = DeliveryResults()
        report = RoundReport()
        dead: list[tuple[_Item, str, DeliveryFailed | None]] = []
        for item, (sent, seconds) in sent_items:
            outcome = item.wait or sent
            d = item.delivery
            d.operation = item.request.operation.value if item.request else d.operation
            if item.settled is not None:
                status, reason = item.settled
                self._settle(item, status, reason, now, results, report, dead)
            elif isinstance(outcome, DeliveryAck):
                self._delivered(item, outcome, seconds, now, results, report)
            else:
                assert isinstance(outcome, DeliveryFailed)
                self._failed(item, outcome, seconds, now, report, dead)
        return results, report, dead

    def _now(self, now: str) -> dt.datetime:
        """``now`` parsed, once per round."""
        parsed = self._parsed
        if parsed is None or parsed[0] != now:
            parsed = self._parsed = (now, _parse(now))
        return parsed[1]

    def _settle(
        self,
        item: _Item,
        status: DeliveryStatus,
        reason: str,
        now: str,
        results: DeliveryResults,
        report: RoundReport,
        dead: list[tuple[_Item, str, DeliveryFailed | None]],
    ) -> None:
        d = item.delivery
        d.status, d.last_error = status, reason
        d.history = [*d.history, Attempt(now, status.value, reason).as_dict()]
        if status is DeliveryStatus.DEAD:
            report.dead += 1
            dead.append((item, reason, None))
        else:
            report.skipped += 1
            if d.replay:
                # Moot now: a dead first delivery of this version settles with the replay
                # (its dead letter was filed after the replay was queued, or it would be
                # closed already).
                note = reason if reason.startswith("superseded") else f"superseded: {reason}"
                results.resent.append((d.subscription, d.event_id, note, now))
            if item.holds is not None:
                # Held within this round, it has no time of its own yet.
                held = item.holds
                results.applied.append(dataclasses.replace(held, applied_at=held.applied_at or now))

    def _delivered(
        self,
        item: _Item,
        ack: DeliveryAck,
        seconds: float,
        now: str,
        results: DeliveryResults,
        report: RoundReport,
    ) -> None:
        d, sub, request = item.delivery, self.sub, item.request
        assert request is not None
        latency = (self._now(now) - _parse(d.occurred_at)).total_seconds() * 1000
        d.attempts += 1
        d.status, d.delivered_at, d.latency_ms = DeliveryStatus.DELIVERED, now, latency
        d.target_key, d.last_error = ack.target_key, None
        note = "duplicate" if ack.duplicate else "applied"
        d.history = [
            *d.history,
            Attempt(now, "delivered", note, round(seconds * 1000, 2)).as_dict(),
        ]
        active = request.operation is Operation.UPSERT
        applied_at = now
        held = item.applied
        if ack.duplicate and held is not None and held.version == d.version and held.applied_at:
            # The consumer had this version already (a replay, a redelivery): it was applied
            # when first acknowledged. Moving the time on would make a value the consumer
            # set since look older than the hub's last delivery (reconciliation's test for a
            # lost delivery).
            applied_at = held.applied_at
        results.applied.append(
            Applied(
                sub.id,
                d.master_id,
                d.version,
                ack.target_key,
                active,
                applied_at,
                ack.refs or None,
                _held(item, ack),
            )
        )
        known = item.applied.target_key if item.applied else None
        if ack.target_key and ack.target_key != known:
            results.target_keys.append(
                Contribution(
                    d.domain, sub.system, ack.target_key, d.master_id, 0, None, {}, "", now
                )
            )
        results.lineage.append(
            LineageEntry(
                request.trace_id,
                "deliver",
                "delivered",
                now,
                d.domain,
                d.master_id,
                d.version,
                sub.system,
                ack.target_key,
                None,
                None,
                {
                    "subscription": sub.id,
                    "attempts": d.attempts,
                    "latency_ms": round(latency, 1),
                    "operation": request.operation.value,
                    "duplicate": ack.duplicate,
                    "replay": d.replay or None,
                },
            )
        )
        if d.replay:
            # The consumer has this version now: a dead first delivery of it (dead after
            # the replay was queued: its dead letter was open then) settles with it.
            results.resent.append(
                (d.subscription, d.event_id, f"sent again by replay {d.replay}", now)
            )
        report.delivered += 1
        report.latencies_ms.append(latency)

    def _failed(
        self,
        item: _Item,
        failure: DeliveryFailed,
        seconds: float,
        now: str,
        report: RoundReport,
        dead: list[tuple[_Item, str, DeliveryFailed | None]],
    ) -> None:
        d, cfg = item.delivery, self.sub.delivery
        if _not_sent(item, failure):
            self._held_back(item, failure, now, report)
            return
        d.attempts += 1
        terminal = isinstance(failure, TerminalFailure) or not failure.transient
        d.status = after_failure(d.attempts, cfg, terminal)
        d.last_error = failure.message
        d.history = [
            *d.history,
            Attempt(
                now,
                "terminal" if terminal else "transient",
                failure.message,
                round(seconds * 1000, 2),
            ).as_dict(),
        ]
        if d.status is DeliveryStatus.RETRYING:
            delay = backoff_delay(d.attempts, cfg, self.rng, failure.retry_after)
            d.next_attempt_at = _stamp(self._now(now) + dt.timedelta(seconds=delay))
            report.retrying += 1
            return
        report.dead += 1
        dead.append((item, failure.message, failure))

    def _held_back(
        self, item: _Item, failure: DeliveryFailed, now: str, report: RoundReport
    ) -> None:
        """A delivery not sent: waiting for records still on their way to the consumer, or
        for its turn at a paced connector. Tried again later, its attempts untouched (they
        count what the consumer answers)."""
        d = item.delivery
        d.status, d.last_error = DeliveryStatus.RETRYING, failure.message
        outcome = "not sent" if isinstance(failure, NotSent) else "waiting"
        entry = Attempt(now, outcome, failure.message).as_dict()
        # One line however long it waits: the history is of attempts, not of rounds.
        last = d.history[-1] if d.history else None
        if last and last.get("outcome") == outcome:
            d.history = [*d.history[:-1], {**entry, "since": last.get("since", last["at"])}]
        else:
            d.history = [*d.history, entry]
        delay = backoff_delay(max(d.attempts, 1), self.sub.delivery, self.rng, failure.retry_after)
        d.next_attempt_at = _stamp(self._now(now) + dt.timedelta(seconds=delay))
        report.retrying += 1

    def _dead_letter(
        self,
        item: _Item,
        reason: str,
        failure: DeliveryFailed | None,
        now: str,
        results: DeliveryResults,
    ) -> None:
        d, sub = item.delivery, self.sub
        rule = (
            "rejected"
            if failure is not None and not failure.transient
            else ("exhausted" if failure is not None else "undeliverable")
        )
        if item.wait is not None and item.awaiting:
            # Never sent: what it references did not reach the consumer. One group per
            # reference, retried by itself once the records are there (retry_parked).
            rule = AWAITING_REFERENCE
        problem = Problem(
            ProblemKind.DEAD_LETTER,
            item.field,
            rule,
            f"{sub.id}: version {d.version} of {d.master_id} not delivered after "
            f"{d.attempts} attempt(s): {reason}",
        )
        payload: dict[str, Any] = {
            "delivery_id": d.id,
            "subscription": sub.id,
            "master_id": d.master_id,
            "version": d.version,
            "request": item.request.payload if item.request else None,
            "response": failure.response if failure else None,
            "status": failure.status if failure else None,
            "attempts": d.history,
        }
        if rule == AWAITING_REFERENCE:
            payload["awaiting"] = {k: sorted(v) for k, v in item.awaiting.items()}
        trace = item.trace_id
        results.exceptions.append(
            ExceptionEntry(
                problem.kind.value,
                sub.system,
                d.domain,
                problem.rule,
                problem.message,
                problem.signature(sub.system, d.domain),
                payload,
                now,
                source_key=f"{sub.id}#{d.id}",
                master_id=d.master_id,
                field=problem.field,
                trace_id=trace,
                # The delivery's tries, as its message and history say (not the inbox's 1).
                attempts=max(d.attempts, 1),
            )
        )
        results.lineage.append(
            LineageEntry(
                trace or "",
                "deliver",
                "dead",
                now,
                d.domain,
                d.master_id,
                d.version,
                sub.system,
                d.target_key,
                None,
                None,
                {"subscription": sub.id, "attempts": d.attempts, "problems": [reason]},
            )
        )
