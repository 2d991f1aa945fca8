"""The outbox relayed to JetStream, and one durable pull consumer per subscription.

- The relay publishes outbox rows in position order with ``Nats-Msg-Id`` = event id, so
  JetStream drops a republish (after a crash before the relay's cursor moved) within its
  duplicate window; its cursor moves only after JetStream acknowledged every publish.
- Subjects are keyed by domain (``<prefix>.<domain>``): each subscription's consumer filters
  its domain, so subscriptions can be split among hub processes.
- A deliverer takes what it fetched, sends it, records the outcome (or queues what must
  wait), commits, and only then acks; a crash in between redelivers, and the queue's
  (subscription, event id) key makes the second copy a no-op (or, when two rounds record
  it at once, fails the later round, whose messages are then redelivered and found
  recorded): consumer-side tracking that holds beyond JetStream's duplicate window.
  (``dispatch`` queues without sending.)
- An event over the server's ``max_payload`` goes without its field changes (marked
  ``changes_omitted``): deliverers read states from the store, so one large record does not
  stop the relay for every other.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

from mastersync.backends.nats.pull import PullConsumer
from mastersync.domain.golden import ChangeEvent
from mastersync.ports.feed import Enqueue, Interrupted, Settle
from mastersync.ports.store import Store

log = logging.getLogger("mastersync.hub")

# Redelivery delays of an unacknowledged message (JetStream BackOff): a deliverer acks as soon
# as its round is recorded, mostly well within the first step, so an unacked message means a
# hub died (or a slow round, whose redelivered copies the queue's key drops), and short steps
# recover fast. A nak (a round that could not be recorded: the store down) is redelivered
# at once, paced only by the deliverer's pause after a failure (5 s at most), and every
# redelivery counts towards MaxDeliver, past which JetStream drops the message without a
# word: the version would be lost to the subscription, and its later versions held behind
# it for good. So MaxDeliver is as good as unlimited (-1 is refused next to a BackOff by
# the 2.9 servers); a round that fails for ever shows as a hub logging its failure and a
# lag that grows, not as a loss.
BACKOFF = [1.0, 2.0, 4.0, 8.0, 15.0]
MAX_DELIVER = 2**31 - 1
ACK_WAIT = 30.0
DUPLICATE_WINDOW = 120.0
# How long the relay waits for the stream to acknowledge a batch of publishes.
PUBLISH_TIMEOUT = 10.0
# What a published message's headers add besides the event id ("NATS/1.0", the header name,
# line ends), with room to spare.
_HEADER_BYTES = 64


class StreamMissing(LookupError):
    """The bus has no stream of this name (no hub ran on it yet, or it was deleted)."""


BUS_SCHEMES = ("nats", "tls")

# Subscription ids whose durable name stays what earlier releases made it (see
# ``BusSettings.durable``).
_KEEPS_NAME = re.compile(r"[A-Za-z0-9-]+\.[A-Za-z0-9-]+\Z")
# JetStream's longest consumer name (the server's JSMaxNameLen; a directory name too).
_MAX_NAME = 255
# Hex digits of the id's SHA-256 in a durable name: 64 bits, so that two ids of one bus
# sharing a name is not a practical concern.
_HASH_CHARS = 16


class BusSettings:
    """Where and how: ``nats://host:port?stream=MASTERSYNC&prefix=mastersync``.

    ``tls://`` connects over TLS. Several servers of a cluster go comma-separated
    (``nats://user:secret@a:4222,b:4222``): the client connects to whichever answers, and
    credentials given once apply to every server that names none.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        scheme = parts.scheme if parts.scheme in BUS_SCHEMES else "nats"
        hosts = [h.strip() for h in (parts.netloc or "127.0.0.1:4222").split(",") if h.strip()]
        login = next((h.rpartition("@")[0] for h in hosts if "@" in h), "")
        self.servers = [
            f"{scheme}://{h if '@' in h or not login else f'{login}@{h}'}" for h in hosts
        ]
        # The servers as logs and messages name them: without passwords or tokens.
        self.where = ", ".join(f"{scheme}://{h.rpartition('@')[2]}" for h in hosts)
        # The credentials given once, also for servers the cluster announces later (the
        # client adds those without any): user and password, or a token.
        user, colon, password = unquote(login).partition(":")
        self.credentials: dict[str, str] = (
            {"user": user, "password": password} if colon else {"token": user} if user else {}
        )
        self.stream = query.get("stream", ["MASTERSYNC"])[0]
        self.prefix = query.get("prefix", ["mastersync"])[0]

    def subject(self, domain: str) -> str:
        """The subject of one domain's events."""
        return f"{self.prefix}.{domain}"

    def durable(self, subscription: str) -> str:
        """The durable consumer name of a subscription, one no other subscription id gets."""
        legacy = self.earlier_durable(subscription)
        # Earlier releases named every consumer ``legacy``, which folds ``.``, ``_`` and
        # any other character into ``_``: ``shop_eu.items`` and ``shop.eu_items`` shared
        # one consumer and split its messages, each losing the other's share. An id of one
        # ``.`` between letters, digits and ``-`` shares its name with no other id (one
        # that folds into it has the same characters and a ``.`` in the same place: it is
        # the same id), so it keeps its name and consumer: an upgrade changes nothing for
        # it. Every other id gets the readable part and a hash of the id itself, after
        # ``__`` (which a kept name never has past the prefix). Its consumer is new, and
        # like one made after a deletion starts at the stream's first message
        # (DeliverPolicy.ALL): nothing the old one skipped is lost, and what the
        # subscription had already, the queue's event key and the applied versions drop.
        # The old consumer is not taken over: it may have been shared, and then its
        # position includes what the other subscription took.
        if _KEEPS_NAME.match(subscription) and len(legacy) <= _MAX_NAME:
            return legacy
        digest = hashlib.sha256(subscription.encode()).hexdigest()[:_HASH_CHARS]
        return f"{legacy[: _MAX_NAME - _HASH_CHARS - 2]}__{digest}"

    def earlier_durable(self, subscription: str) -> str:
        """The durable consumer name earlier releases gave a subscription (not always its own)."""
        return re.sub(r"[^A-Za-z0-9_-]", "_", f"{self.prefix}_{subscription}")


# The client's own errors (each failed reconnect, say) are logged once per kind in this
# many seconds: nats-py's default logs each with a traceback, every 2 s of an outage.
_ERROR_LOG_EVERY = 60.0
# How long a closing connection waits to send what it has buffered.
_CLOSE_FLUSH = 2

# How long the first connection to the bus may take before the caller hears of it (with
# one server; each further one adds its connect timeout).
FIRST_CONNECT = 8.0
_CONNECT_TIMEOUT = 5


class _Connection:
    """One NATS connection and the stream, made on first use."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()
        # Error kind -> (monotonic time it was last logged, times seen since).
        self._errors: dict[str, tuple[float, int]] = {}
        # Counts connections made: a caller can tell a new one (and look at the stream again).
        self.generation = 0
        # Set when the hub stops: no connection is waited for any more. (A flag and a
        # future per connect, not an Event: a feed may be used from one event loop after
        # another, and an Event stays bound to the first.)
        self._stopping = False
        self._interrupted: asyncio.Future[None] | None = None

    def interrupt(self) -> None:
        """Give up connecting, now and from now on (the hub is stopping): loops queued on
        the connection each waited out a first connect before they saw the stop."""
        self._stopping = True
        if self._interrupted is not None and not self._interrupted.done():
            self._interrupted.set_result(None)

    async def _error(self, exc: Exception) -> None:
        kind = type(exc).__name__
        now = time.monotonic()
        logged, seen = self._errors.get(kind, (-_ERROR_LOG_EVERY, 0))
        if now - logged < _ERROR_LOG_EVERY:
            self._errors[kind] = (logged, seen + 1)
            return
        self._errors[kind] = (now, 0)
        more = f" (and {seen} more since it was last logged)" if seen else ""
        log.warning("NATS %s: %s: %s%s", self.settings.where, kind, exc, more)

    async def _disconnected(self) -> None:
        if self._nc is None or self._nc.is_closed:
            return  # closed on purpose (or dropped by ``reset``)
        log.warning("NATS %s: disconnected; reconnecting", self.settings.where)

    async def _reconnected(self) -> None:
        self._errors.clear()
        log.warning("NATS %s: reconnected", self.settings.where)

    async def js(self, *, create: bool = True) -> JetStreamContext:
        """JetStream, with the stream made if it is missing (unless ``create`` is off: then
        a missing stream raises ``StreamMissing``)."""
        async with self._lock:
            if self._js is None:
                if self._stopping:
                    raise Interrupted("stopping: no new connection to NATS")
                if self._nc is None:  # kept after a look that found no stream
                    self._nc = await self._connect()
                js = self._nc.jetstream()
                config = StreamConfig(
                    name=self.settings.stream,
                    subjects=[f"{self.settings.prefix}.>"],
                    duplicate_window=DUPLICATE_WINDOW,
                )
                try:
                    await js.stream_info(self.settings.stream)
                except NotFoundError:
                    if not create:
                        raise StreamMissing(
                            f"stream {self.settings.stream} is not on the bus at "
                            f"{self.settings.where}"
                        ) from None
                    await js.add_stream(config)
                self._js = js
                self.generation += 1
            return self._js

    async def _connect(self) -> Client:
        """A connection that, once made, reconnects for ever; the first one is given
        FIRST_CONNECT seconds. (With unlimited reconnects, nats-py retries a first connect
        for ever too: a hub pointed at a server that is down never got to its stop flag,
        so SIGTERM did nothing, and `deliveries --bus` hung.)"""
        nc = Client()
        servers = self.settings.servers
        # Each server may take its connect timeout before the next is tried.
        budget = FIRST_CONNECT + _CONNECT_TIMEOUT * (len(servers) - 1)
        connecting = asyncio.ensure_future(
            nc.connect(
                servers,
                connect_timeout=_CONNECT_TIMEOUT,
                **self.settings.credentials,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        )
        stopping = self._interrupted = asyncio.get_running_loop().create_future()
        try:
            done, _ = await asyncio.wait(
                {connecting, stopping}, timeout=budget, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            # Cancelled while waiting: the connect must not go on retrying on its own.
            connecting.cancel()
            raise
        finally:
            stopping.cancel()
            self._interrupted = None
        if connecting in done:
            connecting.result()  # its own error, if it failed
            return nc
        # Given up: the attempt is cancelled and the client closed, each waited for a
        # bounded time (neither may keep a stopping hub waiting).
        connecting.cancel()
        await asyncio.wait({connecting}, timeout=_CLOSE_FLUSH)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), _CLOSE_FLUSH)
        if stopping in done:
            raise Interrupted("stopping: no new connection to NATS")
        raise ConnectionError(
            f"NATS at {self.settings.where} did not answer within "
            f"{budget:.0f} s (is it running, and is that its address?)"
        )

    async def client(self) -> Client:
        """The connection, made (with the stream) on first use."""
        await self.js()
        assert self._nc is not None
        return self._nc

    async def reset(self) -> None:
        """Drop the connection without flushing (it may be broken); the next use reconnects."""
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # already closed or broken
                await nc.close()

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is None:
            return
        # flush + close, not drain: draining pull subscriptions waits out their fetch
        # requests (30 s), and every ack has been sent already. During an outage there is
        # nothing to flush to: a stop waited out the flush's 10 s, then failed with the
        # client's ConnectionResetError and exit code 1. What it did not send, JetStream
        # redelivers, and applied versions are recorded on our side.
        if nc.is_connected:
            try:
                await nc.flush(timeout=_CLOSE_FLUSH)
            except Exception as exc:  # the bus went away while stopping
                log.warning("NATS %s: not flushed on close: %r", self.settings.where, exc)
        try:
            await nc.close()
        except Exception as exc:
            log.warning("NATS %s: closing: %r", self.settings.where, exc)


async def delete_stream(url: str) -> None:
    """Delete the bus URL's stream with its messages and consumers, if it exists: for the
    throwaway streams of benchmarks and tests."""
    settings = BusSettings(url)
    nc = await nats.connect(settings.servers, connect_timeout=5, **settings.credentials)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(settings.stream)
    finally:
        await nc.close()


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(position: int, event: ChangeEvent, *, changes: bool = True) -> bytes:
    """The message of an outbox event; without its field changes (and saying so) when
    ``changes`` is false."""
    body = {"position": position, **event.payload()}
    if not changes:
        body["changes"] = {}
        body["changes_omitted"] = True
    return orjson.dumps(body)


def _decode(data: bytes) -> tuple[int, ChangeEvent]:
    p: dict[str, Any] = orjson.loads(data)
    return p["position"], ChangeEvent(
        p["event_id"],
        p["master_id"],
        p["domain"],
        p["version"],
        p["kind"],
        p["changes"],
        p["schema_version"],
        p["trace_id"],
        p["causation_id"],
        p["occurred_at"],
        p.get("source", {}),
    )


class NatsRelay:
    """Publishes committed outbox events to JetStream, in order.

    Several hubs may run on one store (subscriptions split among them); one relay at a time
    publishes, holding a lease it renews: two relays would publish every event twice (which
    JetStream's duplicate window drops, but the work is wasted). When the holder dies, another
    hub's relay takes over once the lease runs out.
    """

    cursor = "relay:nats"
    lease_seconds = 10.0

    def __init__(self, store: Store, url: str, clock: Callable[[], str]) -> None:
        self.store = store
        self.settings = BusSettings(url)
        self.clock = clock
        self.connection = _Connection(self.settings)
        self.holder = uuid.uuid4().hex
        # Monotonic time until which this relay holds the lease (0: not held).
        self._held_until = 0.0
        # The connection generation whose stream was checked (see _check_stream).
        self._checked = -1

    def _lease(self) -> bool:
        """Whether this relay may publish: it holds the lease, renewed halfway through."""
        now = time.monotonic()
        if self._held_until - now > self.lease_seconds / 2:
            return True
        wall = dt.datetime.now(dt.UTC)
        until = wall + dt.timedelta(seconds=self.lease_seconds)
        with self.store.unit_of_work() as uow:
            held = uow.take_lease(f"lease:{self.cursor}", self.holder, _iso(wall), _iso(until))
            uow.commit()
        self._held_until = now + self.lease_seconds if held else 0.0
        return held

    def _pending(self, limit: int) -> tuple[int, list[tuple[int, ChangeEvent]]]:
        with self.store.unit_of_work(write=False) as uow:
            position = uow.cursor(self.cursor)
            return position, uow.outbox_after(position, [], limit)

    def _start_over(self, why: str) -> None:
        """Publish the outbox again from its start: the stream lost what was published.
        Deliverers skip what their subscriptions recorded (the queue's event key, the
        applied versions), so consumers get only what they had not had."""
        with self.store.unit_of_work() as uow:
            position = uow.cursor(self.cursor)
            # Back to 0 (set_cursor never moves back), unless another relay moved it.
            if position == 0 or not uow.claim_cursor(self.cursor, position, 0, self.clock()):
                return
            uow.commit()
        log.warning(
            "JetStream stream %s %s, though outbox events up to position %d were published "
            "to it: publishing the outbox again from its start (subscriptions skip what "
            "they have had)",
            self.settings.stream,
            why,
            position,
        )

    async def _check_stream(self, js: JetStreamContext) -> None:
        """On each new connection: a stream with no message ever, while the relay has
        published, was deleted (and made anew) or replaced: what it held is gone."""
        if self._checked == self.connection.generation:
            return
        info = await js.stream_info(self.settings.stream)
        if not info.state.last_seq:
            await asyncio.to_thread(self._start_over, "holds no message")
        self._checked = self.connection.generation

    def _advance(self, position: int) -> None:
        with self.store.unit_of_work() as uow:
            uow.set_cursor(self.cursor, position, self.clock())
            uow.commit()

    def _backlog(self) -> int:
        with self.store.unit_of_work(write=False) as uow:
            return uow.outbox_head() - uow.cursor(self.cursor)

    def interrupt(self) -> None:
        """Give up connecting (the hub is stopping)."""
        self.connection.interrupt()

    async def backlog(self) -> int:
        """Outbox positions not yet published (an upper bound: positions may have gaps)."""
        return await asyncio.to_thread(self._backlog)

    def _backlog_by_domain(self) -> dict[str, int]:
        with self.store.unit_of_work(write=False) as uow:
            return uow.outbox_counts_after(uow.cursor(self.cursor))

    async def backlog_by_domain(self) -> dict[str, int]:
        """Domain -> outbox events not yet published (a subscription's share of them)."""
        return await asyncio.to_thread(self._backlog_by_domain)

    @staticmethod
    def _fitted(position: int, event: ChangeEvent, max_payload: int) -> bytes:
        """The event's message, without its field changes when it would not fit the
        server's ``max_payload``: deliverers read record states from the store and need
        only the event's identity, so one large record must not stop every other's events.

        Checked here, not left to the client, because nats-py takes a publish slot and
        registers its future before it refuses a payload, and never frees them. The server
        counts the headers too (NATS/1.0 line, Nats-Msg-Id).
        """
        data = _encode(position, event)
        if len(data) + len(event.event_id) + _HEADER_BYTES <= max_payload:
            return data
        slim = _encode(position, event, changes=False)
        what = f"event {event.event_id} ({event.domain} {event.master_id} v{event.version})"
        if len(slim) + len(event.event_id) + _HEADER_BYTES > max_payload:
            raise ValueError(
                f"{what} is {len(slim)} bytes even without its field changes, over the NATS "
                f"server's max_payload of {max_payload}: raise max_payload in the server's "
                "config"
            )
        log.warning(
            "%s is %d bytes, over the NATS server's max_payload of %d: published without "
            "its field changes (deliveries read the record from the store; raise "
            "max_payload for readers of the stream that need them)",
            what,
            len(data),
            max_payload,
        )
        return slim

    async def relay(self, limit: int) -> int:
        """Publish up to ``limit`` unpublished events; returns how many (0 while another
        hub's relay holds the lease)."""
        if not await asyncio.to_thread(self._lease):
            return 0
        js = await self.connection.js()
        await self._check_stream(js)
        start, events = await asyncio.to_thread(self._pending, limit)
        if not events:
            return 0
        nc = await self.connection.client()
        # publish_async sends without a task per message; its futures complete on the
        # stream's acks, which must all arrive before the cursor moves. No ``wait_stall``:
        # with one, nats-py waits for its pending-publish slot through asyncio.wait_for,
        # which on Python 3.11 makes a task and yields to the event loop for every message
        # (a busy hub's relay took a millisecond per event); the timeout around the whole
        # batch bounds a stall as well.
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                for pos, e in events:
                    data = self._fitted(pos, e, nc.max_payload)
                    try:
                        acks.append(
                            await js.publish_async(
                                self.settings.subject(e.domain),
                                data,
                                headers={"Nats-Msg-Id": e.event_id},
                            )
                        )
                    except BaseException:
                        # Sending failed (or was cancelled) after the slot was taken: the
                        # outbound buffer full during an outage, say. Only a new connection
                        # gives the slot back.
                        await self.connection.reset()
                        raise
                answers = await asyncio.gather(*acks)
        except TimeoutError:
            if nc.is_closed:
                # The server dropped the connection (it does on a payload it refuses): the
                # next round starts on a new one.
                await self.connection.reset()
            raise
        except NoStreamResponseError:
            # The stream is gone: a new connection makes it again (and is checked).
            await self.connection.reset()
            raise
        finally:
            for ack in acks:
                ack.cancel()
        if start and any(a.seq == 1 and not a.duplicate for a in answers):
            # The stream's first message ever, after others were published: it was made
            # anew (by another hub's connection) since; this batch is republished too,
            # and JetStream's duplicate window drops it.
            await asyncio.to_thread(self._start_over, "started anew")
            return len(events)
        await asyncio.to_thread(self._advance, events[-1][0])
        return len(events)

    def _release(self) -> None:
        """Give the lease back: held until a moment already past, which the next relay
        (another hub's, or this one started again) takes at once instead of waiting for
        it to run out."""
        if not self._held_until:
            return
        past = _iso(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        with self.store.unit_of_work() as uow:
            uow.take_lease(f"lease:{self.cursor}", self.holder, past, past)
            uow.commit()
        self._held_until = 0.0

    async def close(self) -> None:
        """Give the lease back and close the connection."""
        try:
            await asyncio.to_thread(self._release)
        except Exception as exc:  # the store is down: the lease runs out by itself
            log.warning("the relay could not give its lease back (%s): it runs out by itself", exc)
        await self.connection.close()


class NatsFeed:
    """Each subscription reads its domain's subject through a durable pull consumer."""

    # JetStream redelivers a message a dead consumer held after its backoff, behind newer
    # ones: the queue must check the outbox for earlier versions not queued yet.
    ordered = False
    # Deliverers take messages themselves (``take``) and acknowledge them once recorded.
    direct = True

    def __init__(
        self, store: Store, url: str, clock: Callable[[], str], fetch_timeout: float = 0.2
    ) -> None:
        self.store = store
        self.settings = BusSettings(url)
        self.clock = clock
        self.fetch_timeout = fetch_timeout
        self.connection = _Connection(self.settings)
        self._consumers: dict[str, PullConsumer] = {}
        # One lookup at a time: two callers replacing a deleted consumer at once would each
        # make a pull consumer, and the one not kept would hold messages nobody takes.
        self._lookup = asyncio.Lock()

    async def _consumer(self, subscription: str, domain: str) -> PullConsumer:
        consumer = self._consumers.get(subscription)
        if consumer is not None and not consumer.suspect:
            return consumer
        async with self._lookup:
            return await self._look_up(subscription, domain)

    async def _look_up(self, subscription: str, domain: str) -> PullConsumer:
        consumer = self._consumers.get(subscription)
        if consumer is not None and not consumer.suspect:
            return consumer  # another caller looked it up meanwhile
        # First use, or the server said the consumer was deleted (or stayed silent): look
        # it up, and make it if it is missing. One made anew after a deletion starts at the
        # stream's first message; what this subscription had already, the queue's key and
        # the applied versions drop.
        js = await self.connection.js()
        stream, durable = self.settings.stream, self.settings.durable(subscription)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT,
            max_deliver=MAX_DELIVER,
            backoff=BACKOFF,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=self.settings.subject(domain),
        )
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            try:
                await js.add_consumer(stream, config)
            except NotFoundError:
                # The stream itself is gone: the next look-up, on a new connection, makes
                # it again (the relay publishes the outbox to it once more).
                await self.connection.reset()
                raise
            if consumer is not None:
                log.warning(
                    "JetStream consumer %s of stream %s was deleted: made it anew from the "
                    "stream's first message (what was delivered is not delivered twice)",
                    durable,
                    stream,
                )
            else:
                await self._renamed(js, subscription, durable)
        else:
            if info.config.max_deliver != MAX_DELIVER:
                # Made by an earlier release, which let JetStream drop a message after 500
                # deliveries: raised in place (an update keeps the consumer's position).
                await js.add_consumer(stream, config)
            if consumer is not None:
                # Still there (the server was only slow to answer): keep what it buffered.
                consumer.suspect = False
                return consumer
        if consumer is not None:
            await consumer.stop()
        consumer = PullConsumer(await self.connection.client(), stream, durable)
        self._consumers[subscription] = consumer
        return consumer

    async def _renamed(self, js: JetStreamContext, subscription: str, durable: str) -> None:
        """Say so when an earlier release's consumer of the subscription is left behind."""
        earlier = self.settings.earlier_durable(subscription)
        if earlier == durable:
            return
        try:
            await js.consumer_info(self.settings.stream, earlier)
        except NotFoundError:
            return
        # Not deleted here: a hub of the earlier release may still read it (an upgrade one
        # hub at a time), and would only make it again.
        log.warning(
            "subscription %s now reads JetStream consumer %s of stream %s, made from the "
            "stream's first message (what it had is skipped, not delivered again); %s, "
            "which earlier releases gave it (and may have shared with another subscription), "
            "is no longer read: delete it once no hub of an earlier release runs",
            subscription,
            durable,
            self.settings.stream,
            earlier,
        )

    def _queue(self, enqueue: Enqueue, events: list[tuple[int, ChangeEvent]]) -> None:
        with self.store.unit_of_work() as uow:
            enqueue(uow, events)
            uow.commit()

    async def dispatch(self, subscription: str, domain: str, limit: int, enqueue: Enqueue) -> int:
        """Fetch up to ``limit`` messages, queue them, then acknowledge them."""
        consumer = await self._consumer(subscription, domain)
        msgs = await consumer.fetch(limit, self.fetch_timeout)
        if not msgs:
            return 0
        events = sorted((_decode(m.data) for m in msgs), key=lambda pe: pe[0])
        try:
            await asyncio.to_thread(self._queue, enqueue, events)
        except Exception:
            await _settle(msgs, False)
            raise
        await _settle(msgs, True)
        return len(msgs)

    async def take(
        self, subscription: str, domain: str, limit: int
    ) -> tuple[list[tuple[int, ChangeEvent]], Settle]:
        """Fetch up to ``limit`` messages for a deliverer; it settles them once recorded."""
        consumer = await self._consumer(subscription, domain)
        msgs = await consumer.fetch(limit, self.fetch_timeout)
        events = sorted((_decode(m.data) for m in msgs), key=lambda pe: pe[0])

        async def settle(ok: bool) -> None:
            await _settle(msgs, ok)

        return events, settle

    def interrupt(self) -> None:
        """Give up connecting (the hub is stopping)."""
        self.connection.interrupt()

    async def lag(self, subscription: str, domain: str) -> int:
        """Messages not yet queued: never delivered, or delivered and not acknowledged (a
        consumer that died holding them; JetStream redelivers them after the backoff)."""
        await self._consumer(subscription, domain)
        js = await self.connection.js()
        info = await js.consumer_info(self.settings.stream, self.settings.durable(subscription))
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def peek_lag(self, subscription: str, domain: str) -> int:
        """``lag`` without making anything: the stream missing raises ``StreamMissing``; a
        subscription without its consumer yet has all its domain's messages to take (a
        consumer is made to start at the stream's first one)."""
        js = await self.connection.js(create=False)
        stream = self.settings.stream
        try:
            info = await js.consumer_info(stream, self.settings.durable(subscription))
        except NotFoundError:
            subject = self.settings.subject(domain)
            state = (await js.stream_info(stream, subjects_filter=subject)).state
            return sum((state.subjects or {}).values())
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        """Give back what the consumers hold untaken, then close the connection."""
        # Together: each may wait for its lingering request (up to the fetch timeout).
        await asyncio.gather(*(c.release() for c in self._consumers.values()))
        self._consumers.clear()
        await self.connection.close()


async def _settle(msgs: list[Msg], ok: bool) -> None:
    """Ack (or nak) each message, one after the other.

    Each is a buffered publish that does not wait for the server, so awaiting them in turn
    costs a fraction of gathering them as tasks.
    """
    for m in msgs:
        await (m.ack() if ok else m.nak())
