"""Ingest: source records -> golden records, lineage, outbox events and inbox entries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from mastersync.domain.golden import ChangeEvent, GoldenRecord
from mastersync.domain.ingest import Context, Incoming, Outcome, RecordResult, process
from mastersync.domain.landscape.policy import CompiledLandscape, DomainPolicy
from mastersync.domain.ledger import Ledger
from mastersync.domain.mapping.mapper import Mapped, Mapper, MappingFailed
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.records import BatchSummary, ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.domain.validation import digest, validate
from mastersync.pipeline.ids import new_id, new_trace_id, utc_now
from mastersync.pipeline.references import resolve_references
from mastersync.ports.connector import ReadFailure, SourceRecord
from mastersync.ports.store import ChangeSet, ConcurrencyError, Store, UnitOfWork

# Problems that go to the inbox even though the record itself was accepted.
_INBOX_WARNINGS = {ProblemKind.OWNERSHIP_VIOLATION}


@dataclass
class BatchReport:
    """What came of one ingest run."""

    batch_id: str
    system: str
    domain: str
    source: str
    outcomes: Counter[str] = field(default_factory=Counter)
    # (kind, field, rule) -> count
    problems: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # First few problems with their locators, for the person at the terminal.
    samples: list[str] = field(default_factory=list)
    master_ids: list[str] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Records read, parsed or not."""
        return sum(self.outcomes.values())


@dataclass(slots=True)
class _Prepared:
    item: SourceRecord
    mapped: Mapped
    trace_id: str
    # Position in the batch: with the batch id it names this receipt (the causation id).
    position: int
    problems: list[Problem] = field(default_factory=list)
    incoming: Incoming | None = None


_SAMPLES = 20


class Ingestor:
    """Runs batches through map -> validate -> identify -> merge, one transaction per chunk."""

    def __init__(
        self,
        store: Store,
        landscape: CompiledLandscape,
        *,
        clock: Callable[[], str] = utc_now,
        ids: Callable[[str], str] = new_id,
        chunk_size: int = 1000,
        max_attempts: int = 5,
    ) -> None:
        self.store = store
        self.landscape = landscape
        self.clock = clock
        self.ids = ids
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts

    def ingest(
        self,
        system: str,
        domain: str,
        records: Iterable[SourceRecord | ReadFailure],
        *,
        source: str = "api",
        progress: Callable[[int], None] | None = None,
    ) -> BatchReport:
        """Ingest records of ``system``'s ``domain``; each chunk commits on its own."""
        mapper = self.landscape.mapper(system, domain)
        policy = self.landscape.policies[domain]
        report = BatchReport(self.ids("bat"), system, domain, source)
        summary = BatchSummary(report.batch_id, system, domain, source, self.clock())
        self._save(summary)
        for chunk in _chunks(records, self.chunk_size):
            self._chunk(chunk, mapper, policy, report)
            if progress is not None:
                progress(len(chunk))
        summary.finished_at = self.clock()
        summary.counts = {str(k): v for k, v in report.outcomes.items()}
        self._save(summary)
        return report

    def _save(self, summary: BatchSummary) -> None:
        with self.store.unit_of_work() as uow:
            uow.save_batch(summary)
            uow.commit()

    def _chunk(
        self,
        chunk: list[SourceRecord | ReadFailure],
        mapper: Mapper,
        policy: DomainPolicy,
        report: BatchReport,
    ) -> None:
        now = self.clock()
        failed: list[ExceptionEntry] = []
        prepared: list[_Prepared] = []
        for position, item in enumerate(chunk, start=report.received + 1):
            if isinstance(item, ReadFailure):
                problem = Problem(ProblemKind.PARSE_ERROR, None, item.rule, item.message)
                failed.append(
                    self._entry(
                        problem,
                        mapper,
                        None,
                        None,
                        {"raw": item.raw},
                        item.locator,
                        None,
                        now,
                        report,
                    )
                )
                report.outcomes[Outcome.REJECTED] += 1
                continue
            trace_id = item.trace_id or new_trace_id()
            try:
                mapped = mapper.map(item.payload)
            except MappingFailed as exc:
                key = mapper.key_of(item.payload)
                failed.extend(
                    self._entry(
                        p, mapper, key, None, item.payload, item.locator, trace_id, now, report
                    )
                    for p in exc.problems
                )
                report.outcomes[Outcome.REJECTED] += 1
                continue
            prepared.append(_Prepared(item, mapped, trace_id, position))
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._apply(prepared, failed, mapper, policy, report, now)
                return
            except ConcurrencyError:
                if attempt == self.max_attempts:
                    raise

    def _apply(
        self,
        prepared: list[_Prepared],
        failed: list[ExceptionEntry],
        mapper: Mapper,
        policy: DomainPolicy,
        report: BatchReport,
        now: str,
    ) -> None:
        outcomes: Counter[str] = Counter()
        problems: Counter[tuple[str, str, str]] = Counter()
        samples: list[str] = []
        local = BatchReport(
            report.batch_id,
            report.system,
            report.domain,
            report.source,
            outcomes,
            problems,
            samples,
        )
        changes = ChangeSet(exceptions=list(failed))
        with self.store.unit_of_work() as uow:
            records = [p.mapped.values for p in prepared]
            for p, found in zip(prepared, resolve_references(uow, records), strict=True):
                p.problems = found
            valid = self._validate(prepared, mapper, policy)
            ledger, open_entries = self._load(uow, valid, policy, mapper)
            golden: dict[str, GoldenRecord] = {}
            contributions = {}
            events: list[ChangeEvent] = []
            for p in prepared:
                if p.incoming is None:
                    for problem in p.problems:
                        changes.exceptions.append(
                            self._entry(
                                problem,
                                mapper,
                                p.mapped.key,
                                None,
                                p.item.payload,
                                p.item.locator,
                                p.trace_id,
                                now,
                                local,
                            )
                        )
                    outcomes[Outcome.REJECTED] += 1
                    continue
                ctx = Context(
                    now, p.trace_id, f"{report.batch_id}/{p.position}", self.ids, p.item.reapply
                )
                result = process(ledger, policy, p.incoming, ctx)
                outcomes[result.outcome] += 1
                if result.contribution is not None:
                    ledger.put(result.contribution, result.golden, result.keys)
                    contributions[result.contribution.ref] = result.contribution
                if result.golden is not None:
                    golden[result.golden.master_id] = result.golden
                if result.event is not None:
                    events.append(result.event)
                self._record(result, p, mapper, changes, open_entries, now, local)
            changes.contributions = list(contributions.values())
            changes.golden = list(golden.values())
            changes.events = events
            changes.keys = ledger.key_changes()
            uow.write(changes)
            uow.commit()
        report.outcomes.update(outcomes)
        report.problems.update(problems)
        report.samples.extend(samples[: _SAMPLES - len(report.samples)])
        report.master_ids.extend(local.master_ids)

    def _validate(
        self, prepared: list[_Prepared], mapper: Mapper, policy: DomainPolicy
    ) -> list[Incoming]:
        valid = []
        for p in prepared:
            values, problems = validate(policy.spec, p.mapped.values)
            p.problems.extend(problems)
            if p.problems:
                continue
            p.incoming = Incoming(
                mapper.system,
                policy.spec.name,
                p.mapped.key,
                p.mapped.version,
                p.mapped.timestamp,
                values,
                digest(values),
            )
            valid.append(p.incoming)
        return valid

    def _load(
        self, uow: UnitOfWork, valid: list[Incoming], policy: DomainPolicy, mapper: Mapper
    ) -> tuple[Ledger, dict[str, list[tuple[int, str]]]]:
        domain = policy.spec.name
        refs = {(r.system, r.key) for r in valid}
        naturals = {
            (nk.name, v)
            for r in valid
            for nk in policy.natural_keys
            if (v := nk.value(r.values)) is not None
        }
        uow.lock_keys(
            [f"x|{domain}|{s}|{k}" for s, k in refs] + [f"n|{domain}|{n}|{v}" for n, v in naturals]
        )
        ledger = Ledger()
        xrefs = uow.load_xrefs(domain, refs)
        natural = uow.load_natural_keys(domain, naturals)
        ledger.load_natural({(domain, n, v): m for (n, v), m in natural.items()})
        masters = {c.master_id for c in xrefs} | set(natural.values())
        records, members = uow.load_golden(masters)
        ledger.load_xrefs(xrefs)
        ledger.load_golden(records, members)
        open_entries = uow.open_exception_keys(domain, mapper.system, {r.key for r in valid})
        return ledger, open_entries

    def _record(
        self,
        result: RecordResult,
        p: _Prepared,
        mapper: Mapper,
        changes: ChangeSet,
        open_entries: dict[str, list[tuple[int, str]]],
        now: str,
        report: BatchReport,
    ) -> None:
        inc = p.incoming
        assert inc is not None
        raised = set()
        for problem in result.problems:
            if problem.is_error or problem.kind in _INBOX_WARNINGS:
                entry = self._entry(
                    problem,
                    mapper,
                    inc.key,
                    result.master_id,
                    p.item.payload,
                    p.item.locator,
                    p.trace_id,
                    now,
                    report,
                )
                changes.exceptions.append(entry)
                raised.add(entry.signature)
        if result.outcome is Outcome.UNCHANGED and result.contribution is None:
            return  # an exact redelivery: nothing happened, nothing to record
        if result.master_id:
            report.master_ids.append(result.master_id)
        golden_version = result.golden.version if result.golden else None
        detail = dict(result.detail)
        if p.item.locator:
            detail["locator"] = p.item.locator
        if result.problems and result.outcome in (Outcome.STALE, Outcome.REJECTED):
            detail["problems"] = [f"{x.field or '-'}: {x.message}" for x in result.problems]
        changes.lineage.append(
            LineageEntry(
                p.trace_id,
                "ingest",
                result.outcome.value,
                now,
                inc.domain,
                result.master_id,
                golden_version,
                inc.system,
                inc.key,
                str(result.contribution.version)
                if result.contribution
                else detail.get("source_version"),
                report.batch_id,
                detail,
            )
        )
        if result.outcome in (Outcome.ACCEPTED, Outcome.UNCHANGED):
            # Whatever this record failed before and did not fail now is settled.
            for ex_id, signature in open_entries.get(inc.key, []):
                if signature not in raised:
                    changes.resolutions.append(
                        (
                            ex_id,
                            ExceptionStatus.RESOLVED,
                            {
                                "by": "superseded",
                                "at": now,
                                "trace_id": p.trace_id,
                                "note": f"record {inc.key} applied at source version "
                                f"{result.contribution.version if result.contribution else '?'}",
                            },
                        )
                    )

    def _entry(
        self,
        problem: Problem,
        mapper: Mapper,
        key: str | None,
        master_id: str | None,
        payload: Any,
        locator: str | None,
        trace_id: str | None,
        now: str,
        report: BatchReport,
    ) -> ExceptionEntry:
        report.problems[(problem.kind.value, problem.field or "-", problem.rule)] += 1
        if len(report.samples) < _SAMPLES:
            where = locator or key or "?"
            report.samples.append(
                f"{where}: {problem.field or '-'} [{problem.rule}] {problem.message}"
            )
        return ExceptionEntry(
            problem.kind.value,
            mapper.system,
            mapper.domain,
            problem.rule,
            problem.message,
            problem.signature(mapper.system, mapper.domain),
            payload,
            now,
            # Records without a usable key are told apart by where they were read.
            source_key=key if key else f"@{locator or trace_id}",
            master_id=master_id,
            field=problem.field,
            locator=locator,
            trace_id=trace_id,
            batch_id=report.batch_id,
        )


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
