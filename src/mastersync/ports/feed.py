"""Event feeds: how a subscription learns of new change events (outbox or a message bus)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from mastersync.domain.golden import ChangeEvent
from mastersync.ports.store import UnitOfWork

# Queues the events as deliveries inside the caller's unit of work; returns how many.
Enqueue = Callable[[UnitOfWork, list[tuple[int, ChangeEvent]]], int]


class Interrupted(ConnectionError):
    """A feed or relay was told to stop connecting (the hub is stopping)."""


class EventFeed(Protocol):
    """Hands new events of a domain to a subscription exactly once: to its deliverer
    directly (``direct``), or into its queue (``dispatch``)."""

    # True when the feed queues each record's versions in version order (the outbox read in
    # position order does; a bus that redelivers after a backoff does not).
    ordered: bool
    # True when deliverers take new events themselves, with no dispatch into the queue
    # between: from the outbox in the transaction that records their outcome, or from a
    # bus (see Taking).
    direct: bool

    async def dispatch(self, subscription: str, domain: str, limit: int, enqueue: Enqueue) -> int:
        """Take up to ``limit`` new events and queue them; returns how many were taken.

        Taking and queueing commit together (or the feed redelivers what was not
        queued): no event is lost between the log and the queue, none is queued twice.
        """
        ...

    def interrupt(self) -> None:
        """Stop waiting for connections to be made (the hub is stopping)."""
        ...

    async def lag(self, subscription: str, domain: str) -> int:
        """Events of the domain the subscription has not taken yet."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class GroupDispatch(Protocol):
    """A feed that can queue one domain's new events for several subscriptions at once."""

    async def dispatch_group(
        self, subscriptions: dict[str, Enqueue], domain: str, limit: int
    ) -> dict[str, int]:
        """Like ``dispatch`` for each subscription (id -> its enqueue), in one transaction
        that reads the log once where their cursors agree; returns how many each took."""
        ...


# Acknowledges what a take handed over (True) or hands it back for redelivery (False).
Settle = Callable[[bool], Awaitable[None]]


@runtime_checkable
class Taking(Protocol):
    """A direct feed on a bus: a deliverer takes new events itself, sends them, records
    their outcome, and only then acknowledges them (a crash in between redelivers)."""

    async def take(
        self, subscription: str, domain: str, limit: int
    ) -> tuple[list[tuple[int, ChangeEvent]], Settle]:
        """Up to ``limit`` new events of the domain (in no promised order), and how to
        settle them."""
        ...


class Relay(Protocol):
    """Moves committed outbox events onto a message bus (feeds that read the outbox need none)."""

    async def relay(self, limit: int) -> int:
        """Publish up to ``limit`` outbox events not yet published; returns how many."""
        ...

    async def backlog(self) -> int:
        """Outbox events not yet published."""
        ...

    def interrupt(self) -> None:
        """Stop waiting for connections to be made (the hub is stopping)."""
        ...

    async def backlog_by_domain(self) -> dict[str, int]:
        """Domain -> outbox events not yet published."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
