"""What a delivery round carries between its stages: the items decided, the round's plan,
its outcomes and its report."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.delivery import Applied, Delivery, DeliveryStatus
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    NotSent,
    TransientFailure,
)

# Seconds past its due time after which an open delivery counts as not being worked on: a
# delivery waiting for its record spends attempts again (see Planner.coming).
STALLED_AFTER = 120.0


def parse_instant(ts: str) -> dt.datetime:
    """A stored instant (ISO 8601, ``Z`` for UTC) as an aware datetime."""
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def stamp(moment: dt.datetime) -> str:
    """An instant as the store writes it (UTC, microseconds, ``Z``)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Moment:
    """A round's ``now`` parsed once (every delivery's times are reckoned from it)."""

    def __init__(self) -> None:
        self._parsed: tuple[str, dt.datetime] | None = None

    def __call__(self, now: str) -> dt.datetime:
        parsed = self._parsed
        if parsed is None or parsed[0] != now:
            parsed = self._parsed = (now, parse_instant(now))
        return parsed[1]


@dataclass
class Item:
    """One delivery as a round decided it: the request to send, or why none is sent."""

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
    # The record's state at this version (what the next version's clearing compares with).
    state: dict[str, Any] | None = None


# A delivery with its record's state at that version and the version's trace id.
Planned = tuple[Delivery, dict[str, Any] | None, str | None]
# What the consumer answered (None: nothing was sent) and how long the call took.
Outcome = tuple[DeliveryAck | DeliveryFailed | None, float]


@dataclass
class Round:
    """What one round plans: deliveries to decide on, and (reading the log directly) the
    stretch of the log it took."""

    items: list[Item]
    # The subscription's cursor before and after the events taken (None: none taken).
    start: int | None = None
    end: int | None = None
    # Events taken that wait in the queue: behind an open delivery of their record, behind a
    # version a bus has not handed over yet, or behind one this round must retry.
    waiting: list[Delivery] = field(default_factory=list)
    # Later versions of records in ``items``, a layer per version: each is decided and
    # sent once the one before it has an outcome.
    later: list[list[Planned]] = field(default_factory=list)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    # Referenced records the consumer has no key for yet but that one of its subscriptions
    # has an open delivery of (see Planner.siblings).
    coming: set[str] = field(default_factory=set)
    # For replays and repairs: what the consumer held when the round began, and how each
    # replayed event was first delivered (event id -> status, operation).
    held: Mapping[str, Applied] = field(default_factory=dict)
    firsts: dict[str, tuple[DeliveryStatus, str | None]] = field(default_factory=dict)
    # ... and the newest version of each replayed record first delivered or skipped.
    decided: dict[str, tuple[int, DeliveryStatus]] = field(default_factory=dict)
    # Whether the consumer applies each idempotency key once (see ports.outbound).
    keyed: bool = False
    # Master id -> the record's state at the version the consumer holds, for the records
    # it holds an older version of (what a field cleared since is compared with).
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)


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


def not_sent(item: Item, outcome: DeliveryAck | DeliveryFailed | None) -> bool:
    """A delivery held back unsent, which spends no attempt: waiting for referenced
    records on their way to the consumer, or turned away by a paced connector."""
    return (item.wait is not None and item.coming) or isinstance(outcome, NotSent)


def held_digest(item: Item, ack: DeliveryAck) -> str | None:
    """The digest of what the consumer holds once it acknowledged ``item``: not known when
    it had the version already (a duplicate, applied before, maybe in another shape)."""
    return None if ack.duplicate else item.digest
