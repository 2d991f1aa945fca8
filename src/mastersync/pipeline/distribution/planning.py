"""Planning a delivery round: due deliveries and new events, the record states they send,
and the consumer keys of the records they reference (in a worker thread, one read-only
transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

from mastersync.domain.delivery import Applied, Delivery, held_version, state_at, unwind
from mastersync.domain.golden import ChangeEvent
from mastersync.domain.subscriptions import Subscription
from mastersync.pipeline.distribution.deciding import decide
from mastersync.pipeline.distribution.rounds import STALLED_AFTER, Moment, Planned, Round, stamp
from mastersync.pipeline.distribution.state_cache import StateCache
from mastersync.ports.store import Store, UnitOfWork


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


class Planner:
    """Plans one subscription's rounds."""

    def __init__(
        self,
        store: Store,
        subscription: Subscription,
        *,
        clock: Callable[[], str],
        ordered: bool,
        direct: bool,
        cache: StateCache,
        siblings: Mapping[str, Sequence[str]],
        keyed: bool = False,
    ) -> None:
        self.store, self.sub, self.clock = store, subscription, clock
        # Whether the consumer applies each idempotency key once (what a replay may send).
        self.keyed = keyed
        self.ordered, self.direct, self.cache, self.siblings = ordered, direct, cache, siblings
        # Until the queue is first seen empty, it may hold versions a bus queued out of
        # order (the hub ran on a bus before): it is read with the bus's checks till then.
        self._unsure = ordered
        self.moment = Moment()

    # --- plan: what to send (in a worker thread, off the event loop) ---------------------
    def plan(self, now: str, taken: list[tuple[int, ChangeEvent]] | None) -> Round | None:
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
            states, previous = self._states(uow, todo, applied)
            keys = self._consumer_keys(uow, states, previous.values())
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
        first: list[Planned] = []
        later: list[list[Planned]] = []
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
        round_ = Round([], start, end, waiting, later, keys, coming, applied, firsts, decided)
        round_.keyed = self.keyed
        round_.previous = previous
        round_.items = [
            decide(
                sub, d, state, trace, applied.get(d.master_id), round_, previous.get(d.master_id)
            )
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
        self, uow: UnitOfWork, due: list[Delivery], applied: Mapping[str, Applied]
    ) -> tuple[list[Planned], dict[str, dict[str, Any]]]:
        """Each delivery's record state at its version and the trace of that version; and
        the state at the version the consumer holds of each record it gets a newer one of
        (what a field cleared since is told by)."""
        held: dict[str, int] = {}
        for d in due:
            if d.master_id in held:
                continue
            has = applied.get(d.master_id)
            # A record's first delivery of the round: later ones follow it (see Round.later).
            newer = has is not None and has.version < d.version
            held[d.master_id] = held_version(has) if has is not None and newer else 0
        held = {m: v for m, v in held.items() if v > 0}
        wanted = {(d.master_id, d.version) for d in due} | set(held.items())
        # What this round found, whatever the cache keeps: other deliverers fill it at the
        # same time, and a deep backlog may overflow it, so a miss there is no answer.
        found = self.cache.get_many(wanted)
        missing = [key for key in wanted if key not in found]
        if missing:
            read = {key: (state, trace) for key, state, trace in self._read_states(uow, missing)}
            found.update(read)
            self.cache.put_many(read)
        out: list[Planned] = []
        for d in due:
            at = found.get((d.master_id, d.version))
            out.append((d, *at) if at else (d, None, None))
        previous = {m: found[(m, v)][0] for m, v in held.items() if (m, v) in found}
        return out, previous

    def _read_states(
        self, uow: UnitOfWork, due: list[tuple[str, int]]
    ) -> Iterator[tuple[tuple[str, int], dict[str, Any], str]]:
        """States read from the store: the golden record, and for an older version (a
        backlog, a replay) the golden record with the events after it undone, which gives
        every version between as well. A version whose event is gone yields nothing."""
        current = uow.golden_states({master for master, _ in due})
        since: dict[str, int] = {}
        for master, version in due:
            if master in current and current[master][0] == version:
                _, state, trace = current[master]
                if trace is not None:
                    yield (master, version), state, trace
            else:
                since[master] = min(version, since.get(master, version))
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
            for master, version in due:
                if master not in rebuild:
                    continue
                history = full.get(master, [])
                event = next((e for e in history if e.version == version), None)
                folded = state_at(history, version) if event is not None else None
                if event is not None and folded is not None:
                    yield (master, version), folded, event.trace_id

    def _consumer_keys(
        self,
        uow: UnitOfWork,
        states: list[Planned],
        held: Iterable[Mapping[str, Any]] = (),
    ) -> dict[str, dict[str, str]]:
        """The consumer's keys for the records these records reference (when mapped), at
        the versions sent and at the ones the consumer holds (what a cleared reference
        was sent as)."""
        sent = [state for _, state, _ in states]
        return referenced_keys(uow, self.sub, [*sent, *held], self.siblings)

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
        since = stamp(self.moment(self.clock()) - dt.timedelta(seconds=STALLED_AFTER))
        for domain, ids in missing.items():
            for sibling in self.siblings.get(domain, ()):
                coming |= uow.held_records(sibling, ids - coming, since)
        return coming
