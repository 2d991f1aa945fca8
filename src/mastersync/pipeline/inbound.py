"""Polling inbound sources: drop folders (claims) and incremental readers (cursors)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import BatchReport, Ingestor
from mastersync.ports.connector import Claim, InboundSource, IncrementalSource, ReadFailure
from mastersync.ports.store import Store

log = logging.getLogger("mastersync.inbound")

# A poll returns the records it took in, or None when it was not due and did nothing (the
# hub then learns nothing from it: a skip is no sign that the store works again).
Poll = Callable[[], Awaitable[int | None]]


def warn_empty_expressions(
    report: BatchReport, expressions: dict[str, str], where: str, warned: set[tuple[str, str]]
) -> None:
    """Log fields a batch's JMESPath expressions never filled (likely misspelt: they read
    null and clear the field), once per domain and field in ``warned``."""
    for name, note in report.empty_expression_notes(expressions).items():
        if (report.domain, name) not in warned:
            warned.add((report.domain, name))
            log.warning("%s.%s %s: %s", report.system, report.domain, where, note)


def poller(
    ingestor: Ingestor, source: InboundSource, resume: Callable[[], Sequence[Claim]] | None = None
) -> Poll:
    """A poll function for the hub: ingests every claim once, returns records received."""
    pending: list[Claim] = list(resume()) if resume is not None else []
    store = ingestor.store
    warned: set[tuple[str, str]] = set()

    def seen(claim: Claim) -> bool:
        if claim.fingerprint is None:
            return False
        with store.unit_of_work(write=False) as uow:
            return uow.cursor_state(f"file:{source.system}:{claim.fingerprint}") is not None

    def remember(claim: Claim) -> None:
        if claim.fingerprint is not None:
            with store.unit_of_work() as uow:
                uow.save_cursor_state(
                    f"file:{source.system}:{claim.fingerprint}", claim.name, utc_now()
                )
                uow.commit()

    def run() -> int:
        # Left-overs (and claims a failed poll kept) are older files: they are ingested
        # before new files are claimed, so an older export is not applied after a newer one.
        left = list(pending)
        pending.clear()
        received = take_all(left)
        return received + take_all(source.claim())

    def take_all(claims: Sequence[Claim]) -> int:
        received = 0
        for n, claim in enumerate(claims):
            try:
                received += take(claim)
            except BaseException:
                # The store went away (say): this claim and the ones after it are tried
                # again at the next poll, not left in processing/ until a restart.
                pending.extend(claims[n:])
                raise
        return received

    def take(claim: Claim) -> int:
        """Ingest one claim; the records it held."""
        if seen(claim):
            log.warning(
                "%s: %s has the content of a file ingested before; set aside",
                source.system,
                claim.name,
            )
            claim.duplicate()
            return 0
        mapper = ingestor.landscape.mapper(source.system, claim.domain)
        problem = claim.header_problem(source.system, mapper.missing_columns)
        if problem:
            # A file in the wrong shape (delimiter, encoding, columns) is one problem of the
            # file, not a failed field of every record; not remembered, so the same file
            # dropped again after the landscape is fixed is read.
            log.warning("%s.%s %s: %s", source.system, claim.domain, claim.name, problem)
            failure = ReadFailure(f"{claim.name}:1", "header", problem, None)
            report = ingestor.ingest(source.system, claim.domain, [failure], source=claim.name)
            claim.done(report.tally.rejects)
            return 0
        report = ingestor.ingest(source.system, claim.domain, claim.records(), source=claim.name)
        remember(claim)
        claim.done(report.tally.rejects)
        log.info("%s.%s %s: %s", source.system, claim.domain, claim.name, dict(report.outcomes))
        warn_empty_expressions(report, mapper.expression_fields, claim.name, warned)
        return report.received

    async def poll() -> int:
        return await asyncio.to_thread(run)

    return poll


def incremental_poller(
    ingestor: Ingestor,
    source: IncrementalSource,
    system: str,
    domain: str,
    *,
    every: float,
    page_size: int,
) -> Poll:
    """A poll function reading a source after its saved cursor, at most every ``every`` s
    (a call in between returns None).

    The cursor is saved after the page is ingested: a crash in between reads the page
    again, and ingest skips what it had applied (at-least-once in, exactly-once effect).
    """
    store: Store = ingestor.store
    name = f"in:{system}.{domain}"
    warned: set[tuple[str, str]] = set()
    # None: never polled. (0.0 would skip the first poll while the machine's monotonic
    # clock, its uptime, is still below ``every``.)
    last: list[float | None] = [None]

    def run() -> int | None:
        if last[0] is not None and time.monotonic() - last[0] < every:
            return None  # not due: nothing was read, nothing reached the store
        last[0] = time.monotonic()
        received = 0
        while True:
            with store.unit_of_work(write=False) as uow:
                cursor = uow.cursor_state(name)
            page = source.read(domain, cursor, page_size)
            if page.records:
                report = ingestor.ingest(system, domain, page.records, source=name)
                received += report.received
                expressions = ingestor.landscape.mapper(system, domain).expression_fields
                warn_empty_expressions(report, expressions, name, warned)
            with store.unit_of_work() as uow:
                uow.save_cursor_state(name, page.cursor, utc_now())
                uow.commit()
            if not page.more:
                return received

    async def poll() -> int | None:
        return await asyncio.to_thread(run)

    return poll


def parked_poller(inbox: ExceptionsInbox, *, every: float = 0.5) -> Poll:
    """A poll function retrying records parked for a missing reference (see
    ExceptionsInbox.retry_parked); returns how many got in (None: not due)."""
    # None: never polled (as in incremental_poller: 0.0 skipped polls while the machine's
    # uptime was below ``every``).
    last: list[float | None] = [None]

    def run() -> int | None:
        if last[0] is not None and time.monotonic() - last[0] < every:
            return None  # not due: the store was not asked
        last[0] = time.monotonic()
        report = inbox.retry_parked(dt.datetime.now(dt.UTC))
        if report.resolved:
            log.info("%d parked record(s) got in after their references", len(report.resolved))
        return len(report.resolved)

    async def poll() -> int | None:
        return await asyncio.to_thread(run)

    return poll
