"""Polling inbound sources: claim new input, ingest it, settle the claim."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import Claim, InboundSource

log = logging.getLogger("mastersync.inbound")


def poller(
    ingestor: Ingestor, source: InboundSource, resume: Callable[[], Sequence[Claim]] | None = None
) -> Callable[[], Awaitable[int]]:
    """A poll function for the hub: ingests every claim, returns records received."""
    pending: list[Claim] = list(resume()) if resume is not None else []

    def run() -> int:
        claims = [*pending, *source.claim()]
        pending.clear()
        received = 0
        for claim in claims:
            report = ingestor.ingest(
                source.system, claim.domain, claim.records(), source=claim.name
            )
            claim.done(report.outcomes["rejected"])
            received += report.received
            log.info("%s.%s %s: %s", source.system, claim.domain, claim.name, dict(report.outcomes))
        return received

    async def poll() -> int:
        return await asyncio.to_thread(run)

    return poll
