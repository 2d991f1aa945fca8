"""Replay: send past events of a subscription again (consumers apply nothing twice)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mastersync.domain.delivery import DeliveryStatus, resent_as
from mastersync.domain.golden import ChangeEvent
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.pipeline.distribution.queueing import queue_events
from mastersync.ports.store import ReplaySelection, Store, UnitOfWork


@dataclass
class ReplayPlan:
    """What a replay would queue."""

    replay_id: str
    subscription: str
    events: list[tuple[int, ChangeEvent]]
    # Whether the consumer applies each idempotency key once: what the deliverer decides
    # by (resent_as), so what a dead letter's fate is said to be matches what it does.
    keyed: bool = False


@dataclass(frozen=True)
class DeadLetterFate:
    """What a replay does for one open dead letter of a version it selects."""

    entry_id: int
    master_id: str
    version: int
    # The dead delivery the entry is about (None: the entry names none).
    delivery_id: int | None
    # True: the replay sends the version again; False: a newer version decided what the
    # consumer holds, and nothing is sent (``note`` says which).
    resent: bool
    # The entry's resolution, as it is closed with.
    note: str


@dataclass
class QueuedReplay:
    """What queueing a replay did: deliveries queued, dead letters closed."""

    queued: int
    settled: list[DeadLetterFate] = field(default_factory=list)


def plan_replay(
    store: Store,
    selection: ReplaySelection,
    domain: str,
    new_id: Callable[[str], str],
    *,
    keyed: bool = False,
) -> ReplayPlan:
    """The events a replay selects, oldest first (``keyed``: the consumer applies each
    idempotency key once)."""
    with store.unit_of_work(write=False) as uow:
        events = uow.replay_events(selection, domain)
    return ReplayPlan(new_id("rpl"), selection.subscription, events, keyed)


def dead_letter_fates(store: Store, plan: ReplayPlan, domain: str) -> list[DeadLetterFate]:
    """What queueing the replay would do for each open dead letter of its versions, without
    changing anything (what `replay --dry-run` shows)."""
    with store.unit_of_work(write=False) as uow:
        return _fates(uow, plan, domain)


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
    return queue_and_settle(store, plan, domain, clock, progress, chunk).queued


def queue_and_settle(
    store: Store,
    plan: ReplayPlan,
    domain: str,
    clock: Callable[[], str],
    progress: Callable[[int], None] | None = None,
    chunk: int = 1000,
) -> QueuedReplay:
    """Queue the replay's deliveries and close the open dead letters of its versions, each
    with what the replay does for it (see ``queue_replay``)."""
    enqueue = queue_events(plan.subscription, domain, clock, replay=plan.replay_id)
    done = QueuedReplay(0)
    last = len(plan.events) - 1
    for start in range(0, len(plan.events), chunk):
        part = plan.events[start : start + chunk]
        with store.unit_of_work() as uow:
            done.queued += enqueue(uow, part)
            if start + chunk > last:
                # With the last part, in its transaction: an entry is closed only once its
                # version is queued (a replay cut short leaves its entries open, to select
                # again), and decided on the state the deliverer then reads.
                done.settled = _settle(uow, plan, domain, clock())
            uow.commit()
        if progress is not None:
            progress(len(part))
    return done


def _settle(uow: UnitOfWork, plan: ReplayPlan, domain: str, now: str) -> list[DeadLetterFate]:
    """Close the open dead letters of the replay's versions, as `exceptions retry` closes
    one it queues: their deliveries settled, their entries resolved with what the replay
    does for them. A replay failing again is a dead letter of its own.

    Each was closed as "sent again" before, also when the replay then skipped its version
    (the consumer held a newer one, or another dead version of the record sent again made
    it moot): the inbox said a version had gone out that never did.
    """
    fates = _fates(uow, plan, domain)
    for fate in fates:
        if fate.delivery_id is not None:
            uow.supersede(fate.delivery_id, fate.note)
        uow.settle_exception(
            fate.entry_id,
            ExceptionStatus.RESOLVED,
            {"by": "replay", "at": now, "note": fate.note, "replay": plan.replay_id},
        )
    return fates


def _fates(uow: UnitOfWork, plan: ReplayPlan, domain: str) -> list[DeadLetterFate]:
    """What the replay does for each open dead letter of its versions, decided as the
    deliverer decides a replayed delivery (``resent_as``), on the state closing them leaves:
    their dead deliveries count as skipped then."""
    events = {(e.master_id, e.version): e.event_id for _, e in plan.events if e.domain == domain}
    entries: list[tuple[ExceptionEntry, str, int]] = []
    # Only the dead letters of the replay's records: reading every open dead letter of the
    # domain (100,000 at most, the rest never settled) cost each repair batch that much.
    records = {master for master, _ in events}
    for entry in uow.open_dead_letters(domain, plan.subscription, records):
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        key = (payload.get("master_id"), payload.get("version"))
        if payload.get("subscription") == plan.subscription and key in events:
            entries.append((entry, str(key[0]), int(key[1])))
    if not entries:
        return []
    entries.sort(key=lambda found: found[0].id or 0)
    sub = plan.subscription
    masters = {master for _, master, _ in entries}
    held = uow.applied_for(sub, masters)
    firsts = uow.first_deliveries(sub, {events[(m, v)] for _, m, v in entries})
    decided = uow.newest_decided(sub, masters)
    # A first delivery that is dead is settled as skipped with its entry: the deliverer then
    # reads it so, as the version's first outcome and as a version decided.
    settled: set[tuple[str, int]] = set()
    for entry, master, version in entries:
        delivery_id = _delivery_id(entry)
        delivery = uow.delivery(delivery_id) if delivery_id is not None else None
        if delivery is None or delivery.replay or delivery.status is not DeliveryStatus.DEAD:
            continue
        settled.add((master, version))
        firsts[delivery.event_id] = (DeliveryStatus.SKIPPED, delivery.operation)
        if master not in decided or decided[master][0] < version:
            decided[master] = (version, DeliveryStatus.SKIPPED)
    why: dict[int, str | None] = {}
    for entry, master, version in entries:
        assert entry.id is not None
        applied = held.get(master)
        newest = applied.version if applied is not None else None
        first = firsts.get(events[(master, version)])
        why[entry.id], _ = resent_as(
            version, plan.replay_id, newest, first, decided.get(master), keyed=plan.keyed
        )
    resent = {(m, v) for e, m, v in entries if e.id is not None and why[e.id] is None}
    fates = []
    for entry, master, version in entries:
        assert entry.id is not None
        note = why[entry.id] or f"sent again by replay {plan.replay_id}"
        applied, later = held.get(master), decided.get(master)
        if (
            why[entry.id] is not None
            and (applied is None or applied.version <= version)
            and later is not None
            and (master, later[0]) in settled & resent
        ):
            # Moot behind a newer dead version this replay sends again: "skipped" is only
            # how that version's own dead letter is settled, and would say it never went.
            note = f"superseded: version {later[0]}, sent again by this replay"
        fates.append(
            DeadLetterFate(
                entry.id, master, version, _delivery_id(entry), why[entry.id] is None, note
            )
        )
    return fates


def _delivery_id(entry: ExceptionEntry) -> int | None:
    """The delivery a dead letter is about (None: its entry names none)."""
    payload = entry.payload if isinstance(entry.payload, dict) else {}
    found = payload.get("delivery_id")
    return int(found) if found is not None else None
