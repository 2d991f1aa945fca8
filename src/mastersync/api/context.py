"""What every request handler reaches: the hub, the API settings, limits and counters."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request

from mastersync.api.limits import RateLimiter
from mastersync.api.settings import ApiSettings
from mastersync.bootstrap import Hub
from mastersync.pipeline.governance.consumers import UsageCounter
from mastersync.pipeline.ids import new_trace_id
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.governance import Governance

_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")


@dataclass
class ApiContext:
    """The assembled API: one per app."""

    hub: Hub
    settings: ApiSettings
    governance: Governance
    limiter: RateLimiter = field(default_factory=RateLimiter)
    usage: UsageCounter | None = None
    _last_flush: float = field(default_factory=time.monotonic)
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.usage is None:
            self.usage = UsageCounter(self.governance)

    @property
    def ingestor(self) -> Ingestor:
        """The ingest service API writes go through."""
        return self.hub.ingestor

    def count(self, consumer: str, api_version: str, route: str) -> None:
        """Count one call; write the counts out now and then."""
        assert self.usage is not None
        self.usage.count(consumer, api_version, route)
        if time.monotonic() - self._last_flush >= self.settings.usage_flush_seconds:
            self.flush_usage()

    def flush_usage(self) -> None:
        """Write buffered usage counts to the store."""
        assert self.usage is not None
        with self._flush_lock:
            self._last_flush = time.monotonic()
            self.usage.flush()


def context(request: Request) -> ApiContext:
    """The API context of the app serving a request."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


def request_id(header: str | None) -> str:
    """The caller's request id if it is a sane one, else a new trace id."""
    if header and _REQUEST_ID.match(header):
        return header
    return new_trace_id()
