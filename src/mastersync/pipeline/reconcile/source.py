"""Reconcile a source system: the records the hub holds from it versus what it lists now.

A key the hub holds that the listing lacks is a deletion no incremental read could see
(Tryton deletes leave no trace); it goes to the exceptions inbox. A listed record the hub
lacks, or holds an older state of, was missed (or rejected: see the inbox); with
``repair`` it is ingested now, under the usual rules (stale versions change nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.mapping.mapper import MappingFailed
from mastersync.domain.problems import Problem
from mastersync.domain.reconciliation import (
    Bucket,
    DriftEntry,
    DriftReport,
    ReconciliationRun,
    RecordError,
    Role,
    classify,
    source_missing_entry,
    source_missing_problem,
)
from mastersync.domain.records import ExceptionStatus
from mastersync.domain.validation import digest, validate
from mastersync.pipeline.reconcile.common import (
    ReconcileOptions,
    Reconciliation,
    chunks,
    finish,
)
from mastersync.pipeline.references import resolve_references
from mastersync.ports.connector import SourceRecord, StateReader
from mastersync.ports.store import ChangeSet, Store, UnitOfWork

# ingest(records): hands records of the system's domain to ingest (Ingestor.ingest bound to
# the system and domain); the pipeline stays free of how ingest is assembled.
Ingest = Callable[[list[SourceRecord]], object]


class _SourceRun:
    """One reconciliation of one source system's domain."""

    def __init__(
        self,
        store: Store,
        landscape: CompiledLandscape,
        run: ReconciliationRun,
        options: ReconcileOptions,
        ingest: Ingest | None,
    ) -> None:
        self.store, self.run, self.options, self.ingest = store, run, options, ingest
        self.system, self.domain = run.system, run.domain
        self.mapper = landscape.mapper(run.system, run.domain)
        policy = landscape.policies[run.domain]
        self.spec = policy.spec
        # Contributions keep only what the system may write: compare only that.
        readonly = policy.readonly.get(run.system, frozenset())
        self.writable = tuple(f for f in policy.spec.fields if f not in readonly)
        self.signature = source_missing_problem(run.system, run.domain, "", "").signature(
            run.system, run.domain
        )
        self.report = DriftReport(options.examples)
        # The hub's source keys the listing named: what is left of the hub's is gone.
        self.seen: set[str] = set()
        # The keys the listing gave its records, read or not.
        self.listed: set[str] = set()
        self.ingested = self.filed = self.resolved = 0

    # --- the listing, a chunk at a time ---------------------------------------------------
    def compare(self, chunk: list[tuple[str, Any]]) -> None:
        """Classify one chunk of the listing; ingest what the hub lacks (with repair)."""
        listed = self._identify(chunk)
        with self.store.unit_of_work(write=False) as uow:
            known = {
                c.key: c for c in uow.load_xrefs(self.domain, [(self.system, k) for k, _ in listed])
            }
            changed = [(k, n) for k, n in listed if k in known and digest(n) != known[k].digest]
            current = self._canonical(uow, changed)
            reopened = [
                entry_id
                for entries in uow.open_exception_keys(
                    self.domain, self.system, list(known)
                ).values()
                for entry_id, signature, *_ in entries
                if signature == self.signature
            ]
        fetch: list[SourceRecord] = []
        for key, native in listed:
            entry = self._classify(key, known.get(key), current.get(key))
            if entry is None:
                continue
            self.report.add(entry)
            if entry.bucket in (Bucket.EXTRA, Bucket.MISMATCHED):
                fetch.append(SourceRecord(dict(native), f"reconciliation {self.run.run_id}"))
        self._settle(reopened)
        if self.ingest is not None and fetch:
            self.ingest(fetch)
            self.ingested += len(fetch)

    def _identify(self, chunk: list[tuple[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
        """(the hub's key, record) of each listed record; ones without a key are errors."""
        out = []
        for listed_key, native in chunk:
            # Listed, even if it cannot be read: never reported as gone from the source.
            self.listed.add(str(listed_key))
            if not isinstance(native, Mapping):
                self.report.fail(
                    RecordError(
                        str(listed_key),
                        None,
                        "record",
                        f"{self.system} listed a {type(native).__name__}",
                    )
                )
                continue
            try:
                key, _ = self.mapper.identity(native)
            except MappingFailed as exc:
                p = exc.problems[0]
                self.report.fail(RecordError(str(listed_key), p.field, p.rule, p.message))
                # Listed under the hub's own key too, where it can be read (a bad version,
                # say): the listing's key may be another column (an SQL ordering id), and the
                # record was reported gone as well, and filed in the inbox as deleted.
                if (readable := self.mapper.key_of(native)) is not None:
                    self.listed.add(readable)
                continue
            if key in self.seen:
                self.report.fail(
                    RecordError(key, "key", "duplicate_key", f"{self.system} listed {key!r} twice")
                )
                continue
            self.seen.add(key)
            out.append((key, native))
        return out

    def _canonical(
        self, uow: UnitOfWork, records: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> dict[str, dict[str, Any] | list[Problem]]:
        """Changed records mapped, their references resolved and validated, or their
        problems (what ingest would say of them)."""
        out: dict[str, dict[str, Any] | list[Problem]] = {}
        mapped: list[tuple[str, dict[str, Any]]] = []
        for key, native in records:
            try:
                mapped.append((key, self.mapper.map(native).values))
            except MappingFailed as exc:
                out[key] = exc.problems
        found = resolve_references(uow, [values for _, values in mapped])
        for (key, values), problems in zip(mapped, found, strict=True):
            if problems:
                out[key] = problems
                continue
            valid, invalid = validate(self.spec, values)
            out[key] = invalid or valid
        return out

    def _classify(
        self,
        key: str,
        known: Contribution | None,
        current: dict[str, Any] | list[Problem] | None,
    ) -> DriftEntry | None:
        if known is None:
            return DriftEntry(
                key,
                Bucket.EXTRA,
                note="not in the hub: never read, or rejected (see `mastersync exceptions list`)",
            )
        if not known.digest:
            # Only an acknowledgement made this xref: the hub wrote the record there.
            return DriftEntry(
                key, Bucket.EXTRA, known.master_id, note="written by the hub, not read back yet"
            )
        if current is None:
            return DriftEntry(key, Bucket.MATCHED, known.master_id)
        if isinstance(current, list):
            p = current[0]
            self.report.fail(RecordError(key, p.field, p.rule, p.message, known.master_id))
            return None
        entry = classify(
            key,
            self._own(known.values),
            self._own(current),
            master_id=known.master_id,
            fields=self.writable,
        )
        if entry.bucket is Bucket.MISMATCHED:
            return DriftEntry(
                key, entry.bucket, entry.master_id, entry.diffs, "changed since the hub read it"
            )
        return entry

    def _own(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k in self.writable}

    def _settle(self, entry_ids: list[int]) -> None:
        """Resolve inbox entries of records found gone before and listed again now."""
        if not entry_ids:
            return
        now = self.options.clock()
        note = f"listed again by {self.system} (reconciliation {self.run.run_id})"
        resolution: dict[str, object] = {"by": "reconcile", "at": now, "note": note}
        with self.store.unit_of_work() as uow:
            uow.write(
                ChangeSet(
                    resolutions=[(i, ExceptionStatus.RESOLVED, resolution) for i in entry_ids],
                    actor="reconcile",
                    channel="reconcile",
                )
            )
            uow.commit()
        self.resolved += len(entry_ids)

    # --- the hub's side: keys the listing did not name --------------------------------------
    def gone(self) -> None:
        """Every key the hub read from the system that the listing lacked, to the inbox."""
        lost: list[Contribution] = []
        options = self.options
        with self.store.unit_of_work(write=False) as uow:
            for batch in chunks(
                uow.scan_xrefs(self.domain, self.system, options.chunk), options.chunk
            ):
                for c in batch:
                    # Xrefs only an acknowledgement made (no digest) are the target role's.
                    if c.key in self.seen or c.key in self.listed or not c.digest:
                        continue
                    lost.append(c)
                    self.report.add(
                        DriftEntry(
                            c.key, Bucket.MISSING, c.master_id, note=f"gone from {self.system}"
                        )
                    )
                options.advance("hub", len(batch))
        for batch in chunks(lost, options.chunk):
            self._file(batch)

    def _file(self, lost: list[Contribution]) -> None:
        now = self.options.clock()
        entries = [
            source_missing_entry(
                self.system, self.domain, c.key, c.master_id, c.values, self.run.run_id, now
            )
            for c in lost
        ]
        with self.store.unit_of_work() as uow:
            # An entry already open for the record counts another attempt instead.
            uow.write(ChangeSet(exceptions=entries, actor="reconcile", channel="reconcile"))
            uow.commit()
        self.filed += len(entries)


def reconcile_source(
    store: Store,
    landscape: CompiledLandscape,
    reader: StateReader,
    system: str,
    domain: str,
    options: ReconcileOptions | None = None,
    ingest: Ingest | None = None,
) -> Reconciliation:
    """Compare the records the hub holds from a source with the source's full listing.

    Missing: keys the hub holds that the source no longer lists, each filed in the inbox
    as ``source_record_missing`` (an open entry counts another attempt; a key listed again
    resolves it). Extra: listed records the hub lacks. Mismatched: listed records whose
    canonical values differ from what the hub last read. With ``ingest`` (repair), extra
    and mismatched records are ingested.
    """
    options = options or ReconcileOptions()
    run = ReconciliationRun(options.ids("rcn"), system, domain, Role.SOURCE, options.clock())
    work = _SourceRun(store, landscape, run, options, ingest if options.repair else None)
    for chunk in chunks(reader.read_state(domain), options.chunk):
        work.compare(chunk)
        options.advance("listed", len(chunk))
    work.gone()
    run.repair = {"inbox": work.filed, "resolved": work.resolved}
    result = Reconciliation(run, work.report)
    if work.filed:
        result.notes.append(
            f"{work.filed} record(s) gone from {system} are in the inbox as "
            f"source_record_missing (`mastersync exceptions list --kind drift`)"
        )
    if work.resolved:
        result.notes.append(f"{work.resolved} inbox entr(ies) resolved: listed again")
    if options.repair:
        run.repair["ingested"] = work.ingested
        result.notes.append(f"ingested {work.ingested} record(s) the hub lacked or held older")
    return finish(store, result, options.clock)
