"""Reconcile a source system: the records the hub holds from it versus what it lists now.

A key the hub holds that the listing lacks is a deletion no incremental read could see
(Tryton deletes leave no trace); it goes to the exceptions inbox. Ignoring that entry
(`mastersync exceptions ignore`) accepts the deletion of the record as the hub had read it:
while its newest entry stays ignored, the key is reported as retired (no drift) and not
filed again; once the source lists it again, or the hub reads it again (the record made
anew and read incrementally), the acceptance lapses, and should it go again it is filed
anew.

A listed record the hub lacks, or holds an older state of, was missed (or rejected: see
the inbox); with ``repair`` it is ingested now, under the usual rules. What ingest refuses
(stale: the source's version did not move past the one applied; rejected: a rule) changes
nothing: it is reported as not repaired, by record, field and rule, and counts as drift
the repair left.

References are compared as the records they name live now: an id of a record merged away
stands for the record it was merged into, on the hub's side and the listing's alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mastersync.domain.consolidate import MERGED_INTO
from mastersync.domain.golden import Contribution
from mastersync.domain.ingest import Outcome
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.mapping.mapper import MappingFailed
from mastersync.domain.mapping.spec import ValueOp
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.reconciliation import (
    SOURCE_RECORD_MISSING,
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
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.domain.validation import digest, validate
from mastersync.pipeline.ingest import BatchReport
from mastersync.pipeline.reconcile.common import (
    ReconcileOptions,
    Reconciliation,
    chunks,
    finish,
    later,
)
from mastersync.pipeline.references import resolve_references
from mastersync.ports.connector import SourceRecord, StateReader
from mastersync.ports.store import ChangeSet, ExceptionFilter, Store, UnitOfWork

# ingest(records): hands records of the system's domain to ingest (Ingestor.ingest bound to
# the system and domain) and says what came of them; the pipeline stays free of how ingest
# is assembled.
Ingest = Callable[[list[SourceRecord]], BatchReport]

# The rule of the problem ingest gives a stale record (domain.ingest): told from a rejection.
_STALE_RULE = "stale"
# What a stale repair means for the person reading it, beside ingest's own words.
_STALE_HINT = "the source's version did not move past the one the hub applied"
# Inbox entries of source_record_missing of one system's domain read to find the deletions
# stewards accepted (newest first). Past it, an older acceptance is not seen and its key is
# filed again: an entry too many, never a deletion hidden.
_HISTORY = 100_000


@dataclass
class SourceReconciliation(Reconciliation):
    """A source run's result; records a repair's ingest refused count as unrepaired."""

    # Extra and mismatched records ingest found stale or rejected: the hub kept its state.
    refused: int = 0

    @property
    def unrepaired(self) -> int:
        """Drifted records ``--repair`` does not change (gone ones, and ones refused)."""
        return super().unrepaired + self.refused


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
        # Fields holding a reference (a master id once resolved): followed through merges.
        self.refs = tuple(
            name
            for name, value in self.mapper.spec.fields.items()
            if isinstance(value, ValueOp) and value.ref is not None and name in self.writable
        )
        self.signature = source_missing_problem(run.system, run.domain, "", "").signature(
            run.system, run.domain
        )
        self.report = DriftReport(options.examples)
        # The hub's source keys the listing named: what is left of the hub's is gone.
        self.seen: set[str] = set()
        # The keys the listing gave its records, read or not.
        self.listed: set[str] = set()
        self.ingested = self.filed = self.resolved = 0
        # What ingest made of a repair's records: applied, unchanged (the hub held them as
        # they are), stale, rejected; and the refused ones named (up to ``examples``).
        self.applied = self.unchanged = self.stale = self.rejected = 0
        self.refusals: list[dict[str, str]] = []
        # Gone keys whose deletion a steward accepted, accepted ones listed again, and
        # accepted ones the hub read again since (made anew) and gone again: filed anew.
        self.accepted = self.lapsed = self.read_again = 0

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
            # Both sides of each changed record, as compared: what the system may write.
            sides = {
                k: (self._own(known[k].values), self._own(now))
                for k, now in current.items()
                if isinstance(now, dict)
            }
            self._follow_merges(uow, [side for pair in sides.values() for side in pair])
            reopened = [
                entry_id
                for entries in uow.open_exception_keys(
                    self.domain, self.system, list(known)
                ).values()
                for entry_id, signature, *_ in entries
                if signature == self.signature
            ]
        fetch: list[SourceRecord] = []
        # Drift entries of the records a repair ingests, by the locator they are sent with:
        # reported once ingest has said what came of them.
        sent: dict[str, DriftEntry] = {}
        for key, native in listed:
            entry = self._classify(key, known.get(key), current.get(key), sides.get(key))
            if entry is None:
                continue
            if self.ingest is not None and entry.bucket in (Bucket.EXTRA, Bucket.MISMATCHED):
                # One locator per record: ingest names what it refused by where it was read.
                locator = f"reconciliation {self.run.run_id}: {key}"
                fetch.append(SourceRecord(dict(native), locator))
                sent[locator] = entry
            else:
                self.report.add(entry)
        self._settle(reopened)
        if fetch:
            self._repair(fetch, sent)

    def _repair(self, fetch: list[SourceRecord], sent: Mapping[str, DriftEntry]) -> None:
        """Ingest the records; report each, noting the ones ingest refused and why."""
        assert self.ingest is not None
        done = self.ingest(fetch)
        self.ingested += len(fetch)
        outcomes = done.outcomes
        self.applied += outcomes[Outcome.ACCEPTED]
        self.unchanged += outcomes[Outcome.UNCHANGED]
        self.stale += outcomes[Outcome.STALE]
        self.rejected += outcomes[Outcome.REJECTED]
        # The first problem of each record refused: (field, rule, message) by locator.
        why: dict[str, tuple[str, str, str]] = {}
        for where, field, rule, message in done.tally.rejects:
            why.setdefault(where, (field, rule, message))
        for locator, entry in sent.items():
            if locator not in why:
                self.report.add(entry)
                continue
            field, rule, message = why[locator]
            outcome = Outcome.STALE if rule == _STALE_RULE else Outcome.REJECTED
            hint = f"; {_STALE_HINT}" if outcome is Outcome.STALE else ""
            note = f"not repaired, {outcome.value}: {field or '-'} [{rule}] {message}{hint}"
            self.report.add(DriftEntry(entry.key, entry.bucket, entry.master_id, entry.diffs, note))
            if len(self.refusals) < self.options.examples:
                self.refusals.append(
                    {
                        "key": entry.key,
                        "outcome": outcome.value,
                        "field": field,
                        "rule": rule,
                        "message": message,
                    }
                )

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

    def _follow_merges(self, uow: UnitOfWork, records: list[dict[str, Any]]) -> None:
        """Replace, in place, each reference to a record merged away with the record it
        lives on in (the end of the chain). The listing's references resolve through
        cross-references, which a merge moves to the survivor; the hub's copy of the record
        keeps the id it resolved to when read, which may be the merged-away one."""
        if not self.refs:
            return
        ids = {v for r in records for f in self.refs if isinstance(v := r.get(f), str)}
        into: dict[str, str] = {}
        asked: set[str] = set()
        while ids - asked:
            ask = ids - asked
            asked |= ask
            for master, (_, state, _) in uow.golden_states(ask).items():
                if isinstance(survivor := state.get(MERGED_INTO), str):
                    into[master] = survivor
                    ids.add(survivor)
        if not into:
            return
        for record in records:
            for name in self.refs:
                value = record.get(name)
                followed: set[str] = set()
                # A cycle cannot be, but never loop on one.
                while isinstance(value, str) and value in into and value not in followed:
                    followed.add(value)
                    value = into[value]
                if followed:
                    record[name] = value

    def _classify(
        self,
        key: str,
        known: Contribution | None,
        current: dict[str, Any] | list[Problem] | None,
        sides: tuple[dict[str, Any], dict[str, Any]] | None,
    ) -> DriftEntry | None:
        """The record's bucket: ``sides`` are the hub's values and the listing's, as
        compared (changed records only)."""
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
        assert sides is not None  # compare() made both sides of every mapped record
        hub, now = sides
        entry = classify(key, hub, now, master_id=known.master_id, fields=self.writable)
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
        """Every key the hub read from the system that the listing lacked, to the inbox,
        but those whose deletion a steward accepted."""
        accepted = self._accepted()
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
                    taken = accepted.get(c.key)
                    if taken is not None and _read_since(taken, c):
                        # The acceptance covers the record the steward saw gone, not one
                        # the source made anew under its key and deleted again.
                        self.read_again += 1
                        lost.append(c)
                        self.report.add(
                            DriftEntry(
                                c.key,
                                Bucket.MISSING,
                                c.master_id,
                                note=f"gone from {self.system} again: the hub read {c.key} "
                                f"again ({c.received_at}) after the deletion accepted in "
                                f"inbox entry {taken.id} ({SOURCE_RECORD_MISSING}, ignored), "
                                "which covers only the record read before it; filed anew",
                            )
                        )
                        continue
                    if taken is not None:
                        self.accepted += 1
                        self.report.add(
                            DriftEntry(
                                c.key,
                                Bucket.RETIRED,
                                c.master_id,
                                note=f"gone from {self.system}; the deletion was accepted "
                                f"(inbox entry {taken.id} ignored)",
                            )
                        )
                        continue
                    lost.append(c)
                    self.report.add(
                        DriftEntry(
                            c.key, Bucket.MISSING, c.master_id, note=f"gone from {self.system}"
                        )
                    )
                options.advance("hub", len(batch))
        self._lapse([e for k, e in accepted.items() if k in self.seen or k in self.listed])
        for batch in chunks(lost, options.chunk):
            self._file(batch)

    def _accepted(self) -> dict[str, ExceptionEntry]:
        """Source key -> the ignored entry, of the keys whose newest source_record_missing
        entry a steward ignored: their deletion is accepted."""
        wanted = ExceptionFilter(
            status=ExceptionStatus.IGNORED,
            kind=ProblemKind.DRIFT.value,
            system=self.system,
            domain=self.domain,
            signature=self.signature,
            limit=1,
        )
        with self.store.unit_of_work(write=False) as uow:
            # Most systems have none: one row read, not the history.
            if not uow.exceptions(wanted):
                return {}
            history = uow.exceptions(
                ExceptionFilter(
                    status=None,
                    kind=wanted.kind,
                    system=self.system,
                    domain=self.domain,
                    signature=self.signature,
                    limit=_HISTORY,
                )
            )
        newest: dict[str, ExceptionEntry] = {}
        for entry in history:  # newest first
            newest.setdefault(entry.source_key or "", entry)
        return {k: e for k, e in newest.items() if e.status is ExceptionStatus.IGNORED}

    def _lapse(self, accepted: Collection[ExceptionEntry]) -> None:
        """Accepted deletions of records listed again no longer hold: a resolved entry
        says so and is the key's newest, so that a later deletion is filed again."""
        if not accepted:
            return
        now, run_id = self.options.clock(), self.run.run_id
        note = f"listed again by {self.system} (reconciliation {run_id})"
        entries = [
            ExceptionEntry(
                ProblemKind.DRIFT.value,
                self.system,
                self.domain,
                SOURCE_RECORD_MISSING,
                f"{self.domain} {e.source_key!r} of {self.system} is listed again: the "
                f"deletion accepted in inbox entry {e.id} no longer holds (should it go "
                "again, it is filed again)",
                self.signature,
                {
                    "system": self.system,
                    "domain": self.domain,
                    "key": e.source_key,
                    "master_id": e.master_id,
                    "accepted": e.id,
                    "reconciliation": run_id,
                },
                now,
                source_key=e.source_key,
                master_id=e.master_id,
                locator=f"reconciliation {run_id}",
                status=ExceptionStatus.RESOLVED,
                resolution={"by": "reconcile", "at": now, "note": note},
                actor="reconcile",
                channel="reconcile",
            )
            for e in accepted
        ]
        with self.store.unit_of_work() as uow:
            uow.write(ChangeSet(exceptions=entries, actor="reconcile", channel="reconcile"))
            uow.commit()
        self.lapsed += len(entries)

    def _file(self, lost: list[Contribution]) -> None:
        now = self.options.clock()
        entries = [
            source_missing_entry(
                self.system,
                self.domain,
                c.key,
                c.master_id,
                c.values,
                self.run.run_id,
                now,
                read_at=c.received_at,
            )
            for c in lost
        ]
        with self.store.unit_of_work() as uow:
            # An entry already open for the record counts another attempt instead.
            uow.write(ChangeSet(exceptions=entries, actor="reconcile", channel="reconcile"))
            uow.commit()
        self.filed += len(entries)

    def summary(self, result: SourceReconciliation) -> None:
        """What the run did about the drift: in the run's record and its notes."""
        run, system = result.run, self.system
        run.repair = {"inbox": self.filed, "resolved": self.resolved, "accepted": self.accepted}
        if self.filed:
            result.notes.append(
                f"{self.filed} record(s) gone from {system} are in the inbox as "
                f"source_record_missing (`mastersync exceptions list --kind drift`)"
            )
        if self.accepted:
            result.notes.append(
                f"{self.accepted} record(s) gone from {system} whose deletion a steward "
                "accepted (their source_record_missing entry ignored): no drift, not filed "
                "again unless listed or read again and gone again"
            )
        if self.read_again:
            run.repair["read_again"] = self.read_again
            result.notes.append(
                f"{self.read_again} record(s) whose deletion was accepted were read again by "
                f"the hub since (made anew at {system}) and are gone again: filed anew"
            )
        if self.lapsed:
            run.repair["lapsed"] = self.lapsed
            result.notes.append(
                f"{self.lapsed} record(s) whose deletion was accepted are listed again: "
                "accepted no more (gone again, they are filed again)"
            )
        if self.resolved:
            result.notes.append(f"{self.resolved} inbox entr(ies) resolved: listed again")
        if self.ingest is None:
            return
        run.repair.update(
            ingested=self.ingested,
            applied=self.applied,
            unchanged=self.unchanged,
            stale=self.stale,
            rejected=self.rejected,
            not_repaired=self.refusals,
        )
        unchanged = f", {self.unchanged} unchanged" if self.unchanged else ""
        result.notes.append(
            f"ingested {self.ingested} record(s) the hub lacked or held older: "
            f"{self.applied} applied{unchanged}"
        )
        if not result.refused:
            return
        result.notes.append(
            f"{result.refused} record(s) not repaired: ingest refused them "
            f"({self.stale} stale, {self.rejected} rejected) and the hub kept what it held"
        )
        for r in self.refusals:
            hint = _STALE_HINT if r["outcome"] == Outcome.STALE.value else "see the inbox"
            result.notes.append(
                f"  {r['key']}: {r['field'] or '-'} [{r['rule']}] {r['message']} "
                f"({r['outcome']}: {hint})"
            )
        if result.refused > len(self.refusals):
            result.notes.append(
                f"  and {result.refused - len(self.refusals)} more "
                f"(`mastersync exceptions list --system {system} --domain {self.domain}`)"
            )


def _read_since(entry: ExceptionEntry, xref: Contribution) -> bool:
    """Whether the hub read the record again after the deletion an (ignored) entry is about:
    then the source made it anew, and the acceptance does not cover its deletion."""
    payload = entry.payload if isinstance(entry.payload, Mapping) else {}
    read_at = payload.get("read_at")
    if isinstance(read_at, str):
        return later(xref.received_at, read_at)
    # Filed before entries kept the read time: a read after the entry was raised.
    return later(xref.received_at, entry.created_at)


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
    resolves it). A key whose newest such entry was ignored is a deletion a steward
    accepted: retired, not drift, and not filed again until the source lists it again or
    the hub reads it again (either ends the acceptance) and it goes again. Extra: listed
    records the hub lacks. Mismatched: listed records whose canonical values differ from
    what the hub last read (references followed through merges on both sides). With
    ``ingest`` (repair), extra and mismatched records are ingested; the ones ingest refuses
    (stale, rejected) are named in the notes and ``run.repair["not_repaired"]`` and count
    as unrepaired.
    """
    options = options or ReconcileOptions()
    run = ReconciliationRun(options.ids("rcn"), system, domain, Role.SOURCE, options.clock())
    work = _SourceRun(store, landscape, run, options, ingest if options.repair else None)
    for chunk in chunks(reader.read_state(domain), options.chunk):
        work.compare(chunk)
        options.advance("listed", len(chunk))
    work.gone()
    result = SourceReconciliation(run, work.report, refused=work.stale + work.rejected)
    work.summary(result)
    return finish(store, result, options.clock)
