"""Ingest: source records -> golden records, lineage, outbox events and inbox entries."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.mapping.mapper import Mapper
from mastersync.domain.records import BatchSummary, ExceptionStatus
from mastersync.pipeline.chunk import ChunkRun, Tally
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.connector import ReadFailure, SourceRecord
from mastersync.ports.governance import ProcessStep
from mastersync.ports.store import ChangeSet, ConcurrencyError, Store


@dataclass
class BatchReport:
    """What came of one ingest run."""

    batch_id: str
    system: str
    domain: str
    source: str
    tally: Tally = field(default_factory=Tally)

    @property
    def outcomes(self) -> Counter[str]:
        """accepted / unchanged / stale / rejected counts."""
        return self.tally.outcomes

    @property
    def problems(self) -> Counter[tuple[str, str, str]]:
        """(kind, field, rule) -> count."""
        return self.tally.problems

    @property
    def samples(self) -> list[str]:
        """The first few problems, with where they were read."""
        return self.tally.samples

    @property
    def master_ids(self) -> list[str]:
        """Master records the batch touched."""
        return self.tally.master_ids

    def never_filled(self, expressions: dict[str, str], at_least: int = 20) -> list[str]:
        """Fields read through a JMESPath expression that no record of a batch of at least
        ``at_least`` mapped records gave a value: likely a misspelt expression (it reads
        null, and clears the field, rather than failing)."""
        if self.tally.mapped < at_least:
            return []
        return [name for name in expressions if not self.tally.filled[name]]

    def empty_expression_notes(self, expressions: dict[str, str]) -> dict[str, str]:
        """``never_filled`` said for people: field -> one line."""
        return {
            name: f"{name} ({expressions[name]!r}) was empty in all {self.tally.mapped} "
            "records mapped: a misspelt path reads null (and clears the field); check it "
            "against the source"
            for name in self.never_filled(expressions)
        }

    @property
    def received(self) -> int:
        """Records read, parsed or not."""
        return sum(self.outcomes.values())


class Ingestor:
    """Runs batches through map -> validate -> identify -> merge, one transaction per chunk.

    A chunk commits as a whole: its golden records, xrefs, lineage, outbox events and inbox
    entries, or none of them. A crash loses at most the chunk in flight, which a re-run of
    the batch applies again (already applied records are recognised and skipped).
    """

    def __init__(
        self,
        store: Store,
        landscape: CompiledLandscape,
        *,
        clock: Callable[[], str] = utc_now,
        ids: Callable[[str], str] = new_id,
        chunk_size: int = 1000,
        max_attempts: int = 10,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.landscape = landscape
        self.clock = clock
        self.ids = ids
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.pause = pause
        self._jitter = random.Random()

    def ingest(
        self,
        system: str,
        domain: str,
        records: Iterable[SourceRecord | ReadFailure],
        *,
        source: str = "api",
        progress: Callable[[int], None] | None = None,
        actor: str | None = None,
        channel: str | None = None,
        mapper: Mapper | None = None,
        step: ProcessStep | None = None,
    ) -> BatchReport:
        """Ingest records of ``system``'s ``domain``; each chunk commits on its own.

        ``actor`` and ``channel`` say who wrote and through what, for the audit log and
        four-eyes (default: the system, through ingest of ``source``); ``mapper`` replaces
        the landscape's mapping (the API sends canonical records); ``step`` is the process
        step a one-record write takes, checked and recorded with it.
        """
        mapper = mapper or self.landscape.mapper(system, domain)
        policy = self.landscape.policies[domain]
        report = BatchReport(self.ids("bat"), system, domain, source)
        summary = BatchSummary(report.batch_id, system, domain, source, self.clock())
        # Lines of this source that failed to parse before: read now, their entries close
        # (retry tells a person to fix the file and ingest it again; nothing closed them).
        # Read once a chunk has a record read at a line of this source (SOURCE:LINE, the
        # only locators those entries have): an API or webhook push has none (its locator
        # names the request), and a read per push was a tenth of its cost.
        unparsed: dict[str, list[int]] | None = None
        at_line = f"{source}:"
        chunks = _chunks(records, self.chunk_size)
        chunk = next(chunks, None)
        if chunk is None:
            self._finish(summary, report.tally)
            self._save(summary)
            return report
        first = True
        while chunk is not None:
            # One chunk ahead: the batch's summary goes into its first chunk's transaction
            # and, finished, into its last one's (a small batch is one transaction, not three).
            following = next(chunks, None)
            if unparsed is None and any((r.locator or "").startswith(at_line) for r in chunk):
                with self.store.unit_of_work(write=False) as uow:
                    unparsed = uow.open_parse_errors(domain, system, source)
            for attempt in range(1, self.max_attempts + 1):
                run = ChunkRun(mapper, policy, report.batch_id, self.clock(), self.ids, unparsed)
                run.changes.actor = actor or f"system:{system}"
                run.changes.channel = channel or f"ingest:{source}"
                run.changes.process_step = step
                items = run.read(chunk, report.received + 1)
                try:
                    with self.store.unit_of_work() as uow:
                        run.apply(uow, items)
                        if following is None:
                            self._finish(summary, report.tally, run.tally)
                        if first or following is None:
                            uow.save_batch(summary)
                        uow.commit()
                    break
                except ConcurrencyError:
                    # Another writer took the same records first: redo the chunk on its state,
                    # after a growing, jittered pause. Redone at once, it met the next of a
                    # steward's merges and unmerges of its records each time, and five such
                    # in a row stopped the batch.
                    if attempt == self.max_attempts:
                        raise
                    self.pause(min(1.0, 0.01 * 2**attempt) * self._jitter.uniform(0.5, 1.5))
                except Exception as exc:
                    exc.add_note(
                        f"{report.received:,} record(s) of this batch were committed before "
                        "it stopped; ingesting it again skips them"
                    )
                    raise
            report.tally.add(run.tally)
            if progress is not None:
                progress(len(chunk))
            first, chunk = False, following
        if report.tally.read_now:
            self._settle_parsed(system, domain, source, report.tally.read_now)
        return report

    def _settle_parsed(
        self, system: str, domain: str, source: str, read: Mapping[str, str | None]
    ) -> None:
        """Close the parse errors of lines this batch read, once it is done, where the
        record read there is the one that failed: its key is in the line kept (a file of
        the same name, tomorrow's export say, has other records at those lines). A source
        has one open entry per rule, at the line that failed last: one that failed again in
        this batch moved the entry to its line, and it stays open."""
        now = self.clock()
        status = ExceptionStatus.RESOLVED
        with self.store.unit_of_work() as uow:
            entries = uow.open_parse_errors(domain, system, source)
            ids = [ex_id for loc, found in entries.items() if read.get(loc) for ex_id in found]
            kept = uow.exception_payloads(ids) if ids else {}
            changes = ChangeSet(actor=f"system:{system}", channel=f"ingest:{source}")
            changes.resolutions = [
                (ex_id, status, {"by": "ingest", "at": now, "note": f"{loc} read now"})
                for loc, found in entries.items()
                if (key := read.get(loc))
                for ex_id in found
                if isinstance(raw := kept.get(ex_id), dict) and _in_line(key, raw.get("raw"))
            ]
            if changes.resolutions:
                uow.write(changes)
                uow.commit()

    def _finish(self, summary: BatchSummary, *tallies: Tally) -> None:
        """Mark the summary finished, with the outcome counts of the tallies."""
        counts: Counter[str] = Counter()
        for tally in tallies:
            counts.update(tally.outcomes)
        summary.finished_at = self.clock()
        summary.counts = {str(k): v for k, v in counts.items()}

    def _save(self, summary: BatchSummary) -> None:
        with self.store.unit_of_work() as uow:
            uow.save_batch(summary)
            uow.commit()


# What separates a line's values (delimiters, quotes, spaces) and a composite key's parts.
_SEPARATORS = re.compile(r"[,;\t|\"' ]+")


def _in_line(key: str, raw: Any) -> bool:
    """Whether every part of ``key`` is one of the line's values: a key only inside another
    value (A1 in A10) or a part of a composite key split differently is not."""
    values = set(_SEPARATORS.split(str(raw or "")))
    parts = [p for p in _SEPARATORS.split(key) if p]
    return bool(parts) and all(p in values for p in parts)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
