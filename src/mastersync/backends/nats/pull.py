"""A JetStream pull consumer that takes a batch for the cost of one wait, not one per message.

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with its own
``wait_for`` (a task and a timer per message): about 35 µs of CPU per message, which a hub
pays once per subscription for every event. This consumer speaks the same documented pull
protocol (a request to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` whose replies come
to our inbox) through nats-py's public subscribe and publish, and collects the replies in a
callback, so a batch costs one wake-up:

- a ``no_wait`` request first: the server sends what it has, then a status (404 or 408) when
  that was fewer than asked;
- only when nothing was there, a request that lingers up to ``timeout`` for the next message
  (renewed if the server ends it early). Messages it brings after we returned stay in our
  buffer for the next call; the server holds them as pending acks meanwhile, as it would
  for nats-py's own fetch.

A consumer that was deleted answers a waiting request with 409 "Consumer Deleted" and a new
one with nothing at all (no subscriber listens on its subject any more); either way the
consumer marks itself ``suspect`` so that its owner can look the consumer up again.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

# Status codes a pull request ends with (JetStream API): no messages, request timed out or
# expired, conflict (e.g. max ack pending exceeded, consumer deleted). 100 is a heartbeat.
_END = frozenset({"404", "408", "409"})
_STATUS = "Status"
_DESCRIPTION = "Description"


class PullConsumer:
    """Batches of messages from one durable pull consumer, for explicit ack."""

    def __init__(self, nc: Client, stream: str, durable: str, api_prefix: str = "$JS.API") -> None:
        self.nc = nc
        self.next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self._msgs: list[Msg] = []
        # Requests that ended (a status) since the caller last looked.
        self._ended = 0
        self._status = ""
        self._arrived = asyncio.Event()
        self._started = False
        self._subscription: Subscription | None = None
        # When the last lingering request expires (loop time): until then the server may
        # still send to our inbox what it asked for.
        self._open_until = 0.0
        # Set when the server said the consumer was deleted, or did not answer a no-wait
        # request at all (which an existing consumer always does).
        self.suspect = False

    async def _start(self) -> None:
        if not self._started:
            self._subscription = await self.nc.subscribe(self.inbox, cb=self._on_msg)
            self._started = True

    async def release(self, wait_limit: float = 1.0) -> None:
        """Give back what arrived and was not taken, then stop listening.

        A lingering request's messages that land after the last fetch were redelivered only
        once AckWait (30 s) ran out, so a hub started right after a stop sat idle with lag.
        They are nak'd, for the server to deliver again now, once the request has expired:
        while it is open the server hands nak'd messages straight back to it.
        """
        remaining = self._open_until - asyncio.get_running_loop().time()
        if self._subscription is not None and 0 < remaining <= wait_limit:
            await asyncio.sleep(remaining + 0.02)
        msgs, self._msgs = self._msgs, []
        for m in msgs:
            with contextlib.suppress(Exception):  # the connection is gone: AckWait it is
                await m.nak()
        await self.stop()

    async def stop(self) -> None:
        """Stop listening on the inbox (messages not taken are redelivered after AckWait)."""
        if self._subscription is not None:
            with contextlib.suppress(Exception):  # the connection is closed already
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if not status:
            self._msgs.append(msg)
        elif status in _END:
            self._ended += 1
            self._status = status
            description = msg.headers.get(_DESCRIPTION, "") if msg.headers else ""
            if status == "409" and "deleted" in description.lower():
                self.suspect = True
        else:
            # A heartbeat or a status we do not act on: nothing to take.
            return
        self._arrived.set()

    def _take(self, batch: int) -> list[Msg]:
        taken, self._msgs = self._msgs[:batch], self._msgs[batch:]
        return taken

    async def _request(self, batch: int, *, expires: float | None) -> None:
        body: dict[str, object] = {"batch": batch}
        if expires is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(expires * 1e9)
            self._open_until = asyncio.get_running_loop().time() + expires
        self._ended, self._status = 0, ""
        self._arrived.clear()
        await self.nc.publish(self.next_subject, orjson.dumps(body), reply=self.inbox)

    async def _until(self, done: bool, deadline: float) -> bool:
        """Wait for the next reply unless ``done``; False once the deadline passed."""
        if done:
            return False
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await self._arrived.wait()
                return True
        return False

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages: what is there now, else the first to arrive in
        ``timeout`` seconds (with whatever came along with it)."""
        await self._start()
        if len(self._msgs) >= batch:
            return self._take(batch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._request(batch - len(self._msgs), expires=None)
        # The no-wait request ends with a status (404: nothing, 408: fewer than asked) unless
        # it filled the batch; the deadline bounds it too, in case a reply is lost.
        while await self._until(len(self._msgs) >= batch or self._ended > 0, deadline):
            pass
        if not self._msgs and self._ended == 0:
            self.suspect = True
        if self._msgs:
            return self._take(batch)
        # A lingering request can end early without a message (we saw the server answer 408
        # as an unacked message came up for redelivery, and a late 408 of an earlier request
        # may land here): ask again while time is left. A conflict (409) does not clear by asking.
        while (remaining := deadline - loop.time()) > 0.01 and self._status != "409":
            await self._request(batch, expires=remaining)
            while await self._until(bool(self._msgs) or self._ended > 0, deadline):
                pass
            if self._msgs:
                # Let messages sent in the same burst land before returning.
                await asyncio.sleep(0)
                break
        return self._take(batch)
