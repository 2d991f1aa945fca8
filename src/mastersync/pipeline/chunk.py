"""One chunk of a batch in one unit of work: load what it touches, merge, write it all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.identity import key_pairs, mixed_keys, natural_keys_of
from mastersync.domain.ingest import Context, Incoming, Outcome, RecordResult, process
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import Ledger
from mastersync.domain.mapping.mapper import Mapped, Mapper, MappingFailed
from mastersync.domain.mapping.spec import VersionKind
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.records import ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.domain.validation import (
    digest_of,
    is_storable,
    serialised,
    storable,
    validate,
)
from mastersync.domain.versions import Version, compare
from mastersync.pipeline.four_eyes import guarded_sent, hold_guarded, state_guarded
from mastersync.pipeline.ids import new_trace_id
from mastersync.pipeline.matching.linker import Linker
from mastersync.pipeline.references import resolve_references
from mastersync.ports.connector import ReadFailure, SourceRecord
from mastersync.ports.store import ChangeSet, ConcurrencyError, OpenEntry, UnitOfWork

# Problems that go to the inbox even though the record itself was accepted.
_INBOX_WARNINGS = {ProblemKind.OWNERSHIP_VIOLATION, ProblemKind.AMBIGUOUS_MATCH}


# The stages a record rejected after its mapping went through whole (quality rules, which
# also make validation errors, run later, at the merge).
# Entries whose payload is no source record (a delivery, a reconciliation, a raw line).
_NOT_SOURCE_RECORDS = frozenset(
    {ProblemKind.DEAD_LETTER.value, ProblemKind.DRIFT.value, ProblemKind.PARSE_ERROR.value}
)


def _mapping_stage(entry: OpenEntry) -> bool:
    """Raised by mapping, which names every field it fails."""
    return entry.kind == ProblemKind.MAPPING_ERROR.value


SAMPLES = 20
MAX_REJECTS = 100_000


@dataclass
class Tally:
    """Outcome and problem counts, with a few problems spelled out for people."""

    outcomes: Counter[str] = field(default_factory=Counter)
    # (kind, field, rule) -> count
    problems: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    master_ids: list[str] = field(default_factory=list)
    # (where it was read, field, rule, message) of each record not applied (for reject files).
    rejects: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Records mapped, and per field read through a JMESPath expression, how many gave it a
    # value (one no record gives a value is likely a misspelt expression).
    mapped: int = 0
    filled: Counter[str] = field(default_factory=Counter)
    # Quality warnings of applied records (lineage keeps them; the inbox does not), and the
    # first few spelled out.
    warned: int = 0
    notes: list[str] = field(default_factory=list)
    # Records whose guarded fields wait for a second person (four-eyes).
    held: int = 0
    # Lines that failed to parse before and were read now: locator -> the record's key.
    read_now: dict[str, str | None] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        """Fold another tally into this one."""
        self.mapped += other.mapped
        self.warned += other.warned
        self.held += other.held
        self.read_now.update(other.read_now)
        self.notes.extend(other.notes[: SAMPLES - len(self.notes)])
        self.filled.update(other.filled)
        self.outcomes.update(other.outcomes)
        self.problems.update(other.problems)
        self.samples.extend(other.samples[: SAMPLES - len(self.samples)])
        self.master_ids.extend(other.master_ids)
        self.rejects.extend(other.rejects[: MAX_REJECTS - len(self.rejects)])


def _as_stored(value: Any) -> bytes | None:
    """``value`` serialised (what its digest hashes), or None when some store (JSON columns,
    events) cannot hold it as it is: an integer beyond 64 bits, a lone surrogate, a NUL."""
    try:
        blob = serialised(value)
    except TypeError:
        return None
    return blob if is_storable(blob) else None


@dataclass(slots=True)
class Item:
    """A record of the chunk on its way through."""

    record: SourceRecord
    position: int
    key: str
    version: Version | None
    # Hash of the payload as the source sent it: an exact redelivery has the same one.
    digest: str
    mapped: Mapped | None = None
    problems: list[Problem] = field(default_factory=list)
    incoming: Incoming | None = None
    trace: str | None = None

    @property
    def trace_id(self) -> str:
        """The source's trace id, else one made on first use: most records of a re-sync
        are exact redeliveries, skipped without one."""
        if self.trace is None:
            self.trace = self.record.trace_id or new_trace_id()
        return self.trace


class ChunkRun:
    """Builds everything one chunk writes; the caller commits it."""

    def __init__(
        self,
        mapper: Mapper,
        policy: DomainPolicy,
        batch_id: str,
        now: str,
        ids: Callable[[str], str],
        unparsed: Mapping[str, list[int]] | None = None,
    ) -> None:
        self.mapper, self.policy, self.batch_id = mapper, policy, batch_id
        # Open parse errors of the source being read, by locator (source:LINE).
        self.unparsed = unparsed or {}
        self.now, self.ids = now, ids
        self.domain = policy.spec.name
        self.tally = Tally()
        self.changes = ChangeSet()
        # Warnings a later version does not raise again, since they are raised only when
        # the record is first identified (a second record of one system joined by natural
        # key) or a key moves to it (from a record that had it only from a source record):
        # the possible duplicate is still there, so its entry waits for a person.
        system = mapper.system
        self._lasting = {
            Problem(ProblemKind.AMBIGUOUS_MATCH, field, rule, "").signature(system, self.domain)
            for nk in policy.natural_keys
            for field, rule in ((nk.name, "same_system"), (nk.fields[0], "sent_key"))
        }
        # A stale update's entry is settled by a later source version only: applying the
        # version it lost to again (a retry, --reapply) says nothing new about it.
        # The declared quality rules run at the merge; a validation error of any other
        # field and rule is the canonical schema's, checked whole before it.
        self._declared = {
            (r.spec.field, r.spec.rule) for r in (*policy.record_rules, *policy.golden_rules)
        }
        self._stale = Problem(ProblemKind.STALE_UPDATE, "version", "stale", "").signature(
            system, self.domain
        )

    # --- before the unit of work: nothing here needs the store --------------------------
    def read(self, chunk: Sequence[SourceRecord | ReadFailure], first: int) -> list[Item]:
        """Turn a chunk into items; unreadable input and records without a key fail here."""
        items = []
        for position, record in enumerate(chunk, start=first):
            if isinstance(record, ReadFailure):
                problem = Problem(ProblemKind.PARSE_ERROR, None, record.rule, record.message)
                raw = {"raw": record.raw}
                if _as_stored(raw) is None:
                    raw = storable(raw)
                self._fail([problem], None, raw, record.locator, None)
                continue
            if record.locator is not None and record.locator in self.unparsed:
                self.tally.read_now[record.locator] = self.mapper.key_of(record.payload)
            blob = _as_stored(record.payload)
            if blob is None:
                record = SourceRecord(
                    storable(record.payload), record.locator, record.trace_id, record.reapply
                )
                blob = serialised(record.payload)
            hashed = digest_of(blob)
            try:
                key, version = self.mapper.identity(record.payload)
            except MappingFailed:
                self._fail(
                    self._all_problems(record.payload),
                    self.mapper.key_of(record.payload),
                    record.payload,
                    record.locator,
                    record.trace_id or new_trace_id(),
                )
                continue
            items.append(Item(record, position, key, version, hashed))
        return items

    def _all_problems(self, payload: dict[str, Any]) -> list[Problem]:
        """Every mapping problem of a record, not only its key's (one report, not several)."""
        try:
            self.mapper.map(payload)
        except MappingFailed as exc:
            return exc.problems
        raise AssertionError("identity failed but the full mapping did not")  # pragma: no cover

    # --- inside the unit of work ---------------------------------------------------------
    def apply(self, uow: UnitOfWork, items: list[Item]) -> None:
        """Load, merge and write the chunk (the caller commits)."""
        domain, system = self.domain, self.mapper.system
        uow.lock_keys(sorted(f"x|{domain}|{system}|{i.key}" for i in items))
        # Versions and digests first: on a re-sync most records are exact redeliveries,
        # skipped without reading (and parsing) their whole contribution.
        seen = uow.source_digests(domain, system, {i.key for i in items})
        pending = [i for i in items if not self._redelivered(i, seen.get(i.key))]
        refs = {(system, i.key) for i in pending if i.key in seen}
        known = {c.key: c for c in uow.load_xrefs(domain, refs)} if refs else {}
        valid = self._map_and_validate(uow, pending)
        ledger = self._load(uow, valid, known)
        loaded = set(ledger.golden)
        linker = self._linker(uow, ledger, valid, known)
        if linker:
            # The golden records matching brought in: their keys as well.
            found = [g for m, g in ledger.golden.items() if m not in loaded]
            self._load_keys(
                uow, ledger, found, [c for g in found for c in ledger.member_list(g.master_id)]
            )
        # Records that failed were checked whole in the stages they passed (and mapping
        # names every field it fails): what they failed before there and not now is settled.
        checked = {i.key for i in pending if i.incoming is None}
        open_entries = uow.open_exception_keys(domain, system, {i.key for i in valid} | checked)
        raised_at = self._raised_at(uow, open_entries)
        contributions: dict[tuple[str, str], Contribution] = {}
        golden: dict[str, GoldenRecord] = {}
        events: list[ChangeEvent] = []
        for item in pending:
            if item.incoming is None:
                entries = open_entries.get(item.key, ())
                raised = self._fail(
                    item.problems,
                    item.key,
                    item.record.payload,
                    item.record.locator,
                    item.trace_id,
                    kept=self._newer(item, entries, raised_at),
                )
                kinds = self._before_merge if item.mapped is not None else _mapping_stage
                self._settle_checked(item, open_entries.get(item.key, ()), raised, raised_at, kinds)
                continue
            ctx = Context(
                self.now,
                item.trace_id,
                f"{self.batch_id}/{item.position}",
                self.ids,
                item.record.reapply,
            )
            ctx.match = linker.match if linker else None
            sent = guarded_sent(item.incoming)
            held = hold_guarded(
                ledger, self.policy, item.incoming, self.changes, self.now, ctx.trace_id
            )
            result = process(ledger, self.policy, item.incoming, ctx)
            if result.unconfirmed and result.master_id:
                held = [*held, *self._confirm(ledger, result, ctx.trace_id)]
            taken = result.outcome not in (Outcome.STALE, Outcome.REJECTED)
            if held and not taken:
                del self.changes.holds[-len(held) :]  # nothing of the record was taken
            elif held:
                result.detail["held_for_approval"] = held
                self.tally.held += 1
            if sent and taken and result.master_id:
                state_guarded(
                    self.changes, result.master_id, item.incoming, sent, self.now, ctx.trace_id
                )
            if linker:
                linker.settle(result, item.trace_id)
            self.tally.outcomes[result.outcome] += 1
            if result.contribution is not None:
                ledger.put(result.contribution, result.golden, result.keys)
                contributions[result.contribution.ref] = result.contribution
            if result.golden is not None:
                golden[result.golden.master_id] = result.golden
            if result.event is not None:
                events.append(result.event)
            before = seen.get(item.key)
            advanced = before is None or item.version != before[0]
            entries = open_entries.get(item.key, ())
            raised = self._record(result, item, entries, advanced=advanced, raised_at=raised_at)
            if result.outcome in (Outcome.REJECTED, Outcome.STALE):
                # Rejected at the merge, or stale: it passed mapping, references and the
                # schema whole.
                self._settle_checked(item, entries, raised, raised_at, self._before_merge)
        self.changes.contributions = list(contributions.values())
        self.changes.golden = list(golden.values())
        self.changes.events = events
        self.changes.keys = ledger.key_changes()
        uow.write(self.changes)
        if linker and linker.changes:
            uow.write_matching(linker.changes)

    def _confirm(self, ledger: Ledger, result: RecordResult, trace_id: str) -> list[str]:
        """Pending changes for guarded values the merge would have taken unconfirmed (the
        golden record kept its own): a confirmation applies them."""
        assert result.master_id is not None
        before = ledger.golden.get(result.master_id)
        names = []
        for name, proposed, origin in result.unconfirmed:
            self.changes.holds.append(
                PendingChange(
                    result.master_id,
                    self.domain,
                    name,
                    origin.get("system", self.mapper.system),
                    origin.get("key", ""),
                    proposed,
                    before.attributes.get(name) if before else None,
                    self.changes.actor,
                    self.now,
                    trace_id,
                )
            )
            names.append(name)
        return names

    def _linker(
        self, uow: UnitOfWork, ledger: Ledger, valid: list[Incoming], known: dict[str, Contribution]
    ) -> Linker | None:
        """Incremental matching of the chunk's new records, where the domain matches."""
        if self.policy.matching is None:
            return None
        linker = Linker(uow, self.policy, ledger, self.now)
        linker.load(uow, [r for r in valid if r.key not in known])
        return linker

    def _redelivered(self, item: Item, applied: tuple[Version, str] | None) -> bool:
        """An exact redelivery (same version, same payload) is counted and skipped unread."""
        if applied is None or item.record.reapply or item.digest != applied[1]:
            return False
        if self.mapper.version_kind is not VersionKind.ARRIVAL and item.version != applied[0]:
            return False
        self.tally.outcomes[Outcome.UNCHANGED] += 1
        return True

    def _map_and_validate(self, uow: UnitOfWork, items: list[Item]) -> list[Incoming]:
        mapped: list[Item] = []
        watched = self.mapper.expression_fields
        for item in items:
            try:
                item.mapped = self.mapper.map(item.record.payload)
            except MappingFailed as exc:
                item.problems = list(exc.problems)
                continue
            mapped.append(item)
            self.tally.mapped += 1
            for name in watched:
                if item.mapped.values.get(name) not in (None, "", []):
                    self.tally.filled[name] += 1
        found = resolve_references(uow, [i.mapped.values for i in mapped if i.mapped])
        valid = []
        for item, problems in zip(mapped, found, strict=True):
            assert item.mapped is not None
            values, invalid = validate(self.policy.spec, item.mapped.values)
            malformed: dict[str, tuple[Any, list[Problem]]] = {}
            if invalid and not problems:
                values, invalid, malformed = self._set_aside(item.mapped.values, values, invalid)
            item.problems = [*problems, *invalid]
            if item.problems:
                continue
            m = item.mapped
            item.incoming = Incoming(
                self.mapper.system,
                self.domain,
                m.key,
                m.version,
                m.timestamp,
                values,
                item.digest,
                malformed,
            )
            valid.append(item.incoming)
        return valid

    def _set_aside(
        self, sent: dict[str, Any], values: dict[str, Any], invalid: list[Problem]
    ) -> tuple[dict[str, Any], list[Problem], dict[str, tuple[Any, list[Problem]]]]:
        """A record whose schema problems are all in fields its system may not write:
        validated again without them, which are set aside for its ownership entries (the
        value would not be taken anyway; it refused the system's own fields with it)."""
        readonly = self.policy.readonly.get(self.mapper.system, frozenset())
        roots: dict[str, list[Problem]] = {}
        for p in invalid:
            root = (p.field or "").split(".", 1)[0]
            # A natural key's part is no mere value: without it the record could join
            # another record (an optional part of a composite key is read as empty).
            if root not in readonly or root in self.policy.key_fields:
                return values, invalid, {}
            roots.setdefault(root, []).append(p)
        again, still = validate(self.policy.spec, {k: v for k, v in sent.items() if k not in roots})
        if still:
            return values, invalid, {}
        return again, [], {name: (sent.get(name), found) for name, found in roots.items()}

    def _load(
        self, uow: UnitOfWork, valid: list[Incoming], known: dict[str, Contribution]
    ) -> Ledger:
        """Every row the chunk's records can reach, so that merging asks the store nothing."""
        domain = self.domain
        naturals = {
            (nk.name, v)
            for r in valid
            for nk in self.policy.natural_keys
            if (v := nk.value(r.values)) is not None
        }
        uow.lock_keys(sorted(f"n|{domain}|{n}|{v}" for n, v in naturals))
        ledger = Ledger()
        natural = uow.load_natural_keys(domain, naturals)
        ledger.load_natural({(domain, n, v): m for (n, v), m in natural.items()})
        xrefs = [known[r.key] for r in valid if r.key in known]
        records, members = uow.load_golden({c.master_id for c in xrefs} | set(natural.values()))
        ledger.load_xrefs(xrefs)
        ledger.load_golden(records, members)
        arriving = self._arriving(valid, known, natural) if self.policy.composite_keys else {}
        self._load_keys(uow, ledger, records, members, naturals, arriving)
        if uow.shared:
            self._unmoved(uow, known, natural)
        return ledger

    def _arriving(
        self,
        valid: list[Incoming],
        known: Mapping[str, Contribution],
        natural: Mapping[tuple[str, str], str],
    ) -> dict[str, list[Mapping[str, Any]]]:
        """What each loaded record may take from the chunk's records (for composite keys):
        its own source record's new values, or those of one joining it by natural key."""
        arriving: dict[str, list[Mapping[str, Any]]] = {}
        for r in valid:
            masters = {known[r.key].master_id} if r.key in known else set()
            masters |= {
                m
                for nk in self.policy.natural_keys
                if (v := nk.value(r.values)) is not None
                and (m := natural.get((nk.name, v))) is not None
            }
            for m in masters:
                arriving.setdefault(m, []).append(r.values)
        return arriving

    def _load_keys(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        records: Sequence[GoldenRecord],
        members: Sequence[Contribution],
        asked: Collection[tuple[str, str]] = (),
        arriving: Mapping[str, list[Mapping[str, Any]]] | None = None,
    ) -> None:
        """The natural keys loaded golden records hold now (their own values, or ones only
        their source records send), and every key they could come to hold: a golden value
        may come from another of a record's source records (survivorship), one no record of
        the chunk carries. A record may change or clear any of them, and the ledger removes
        a key only if it holds it (else the old GTIN went on identifying the record); a key
        it gains unloaded was taken as free, and its insert failed the chunk at every run.
        The keys' holders are loaded too: whether a key is another record's golden value or
        only one its source records send decides who keeps it."""
        domain = self.domain
        by_master: dict[str, list[Contribution]] = {}
        for c in members:
            by_master.setdefault(c.master_id, []).append(c)
        held = {
            pair
            for g in records
            for pair in key_pairs(
                natural_keys_of(self.policy, g.attributes, by_master.get(g.master_id, ()))
            )
        }
        held |= {
            (nk.name, v)
            for c in members
            for nk in self.policy.natural_keys
            if (v := nk.value(c.values)) is not None
        }
        if self.policy.composite_keys:
            # A composite key's golden value may mix parts of several sources (the PIM's SKU,
            # the ERP's brand): unloaded, it was taken as free and its insert failed the
            # chunk whenever another record held it.
            for g in records:
                sources = [
                    g.attributes,
                    *(c.values for c in by_master.get(g.master_id, ())),
                    *(arriving or {}).get(g.master_id, ()),
                ]
                held |= mixed_keys(self.policy, sources)
        held -= set(asked)
        if not held:
            return
        current = uow.load_natural_keys(domain, held)
        ledger.load_natural({(domain, n, v): m for (n, v), m in current.items()})
        others = set(current.values()) - set(ledger.golden)
        if others:
            more, more_members = uow.load_golden(others)
            ledger.load_golden(more, more_members)

    def _unmoved(
        self, uow: UnitOfWork, known: dict[str, Contribution], natural: dict[tuple[str, str], str]
    ) -> None:
        """Raise ConcurrencyError (the chunk is redone) if a merge, split or unmerge moved a
        record this chunk read before its golden rows were locked: the chunk waited for that
        lock, and writing on what it read would undo the move."""
        moved = False
        if known:
            refs = {(self.mapper.system, key) for key in known}
            now = {c.key: c.master_id for c in uow.load_xrefs(self.domain, refs)}
            moved = any(now.get(k) != c.master_id for k, c in known.items())
        if not moved and natural:
            moved = uow.load_natural_keys(self.domain, natural.keys()) != natural
        if moved:
            raise ConcurrencyError("records moved by a merge or split while the chunk waited")

    def _record(
        self,
        result: RecordResult,
        item: Item,
        open_entries: Sequence[OpenEntry],
        *,
        advanced: bool = True,
        raised_at: Mapping[int, Version | None] | None = None,
    ) -> set[str]:
        """Inbox entries, rejects, lineage and settled entries of a processed record
        (``advanced``: its source version is not the one applied before); returns the
        signatures of the entries it raised."""
        rec = item.incoming
        assert rec is not None
        raised = set()
        for problem in result.problems:
            if problem.is_error or problem.kind in _INBOX_WARNINGS:
                entry = self._entry(
                    problem,
                    rec.key,
                    result.master_id,
                    item.record.payload,
                    item.record.locator,
                    item.trace_id,
                )
                raised.add(entry.signature)
            elif result.outcome is Outcome.ACCEPTED:
                # A quality warning (kept in lineage, not the inbox): counted and shown, or
                # a required field the record has lacked since a rule was added is silent.
                self.tally.warned += 1
                if len(self.tally.notes) < SAMPLES:
                    where = item.record.locator or rec.key
                    self.tally.notes.append(
                        f"{where}: {problem.field or '-'} [{problem.rule}] {problem.message}"
                    )
        if result.outcome in (Outcome.STALE, Outcome.REJECTED):
            self._reject(result.problems, item.record.locator or rec.key)
        if result.outcome is Outcome.UNCHANGED and result.contribution is None:
            return raised  # the same version again with the same values: nothing happened
        if result.master_id:
            self.tally.master_ids.append(result.master_id)
        detail = result.detail
        if item.record.locator:
            detail["locator"] = item.record.locator
        if result.problems and result.outcome in (Outcome.STALE, Outcome.REJECTED):
            detail["problems"] = [f"{p.field or '-'}: {p.message}" for p in result.problems]
        version = (
            str(result.contribution.version)
            if result.contribution
            else detail.get("source_version")
        )
        self.changes.lineage.append(
            LineageEntry(
                item.trace_id,
                "ingest",
                result.outcome.value,
                self.now,
                rec.domain,
                result.master_id,
                result.golden.version if result.golden else None,
                rec.system,
                rec.key,
                version,
                self.batch_id,
                detail,
            )
        )
        if result.outcome in (Outcome.ACCEPTED, Outcome.UNCHANGED):
            # Whatever this record failed before and did not fail now is settled; but not
            # what a newer version failed (a late older version, or the applied one again,
            # says nothing of it: review found v3's entry closed by a late v2, v3 lost).
            for ex_id, signature, *_ in open_entries:
                if signature == self._stale and not advanced:
                    continue
                at = raised_at.get(ex_id) if raised_at else None
                if item.version is not None and at is not None and compare(item.version, at) < 0:
                    continue
                if signature not in raised and signature not in self._lasting:
                    self._settle(
                        ex_id, item, f"record {rec.key} applied at source version {version}"
                    )
        return raised

    def _raised_at(
        self, uow: UnitOfWork, open_entries: Mapping[str, Sequence[OpenEntry]]
    ) -> dict[int, Version | None]:
        """The source version each open entry kept from a source record was raised for,
        read off its payload in one read (None: none could be read)."""
        ids = [
            entry.id
            for entries in open_entries.values()
            for entry in entries
            if entry.kind not in _NOT_SOURCE_RECORDS
        ]
        if not ids:
            return {}
        found: dict[int, Version | None] = {}
        for ex_id, payload in uow.exception_payloads(ids).items():
            try:
                _, found[ex_id] = self.mapper.identity(payload if isinstance(payload, dict) else {})
            except MappingFailed:
                found[ex_id] = None  # its version is the failure, say
        return found

    def _before_merge(self, entry: OpenEntry) -> bool:
        """Raised by a stage a record that reached validation passed through whole:
        mapping, references, the canonical schema (not a declared rule of the same field
        and name: those run at the merge)."""
        kind = entry.kind
        if kind == ProblemKind.VALIDATION_ERROR.value:
            return (entry.field, entry.rule) not in self._declared
        return kind in (ProblemKind.MAPPING_ERROR.value, ProblemKind.UNKNOWN_REFERENCE.value)

    def _settle_checked(
        self,
        item: Item,
        open_entries: Sequence[OpenEntry],
        raised: set[str],
        raised_at: Mapping[int, Version | None],
        kinds: Callable[[OpenEntry], bool],
    ) -> None:
        """A rejected record's entries of the stages that ran whole (``kinds``) that it no
        longer raises are settled (its other failures have entries of their own), each
        only if raised for a version no newer than this one (or one that could not be
        read): a late older version says nothing of a newer one's problem. Before, they
        stayed open, and a retry called them still failing for an error the record no
        longer had."""
        for entry in open_entries:
            ex_id = entry.id
            if not kinds(entry) or entry.signature in raised:
                continue
            at = raised_at.get(ex_id)
            if item.version is not None and at is not None and compare(item.version, at) < 0:
                continue
            self._settle(
                ex_id,
                item,
                f"record {item.key} no longer fails this at source version {item.version}; "
                "it is rejected for other problems (their own entries)",
            )

    def _settle(self, ex_id: int, item: Item, note: str) -> None:
        self.changes.resolutions.append(
            (
                ex_id,
                ExceptionStatus.RESOLVED,
                {"by": "superseded", "at": self.now, "trace_id": item.trace_id, "note": note},
            )
        )

    def _fail(
        self,
        problems: Sequence[Problem],
        key: str | None,
        payload: Any,
        locator: str | None,
        trace_id: str | None,
        kept: Collection[str] = (),
    ) -> set[str]:
        """Reject a record: its inbox entries (but those of signatures ``kept``, which
        stay as they are); returns their signatures."""
        self.tally.outcomes[Outcome.REJECTED] += 1
        self._reject(problems, locator or key)
        system, domain = self.mapper.system, self.domain
        return {
            self._entry(
                problem,
                key,
                None,
                payload,
                locator,
                trace_id,
                write=problem.signature(system, domain) not in kept,
            ).signature
            for problem in problems
        }

    @staticmethod
    def _newer(
        item: Item, entries: Sequence[OpenEntry], raised_at: Mapping[int, Version | None]
    ) -> set[str]:
        """Signatures of the record's open entries raised for a newer version than this
        one: a late older version failing the same way kept its payload there instead, and
        the newer version, the one to retry, was lost."""
        if item.version is None:
            return set()
        return {
            e.signature
            for e in entries
            if (at := raised_at.get(e.id)) is not None and compare(item.version, at) < 0
        }

    def _reject(self, problems: Sequence[Problem], where: str | None) -> None:
        if len(self.tally.rejects) < MAX_REJECTS:
            self.tally.rejects.extend(
                (where or "?", p.field or "", p.rule, p.message) for p in problems if p.is_error
            )

    def _entry(
        self,
        problem: Problem,
        key: str | None,
        master_id: str | None,
        payload: Any,
        locator: str | None,
        trace_id: str | None,
        *,
        write: bool = True,
    ) -> ExceptionEntry:
        tally = self.tally
        tally.problems[(problem.kind.value, problem.field or "-", problem.rule)] += 1
        if len(tally.samples) < SAMPLES:
            where = locator or key or "?"
            # A warning (the record was applied) says so: it is no reject.
            said = "warning: " if not problem.is_error else ""
            tally.samples.append(
                f"{said}{where}: {problem.field or '-'} [{problem.rule}] {problem.message}"
            )
        system, domain = self.mapper.system, self.domain
        entry = ExceptionEntry(
            problem.kind.value,
            system,
            domain,
            problem.rule,
            problem.message,
            problem.signature(system, domain),
            payload,
            self.now,
            # Records without a usable key are told apart by where they were read.
            source_key=key if key else f"@{locator or trace_id}",
            master_id=master_id,
            field=problem.field,
            locator=locator,
            trace_id=trace_id,
            batch_id=self.batch_id,
            actor=self.changes.actor,
            channel=self.changes.channel,
        )
        if write:
            self.changes.exceptions.append(entry)
        return entry
