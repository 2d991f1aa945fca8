"""Delivery rules: states a delivery goes through, backoff, and a record's state at a version."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mastersync.domain.golden import ChangeEvent
from mastersync.domain.landscape.delivery import DeliveryConfig


class DeliveryStatus(StrEnum):
    """Where one event's delivery to one subscription stands."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    # Nothing to send: filtered out, or a later version already applied.
    SKIPPED = "skipped"
    DEAD = "dead"

    @property
    def open(self) -> bool:
        """Still to be attempted: holds back later versions of the same record."""
        return self in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


def backoff_delay(
    attempt: int, cfg: DeliveryConfig, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, jittered, capped, and never
    sooner than the consumer's Retry-After."""
    b = cfg.backoff
    base = min(b.max, b.initial * b.multiplier ** max(attempt - 1, 0))
    delay = base * (1 - b.jitter + 2 * b.jitter * rng.random())
    if retry_after is not None and retry_after == retry_after:  # NaN asks for nothing
        # However long the consumer asks for, a day at most: the next attempt's time must
        # stay a time (a year's wait overflowed it and failed the whole round, for ever).
        retry_after = min(retry_after, MAX_WAIT)
        delay = max(delay, retry_after)
        return min(delay, max(b.max, retry_after))
    return min(delay, b.max)


# The longest any delivery waits for its next attempt.
MAX_WAIT = 86_400.0


def state_at(events: Iterable[ChangeEvent], version: int) -> dict[str, Any] | None:
    """A record's attributes at ``version``, folded from its events (None if it has none).

    Events carry each changed field's value after the change, so folding them in version
    order rebuilds any past state without storing every version of the golden record.
    """
    state: dict[str, Any] = {}
    seen = 0
    for event in sorted(events, key=lambda e: e.version):
        if event.version > version:
            break
        for name, change in event.changes.items():
            after = change.get("after")
            if after is None:
                state.pop(name, None)
            else:
                state[name] = after
        seen = event.version
    return state if seen == version else None


def state_before(
    current: dict[str, Any], current_version: int, newer: Iterable[ChangeEvent], version: int
) -> dict[str, Any] | None:
    """A record's attributes at ``version``, unwound from its current state (None if a
    version between is missing).

    Each event names every field it changed with its value before, so undoing the events
    after ``version``, newest first, reads only the few recent ones, where folding forward
    reads the record's whole history.
    """
    return unwind(current, current_version, newer, version).get(version)


def unwind(
    current: dict[str, Any], current_version: int, newer: Iterable[ChangeEvent], version: int
) -> dict[int, dict[str, Any]]:
    """The record's state at every version from ``version`` to the current one, unwound
    from its current state (empty if a version between is missing)."""
    later = sorted((e for e in newer if e.version > version), key=lambda e: -e.version)
    if [e.version for e in later] != list(range(current_version, version, -1)):
        return {}
    states = {current_version: current}
    state = dict(current)
    for event in later:
        for name, change in event.changes.items():
            before = change.get("before")
            if before is None:
                state.pop(name, None)
            else:
                state[name] = before
        states[event.version - 1] = dict(state)
    return states


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery, as kept in its history."""

    at: str
    outcome: str
    detail: str
    latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "at": self.at,
            "outcome": self.outcome,
            "detail": self.detail,
            "latency_ms": self.latency_ms,
        }


# Replay ids of repairs (reconciliation re-publishing what a consumer lost or changed).
REPAIR_PREFIX = "rpr"


def idempotency_key(master_id: str, version: int, replay: str = "") -> str:
    """What a consumer uses to apply a version at most once: master id + version.

    A replay keeps the key, so the consumer applies nothing twice; a repair gets a key of
    its own, since the consumer must apply again what it had (and then lost or changed).
    """
    if replay.startswith(f"{REPAIR_PREFIX}_"):
        return f"{master_id}:{version}:{replay}"
    return f"{master_id}:{version}"


def resent_as(
    version: int,
    replay: str,
    newest: int | None,
    first: tuple[DeliveryStatus, str | None] | None,
    decided: tuple[int, DeliveryStatus] | None = None,
    *,
    keyed: bool = True,
) -> tuple[str | None, str | None]:
    """(why nothing is sent, else None; the operation to send again, else None: decide it
    now) for a replay or repair of ``version``.

    Consumers trust idempotency keys: an older version under a key the consumer never saw
    would overwrite the newer one it holds, and the newer one sent again after it would be
    a duplicate to it. So behind a newer version, a replay resends only what the consumer
    applied before (a duplicate to it, or, to one that lost its data, the same steps in the
    same order), and a repair (keys of its own) nothing at all. A version replayed as it
    was delivered goes with the operation it went with: the consumer's state now (say,
    deactivated by a later version) says nothing of what that version did. A version
    never delivered is moot behind a newer one ``decided`` (delivered, or skipped: say it
    left the subscription's filter while the consumer held nothing), as a dead letter's
    retry is: sent now, it put a record the filter excludes there. A consumer that does not
    apply each key once (not ``keyed``: most systems, files) is sent nothing behind a newer
    version either: the older one would go back over it, and a replay that ends before the
    newest version left it there.
    """
    delivered = first is not None and first[0] is DeliveryStatus.DELIVERED
    repair = replay.startswith(f"{REPAIR_PREFIX}_")
    moot = repair or not delivered or not keyed
    if newest is not None and newest > version and moot:
        return f"superseded: the consumer has version {newest}", None
    if decided is not None and decided[0] > version and moot:
        return f"superseded: version {decided[0]} was {decided[1].value} since", None
    if delivered and not repair and first is not None:
        return None, first[1]
    return None, None


def after_failure(attempts: int, cfg: DeliveryConfig, terminal: bool) -> DeliveryStatus:
    """Retry a transient failure until attempts run out; a terminal one is dead at once."""
    if terminal or attempts >= cfg.max_attempts:
        return DeliveryStatus.DEAD
    return DeliveryStatus.RETRYING


def changed_fields(events: Iterable[ChangeEvent]) -> Mapping[int, list[str]]:
    """Version -> fields it changed (for receipts)."""
    return {e.version: sorted(e.changes) for e in events}


@dataclass(slots=True)
class Delivery:
    """One event on its way to one subscription."""

    subscription: str
    event_id: str
    position: int
    master_id: str
    domain: str
    version: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str
    occurred_at: str
    enqueued_at: str
    operation: str | None = None
    delivered_at: str | None = None
    latency_ms: float | None = None
    target_key: str | None = None
    last_error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # '' for an event's first delivery; the replay's id for a replay of it.
    replay: str = ""
    id: int | None = None

    @classmethod
    def pending(
        cls, subscription: str, position: int, event: ChangeEvent, now: str, replay: str = ""
    ) -> Delivery:
        """A new delivery of the event at log ``position``, due at once."""
        return cls(
            subscription,
            event.event_id,
            position,
            event.master_id,
            event.domain,
            event.version,
            DeliveryStatus.PENDING,
            0,
            now,
            event.occurred_at,
            now,
            replay=replay,
        )


@dataclass(slots=True)
class Applied:
    """What a consumer holds of one record: the newest version it applied, under which key."""

    subscription: str
    master_id: str
    version: int
    target_key: str | None
    active: bool
    applied_at: str
    # Other keys the consumer gave for it, by name (records referencing it may need them).
    refs: dict[str, str] | None = None
    # ``digest`` of the payload it last received (None: deactivated, or not known).
    digest: str | None = None
    # The newest version it was sent in full (an upsert), where known: a record deactivated
    # there still holds that version's fields.
    sent_version: int | None = None


def held_version(applied: Applied) -> int:
    """The version whose fields the consumer holds: the one it applied, or for a record
    deactivated there the last one it was sent in full (when known)."""
    if applied.active or applied.sent_version is None:
        return applied.version
    return applied.sent_version


@dataclass(frozen=True)
class SubscriptionStats:
    """How one subscription is keeping up."""

    # Pending to skipped count versions (events it queued), each once, by what became of it
    # through its first delivery and any replays: delivered if one was, else retrying or
    # pending while one is open, else its latest delivery's outcome. Counting deliveries, a
    # replayed dead letter counted twice (settled as skipped, then the replay's outcome).
    subscription: str
    pending: int
    retrying: int
    delivered: int
    dead: int
    skipped: int
    # Events in the log this subscription has not taken into its queue yet.
    lag: int
    oldest_open_at: str | None
    p50_ms: float | None
    p99_ms: float | None
    # Of the skipped: versions that sent the consumer nothing new (see UNCHANGED).
    unchanged: int = 0
    # Deliveries replays queued (each version once per replay), and of them the still open.
    replayed: int = 0
    replaying: int = 0


# How a delivery skipped for sending the consumer nothing new says so (its last error).
UNCHANGED = "nothing the consumer receives changed since version"
# The rule of a dead letter never sent because a record it references (its key goes into
# the payload, or the filter reads it) did not reach the consumer.
AWAITING_REFERENCE = "awaiting_reference"
