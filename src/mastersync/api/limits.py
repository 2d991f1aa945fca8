"""Per-consumer rate limits and daily quotas, and the body-size and time limits of requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("mastersync.api")


@dataclass
class _Bucket:
    tokens: float
    at: float
    day: str = ""
    used_today: int = 0


class RateLimiter:
    """A token bucket per consumer (``rate`` calls a minute, bursts up to ``rate``) and a
    count per UTC day against its quota. In memory: the limits hold per server process."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.clock, self.today = clock, today
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, consumer: str, rate: int, quota: int | None) -> tuple[bool, int, int]:
        """(allowed, calls left before a refusal, seconds to wait when refused) for one call."""
        now, today = self.clock(), self.today()
        day = today.strftime("%Y-%m-%d")
        with self._lock:
            b = self._buckets.get(consumer)
            if b is None:
                b = self._buckets[consumer] = _Bucket(float(rate), now, day)
            b.tokens = min(float(rate), b.tokens + (now - b.at) * rate / 60.0)
            b.at = now
            if b.day != day:
                b.day, b.used_today = day, 0
            if quota is not None and b.used_today >= quota:
                midnight = (today + dt.timedelta(days=1)).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                return False, 0, max(1, math.ceil((midnight - today).total_seconds()))
            if b.tokens < 1.0:
                return False, 0, max(1, math.ceil((1.0 - b.tokens) * 60.0 / rate))
            b.tokens -= 1.0
            b.used_today += 1
            remaining = int(b.tokens)
            if quota is not None:
                # The next refusal is whichever runs out first: the minute or the day.
                remaining = min(remaining, quota - b.used_today)
            return True, remaining, 0


_CODES = {404: "not_found", 413: "body_too_large", 500: "internal_error", 503: "unavailable"}


def _reply(status: int, message: str, rid: str | None) -> tuple[Message, Message]:
    error: dict[str, Any] = {"status": status, "code": _CODES[status], "message": message}
    if rid:
        error["request_id"] = rid
    body = orjson.dumps({"error": error})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class GuardMiddleware:
    """Finds nothing for a NUL in the path or query (404), refuses bodies over
    ``max_body`` (413, before reading them to the end), and answers 503 when a request
    takes longer than ``timeout`` seconds."""

    def __init__(self, app: ASGIApp, max_body: int, timeout: float) -> None:
        self.app, self.max_body, self.timeout = app, max_body, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope.get("state", {}).get("request_id")
        query = scope.get("query_string", b"").lower()
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            # No key, id or text holds one (PostgreSQL keeps none in text): nothing is found.
            # Every look-up with one failed with a 500 there (SQLite answered 404).
            await self._send(send, 404, "nothing has a NUL character in its key, id or text", rid)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await self._send(send, 413, f"the request body is over {self.max_body} bytes", rid)
                return
        # Read the body first (it is small by now or refused), so the app never sees a part.
        chunks: list[bytes] = []
        seen = 0
        more = scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS")
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                await self._send(send, 413, f"the request body is over {self.max_body} bytes", rid)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, replay, tracking_send)
        except TimeoutError:
            if not started:
                # The handler runs on in its thread (one cannot be stopped): a write may
                # still commit after this answer, and the caller must not take it as undone.
                await self._send(
                    send,
                    503,
                    f"the request took over {self.timeout:g} s and was not waited for: a write "
                    "may still complete; look it up (its request id is in its audit entry) "
                    "before sending it again",
                    rid,
                )
        except Exception as exc:
            # The caller learns that it failed and the id to quote; the log learns why.
            log.error("request %s failed", rid, exc_info=exc)
            if not started:
                await self._send(
                    send, 500, "the request failed inside the hub; quote the request id", rid
                )

    @staticmethod
    async def _send(send: Send, status: int, message: str, rid: str | None = None) -> None:
        start, body = _reply(status, message, rid)
        await send(start)
        await send(body)


def retry_headers(wait: int, limit: int) -> dict[str, Any]:
    """Headers of a 429 answer."""
    return {"Retry-After": str(wait), "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"}
