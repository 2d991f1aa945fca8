"""Reconcile a consumer system: the hub's projection of its golden records versus what the
system holds, compared in the system's own (outbound) shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from itertools import islice
from typing import Any

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.consolidate import MERGED_INTO
from mastersync.domain.delivery import REPAIR_PREFIX, Applied, DeliveryStatus
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.mapping.spec import ValueOp
from mastersync.domain.reconciliation import (
    Bucket,
    DriftEntry,
    DriftReport,
    FieldDiff,
    Normalisation,
    OwnFields,
    ReconciliationRun,
    RecordError,
    Role,
    classify,
)
from mastersync.domain.subscriptions import Operation, OutboundMappingFailed, Subscription
from mastersync.domain.validation import digest
from mastersync.pipeline.distribution.planning import referenced_keys
from mastersync.pipeline.reconcile.common import (
    ReconcileOptions,
    Reconciliation,
    chunks,
    finish,
    later,
)
from mastersync.pipeline.reconcile.repair import queue_repairs
from mastersync.ports.connector import StateReader
from mastersync.ports.reconciliation import listed_active, lists_inactive, source_of_record
from mastersync.ports.store import Store, UnitOfWork

GoldenState = tuple[int, dict[str, Any], str | None]

# The kind of the event a merge gives its survivor (and its loser); its source names both.
_MERGED = "merged"
# Merges followed back from a survivor to the records merged into it, and into those: a
# longer chain is not followed (its rows are compared as the survivor's, as before).
_MERGE_DEPTH = 16


def written_fields(landscape: CompiledLandscape, sub: Subscription) -> tuple[str, ...]:
    """The fields a subscription writes at its consumer, also when the hub has no value."""
    cfg = landscape.config.systems[sub.system].outbound[sub.name]
    if cfg.mapping is not None:
        return tuple(cfg.mapping.fields)
    return sub.fields if sub.fields is not None else DOMAINS[sub.domain].fields


def normalisation(landscape: CompiledLandscape, sub: Subscription) -> Normalisation:
    """Spaces count only in fields whose outbound mapping keeps them (``trim: false``)."""
    cfg = landscape.config.systems[sub.system].outbound[sub.name]
    fields = cfg.mapping.fields if cfg.mapping is not None else {}
    keep = frozenset(
        name.split(".", 1)[0]
        for name, spec in fields.items()
        if isinstance(spec, ValueOp) and spec.trim is False
    )
    return Normalisation(keep_spaces=keep)


def own_fields(landscape: CompiledLandscape, sub: Subscription) -> OwnFields | None:
    """Where a consumer that is also a source of the domain keeps its own values: the
    native fields its inbound mapping reads into fields it may write (None: it is no
    source of the domain)."""
    mapper = landscape.mappers.get((sub.system, sub.domain)) if sub.source_too else None
    if mapper is None:
        return None
    fields = landscape.policies[sub.domain].fields
    writable = [f for f in mapper.targets if f not in fields or fields[f].may_write(sub.system)]
    return OwnFields.of(sub.system, mapper.spec, writable)


class _Fix(Enum):
    """What a repair does for one listed record."""

    # Nothing to do, or nothing a repair can do (extra records are never deleted).
    NONE = auto()
    # Send the record's newest version again.
    RESEND = auto()
    # Listed as active though the hub deactivated it there: deactivate it again.
    DEACTIVATE = auto()
    # Drift a re-delivery would make worse (it would write over the system's own values):
    # reported, left as it is.
    HOLD = auto()


@dataclass
class TargetReconciliation(Reconciliation):
    """A target run's result; drift held back from repair counts as unrepaired."""

    # Mismatched records a repair left alone: re-sending them would have written the hub's
    # older values over what the consumer changed in fields it is the source of.
    held_back: int = 0

    @property
    def unrepaired(self) -> int:
        """Drifted records ``--repair`` does not change (extras, and records held back)."""
        return super().unrepaired + self.held_back


@dataclass(frozen=True)
class _Listed:
    """What the hub knows of one chunk's listed keys."""

    # key -> master id (its cross-reference).
    masters: Mapping[str, str]
    # key -> the record merged away whose row it is (its cross-reference names the survivor).
    rows: Mapping[str, str]
    # key -> the key the hub writes the key's record at, when that is another listed key.
    elsewhere: Mapping[str, str]
    # key -> the cross-reference of a record the hub read from the system under the key.
    read: Mapping[str, Contribution]


class _TargetRun:
    """One reconciliation of one subscription's consumer."""

    def __init__(
        self,
        store: Store,
        landscape: CompiledLandscape,
        sub: Subscription,
        options: ReconcileOptions,
        reader: StateReader,
    ) -> None:
        self.store, self.sub, self.options = store, sub, options
        self.fields = written_fields(landscape, sub)
        self.norm = normalisation(landscape, sub)
        # A listing that is only what the hub delivered (the sandbox's) is not where the
        # hub reads the system from: nothing in it is the system's own change.
        self.own = own_fields(landscape, sub) if source_of_record(reader) else None
        # Who owns each field, for the notes of changes at the consumer that is a source.
        self.owners = {n: p.owners for n, p in landscape.policies[sub.domain].fields.items()}
        # Whether a listed record may be one deactivated there (then only a reader that
        # tells active records from deactivated ones, ``listed_active``, shows one turned on
        # again; of one that cannot tell the hub trusts what it sent).
        self.lists_inactive = lists_inactive(reader)
        self.reader = reader
        self.report = DriftReport(options.examples)
        # Master ids the listing named: what is left of the expected records is missing.
        self.seen: set[str] = set()
        self.repair_id = options.ids(REPAIR_PREFIX) if options.repair else None
        self.queued = 0
        self.held_back = 0

    # --- the listing, a chunk at a time ---------------------------------------------------
    def compare(self, chunk: list[tuple[str, Any]]) -> None:
        """Classify one chunk of the system's listing; queue repairs of its mismatches."""
        sub = self.sub
        with self.store.unit_of_work(write=False) as uow:
            xrefs = uow.load_xrefs(sub.domain, [(sub.system, str(k)) for k, _ in chunk])
            masters = {c.key: c.master_id for c in xrefs}
            # Keys the hub read from this system as a source (an acknowledgement alone
            # leaves no digest): the system's own records, as the hub last read them.
            read = {c.key: c for c in xrefs if c.digest}
            applied = uow.applied_for(sub.id, set(masters.values()))
            rows = self._merged_rows(uow, masters, applied)
            if rows:
                applied = {**applied, **uow.applied_for(sub.id, set(rows.values()))}
            elsewhere = self._second_records(uow, xrefs, applied, rows)
            states = uow.golden_states(set(masters.values()) | set(rows.values()))
            keys = self._reference_keys(uow, states)
        listed = _Listed(masters, rows, elsewhere, read)
        repairs: list[str] = []
        deactivate: dict[str, Applied] = {}
        for key, native in chunk:
            entry, fix = self._classify(str(key), native, listed, states, applied, keys)
            if entry is None:
                continue
            held = applied.get(entry.master_id) if entry.master_id else None
            # The consumer's own record, which the hub reads and does not send it; but not the
            # row the hub writes the record at (one merged away or left out by the filter,
            # its deactivation not arrived yet): that is extra, as at any consumer.
            ours = held is not None and held.target_key == str(key)
            if entry.bucket is Bucket.EXTRA and str(key) in read and not ours:
                entry = DriftEntry(entry.key, Bucket.SOURCED, entry.master_id, note=entry.note)
            self.report.add(entry)
            master = entry.master_id
            if fix is _Fix.RESEND and master is not None:
                repairs.append(master)
            elif fix is _Fix.DEACTIVATE and master is not None:
                deactivate[master] = applied[master]
            elif fix is _Fix.HOLD:
                self.held_back += 1
        self._repair(repairs, deactivate)

    def _classify(
        self,
        key: str,
        native: Any,
        listed: _Listed,
        states: Mapping[str, GoldenState],
        applied: Mapping[str, Applied],
        keys: Mapping[str, dict[str, str]],
    ) -> tuple[DriftEntry | None, _Fix]:
        sub = self.sub
        # The row of a record merged away is that record's, though the source record read
        # from it names the survivor now.
        master = listed.rows.get(key) or listed.masters.get(key)
        writes_at = listed.elsewhere.get(key)
        if not isinstance(native, Mapping):
            self.report.fail(
                RecordError(
                    key, None, "record", f"{sub.system} listed a {type(native).__name__}", master
                )
            )
            if master is not None and writes_at is None:
                # Held there, if unreadable: not missing as well (a repair would have sent
                # the record over whatever the consumer keeps at that key).
                self.seen.add(master)
            return None, _Fix.NONE
        if master is None:
            unknown = DriftEntry(key, Bucket.EXTRA, note="unknown to the hub: no cross-reference")
            return unknown, _Fix.NONE
        if writes_at is not None:
            # Not the row the hub writes the record at: compared there (wherever the listing
            # names it), not here.
            note = f"a second record of the same master, which the hub writes at {writes_at}"
            return DriftEntry(key, Bucket.EXTRA, master, note=note), _Fix.NONE
        if master in self.seen:
            entry = DriftEntry(key, Bucket.EXTRA, master, note="a second record of the same master")
            return entry, _Fix.NONE
        self.seen.add(master)
        state = states.get(master)
        if state is None:
            return DriftEntry(key, Bucket.EXTRA, master, note="no such golden record"), _Fix.NONE
        version, attributes, _ = state
        view = sub.view(master, version, attributes, self._refs(attributes, keys))
        try:
            operation = sub.operation(view, False)
        except OutboundMappingFailed as exc:  # a filter that cannot be evaluated on it
            self.report.fail(RecordError(key, exc.field, exc.rule, exc.message, master))
            return None, _Fix.NONE
        held = applied.get(master)
        if operation is not Operation.UPSERT:
            why = (
                f"merged into {attributes['_merged_into']}"
                if attributes.get("_merged_into")
                else "the subscription's filter leaves it out"
            )
            if held is not None and not held.active:
                if self.lists_inactive and not self._active_there(native):
                    return DriftEntry(key, Bucket.RETIRED, master), _Fix.NONE
                # Its listing holds active records only, or the record says it is active
                # there: turned on again behind the hub's back. Mismatched, not extra: the
                # hub sent this record and knows its state there (deactivated), the consumer
                # shows another (active), and re-sending the deactivation repairs it;
                # extras are records no repair touches.
                note = (
                    f"deactivated by the hub as version {held.version} ({why}), "
                    f"active at {sub.system} again"
                )
                return DriftEntry(key, Bucket.MISMATCHED, master, note=note), _Fix.DEACTIVATE
            return DriftEntry(key, Bucket.EXTRA, master, note=why), _Fix.NONE
        try:
            expected = sub.payload(view)
        except OutboundMappingFailed as exc:
            self.report.fail(RecordError(key, exc.field, exc.rule, exc.message, master))
            return None, _Fix.NONE
        entry = classify(
            key, expected, native, master_id=master, fields=self.fields, norm=self.norm
        )
        if entry.bucket is not Bucket.MISMATCHED:
            return entry, _Fix.NONE
        if held is None or held.version < version:
            got = f"version {held.version}" if held else "nothing"
            in_flight = f"the hub has delivered {got} of version {version} so far"
            return DriftEntry(key, entry.bucket, master, entry.diffs, in_flight), _Fix.RESEND
        if self.own is not None:
            # Only behind the version the hub delivered last: with a newer one on its way,
            # the difference is (at least) the hub's newer value, which that delivery sets
            # whatever a repair does.
            own, other = self.own.split(entry.diffs)
            if own:
                xref = listed.read.get(key)
                unread = xref is None or xref.digest != digest(native)
                if not unread and xref is not None and later(held.applied_at, xref.received_at):
                    # Exactly as the hub read it, yet the hub delivered since: that delivery
                    # set the hub's values there, and the row went back to before it (a
                    # restore from a backup). Not the consumer's doing: drift, re-sent.
                    return self._lost(entry, own, xref, held), _Fix.RESEND
                return self._own_change(entry, own, other, unread)
        return DriftEntry(key, entry.bucket, master, entry.diffs), _Fix.RESEND

    def _active_there(self, native: Mapping[str, Any]) -> bool:
        """Whether a listed record of a listing that holds deactivated records says it is
        active at the consumer; one that cannot say counts as inactive (the hub trusts the
        deactivation it sent, rather than report drift a repair might never clear)."""
        sub = self.sub
        return listed_active(self.reader, sub.domain, sub.name, native) is True

    def _lost(
        self, entry: DriftEntry, own: list[FieldDiff], xref: Contribution, held: Applied
    ) -> DriftEntry:
        """A record the consumer holds as the hub read it before its last delivery there:
        the delivery was lost, and its fields are not the consumer's own values."""
        assert self.own is not None
        system = self.sub.system
        fields = sorted({f for d in own for f in self.own.fields_at(d.field)})
        owned = ", ".join(f"{f} ({self._owned_by(f)})" for f in fields)
        note = (
            f"delivery lost: {self.own.describe(own)} is as the hub read it from {system} "
            f"at {xref.received_at}, and the hub delivered version {held.version} there at "
            f"{held.applied_at}, after that; field ownership lets {system} write {owned}, but "
            f"a value is {system}'s own only while the hub has delivered nothing since it "
            "read it (restored from a backup?): sent again"
        )
        return DriftEntry(entry.key, entry.bucket, entry.master_id, entry.diffs, note)

    def _merged_rows(
        self, uow: UnitOfWork, masters: Mapping[str, str], applied: Mapping[str, Applied]
    ) -> dict[str, str]:
        """Listed key -> the record merged away whose row it is, for keys whose source
        record a merge moved to the survivor (the survivor's row is another key).

        A merge moves the consumer's source records to the survivor, so the key of the
        loser's row names the survivor too; the loser keeps its acknowledged key (the hub
        deactivated it there). Only keys of records the hub writes elsewhere are looked at:
        the survivor's merged events name its losers (and theirs, in turn), and a loser
        whose delivered row is at the key is the record the key stands for."""
        odd = {
            key: master
            for key, master in masters.items()
            if (held := applied.get(master)) is not None
            and held.target_key is not None
            and held.target_key != key
        }
        if not odd:
            return {}
        # loser -> the listed keys' master it was merged into (in the end).
        into: dict[str, str] = {}
        frontier = {m: m for m in set(odd.values())}
        for _ in range(_MERGE_DEPTH):
            if not frontier:
                break
            found: dict[str, str] = {}
            for master, history in uow.events_for(frontier).items():
                for event in history:
                    loser = event.source.get("loser")
                    if (
                        event.kind == _MERGED
                        and event.source.get("survivor") == master
                        and isinstance(loser, str)
                        and loser not in into
                        and loser not in frontier
                    ):
                        found[loser] = into[loser] = frontier[master]
            frontier = found
        if not into:
            return {}
        # Unmerged since, a loser is a live record again with its own source records back:
        # not what a key naming the survivor stands for.
        states = uow.golden_states(into)
        merged = {m for m, (_, state, _) in states.items() if state.get(MERGED_INTO)}
        rows: dict[str, str] = {}
        for loser, held in uow.applied_for(self.sub.id, merged).items():
            key = held.target_key
            if key is not None and odd.get(key) == into[loser]:
                rows[key] = loser
        return rows

    def _second_records(
        self,
        uow: UnitOfWork,
        xrefs: list[Contribution],
        applied: Mapping[str, Applied],
        rows: Mapping[str, str],
    ) -> dict[str, str]:
        """Listed key -> the key the hub writes its record at, for keys that are a second
        record of a record the hub writes at another key of the same listing.

        Of several listed keys of one record, the one the hub writes (its applied row's
        target key) is compared, whichever the listing names first. That the target key is
        one the listing may name is known when both were read from the system as source
        keys, or when the listed key is one the hub was acknowledged (target keys, then);
        otherwise (a listing by source key of a system acknowledging other keys, or a
        target key not read back yet) the first-listed key is compared, as before."""
        candidates = {
            c.key: (c, held.target_key)
            for c in xrefs
            if c.key not in rows
            and (held := applied.get(c.master_id)) is not None
            and held.target_key is not None
            and held.target_key != c.key
        }
        if not candidates:
            return {}
        wanted = {target for _, target in candidates.values()}
        known = {c.key: c for c in xrefs if c.key in wanted}
        missing = [(self.sub.system, k) for k in wanted - set(known)]
        if missing:
            known.update((c.key, c) for c in uow.load_xrefs(self.sub.domain, missing))
        out: dict[str, str] = {}
        for key, (xref, target) in candidates.items():
            other = known.get(target)
            if other is None or other.master_id != xref.master_id:
                continue
            if other.digest or not xref.digest:
                out[key] = target
        return out

    def _own_change(
        self,
        entry: DriftEntry,
        own: list[FieldDiff],
        other: list[FieldDiff],
        unread: bool,
    ) -> tuple[DriftEntry, _Fix]:
        """A record that differs in fields the consumer is the source of: its own values
        (changed there and not read yet, or read and not taken), never pushed over; drift in
        its other fields is held back, since a re-delivery sends the whole record."""
        assert self.own is not None
        system = self.sub.system
        where = self.own.describe(own)
        fields = sorted({f for d in own for f in self.own.fields_at(d.field)})
        owned = ", ".join(f"{f} ({self._owned_by(f)})" for f in fields)
        rule = f"field ownership lets {system} write {owned}"
        if not other:
            if unread:
                note = (
                    f"changed at {system}, not read yet: {where}; {rule}, and the hub takes "
                    f"it when it next reads {system}: never pushed over"
                )
            else:
                note = (
                    f"{system}'s own value, read by the hub as it is: {where}; {rule}, and the "
                    "hub keeps another value (survivorship, a quality rule or a change held "
                    "for confirmation decided so): never pushed over"
                )
            bucket = Bucket.CHANGED_AT_SOURCE
            return DriftEntry(entry.key, bucket, entry.master_id, tuple(own), note), _Fix.NONE
        names = ", ".join(d.field for d in other)
        held = (
            f"not repaired: {names} {'differs' if len(other) == 1 else 'differ'} too, but "
            f"re-sending the whole record would write over {system}'s own {where}"
        )
        if unread:
            # Read, the change makes a version, and every version goes to a consumer that
            # is a source: that delivery sets the other fields as well.
            note = (
                f"{held}, changed there and not read yet ({rule}); the hub sends the record "
                f"again once it has read {system}"
            )
        else:
            note = (
                f"{held}, which the hub read and did not take ({rule}); correct {names} at {system}"
            )
        return DriftEntry(entry.key, entry.bucket, entry.master_id, entry.diffs, note), _Fix.HOLD

    def _owned_by(self, field: str) -> str:
        owners = self.owners.get(field)
        return f"owned by {', '.join(owners)}" if owners else "no owner"

    def _reference_keys(
        self, uow: UnitOfWork, states: Mapping[str, GoldenState]
    ) -> dict[str, dict[str, str]]:
        """The consumer's keys of records these reference, as deliveries put them in."""
        return referenced_keys(uow, self.sub, (attributes for _, attributes, _ in states.values()))

    def _refs(
        self, attributes: Mapping[str, Any], keys: Mapping[str, dict[str, str]]
    ) -> dict[str, dict[str, str]] | None:
        if not self.sub.key_refs:
            return None
        out = {}
        for name in self.sub.key_refs:
            target = attributes.get(name)
            if isinstance(target, str) and target in keys:
                out[name] = keys[target]
        return out

    def _selects(self, g: GoldenRecord, keys: Mapping[str, dict[str, str]]) -> bool:
        """Whether the subscription sends this record (a filter that cannot be evaluated on
        it is the record's error); ``keys`` are the consumer's keys of records it references,
        which a filter may read (`_keys.item.key`) as deliveries see them."""
        sub = self.sub
        try:
            view = sub.view(g.master_id, g.version, g.attributes, self._refs(g.attributes, keys))
            return sub.operation(view, False) is Operation.UPSERT
        except OutboundMappingFailed as exc:
            error = RecordError(g.master_id, exc.field, exc.rule, exc.message, g.master_id)
            self.report.fail(error)
            return False

    # --- the hub's side: expected records the listing did not name -------------------------
    def missing(self) -> None:
        """Every golden record the subscription selects that the listing lacked; with
        repair, each batch's are queued before the next batch is read."""
        options = self.options
        after = ""
        while True:
            # A transaction per batch: one held across the scan kept a snapshot open while
            # the repairs wrote, and the repairs waited for the whole scan.
            with self.store.unit_of_work(write=False) as uow:
                scan = uow.scan_golden(self.sub.domain, options.chunk, after)
                batch: list[GoldenRecord] = list(islice(scan, options.chunk))
                if not batch:
                    return
                found = self._missing(uow, batch)
            self._repair(found, {})
            options.advance("hub", len(batch))
            if len(batch) < options.chunk:
                return
            after = batch[-1].master_id

    def _missing(self, uow: UnitOfWork, batch: list[GoldenRecord]) -> list[str]:
        """Report the records of one batch the listing lacked; their master ids."""
        sub = self.sub
        unseen = [g for g in batch if g.master_id not in self.seen]
        refs = referenced_keys(uow, sub, (g.attributes for g in unseen))
        wanted = [g for g in unseen if self._selects(g, refs)]
        ids = [g.master_id for g in wanted]
        if not ids:
            return []
        keys = uow.consumer_keys(sub.system, sub.domain, ids)
        applied = uow.applied_for(sub.id, ids)
        gone = {
            g.master_id
            for g in wanted
            if (held := applied.get(g.master_id)) is not None
            and held.active
            and held.version >= g.version
        }
        firsts = self._first_deliveries(uow, [g for g in wanted if g.master_id not in gone])
        for g in wanted:
            held = applied.get(g.master_id)
            if g.master_id in gone:
                assert held is not None
                note = f"delivered as version {held.version}, gone from {sub.system}"
            else:
                note = _undelivered(g.version, held, firsts.get(g.master_id))
            key = keys.get(g.master_id, {}).get("key") or g.master_id
            self.report.add(DriftEntry(key, Bucket.MISSING, g.master_id, note=note))
        return ids

    def _first_deliveries(
        self, uow: UnitOfWork, records: list[GoldenRecord]
    ) -> dict[str, tuple[DeliveryStatus, str | None]]:
        """master id -> how the subscription first decided on the record's current version
        (status, operation), for those it has decided on."""
        if not records:
            return {}
        since = {g.master_id: g.version for g in records}
        events = uow.events_for(since, since)
        ids = {
            e.event_id: m for m, history in events.items() for e in history if e.version == since[m]
        }
        firsts = uow.first_deliveries(self.sub.id, ids) if ids else {}
        return {ids[event]: outcome for event, outcome in firsts.items()}

    def _repair(self, master_ids: list[str], deactivate: Mapping[str, Applied]) -> None:
        """Queue one batch's repairs now (never held for the end of the run), and say so."""
        if self.repair_id is None or not (master_ids or deactivate):
            return
        queued = queue_repairs(
            self.store, self.sub, master_ids, self.repair_id, self.options.clock, deactivate
        )
        self.queued += queued
        self.options.advance("repair", queued)


def _undelivered(
    version: int, held: Applied | None, first: tuple[DeliveryStatus, str | None] | None
) -> str:
    """Why the consumer lacks a record the subscription selects, as the hub's queue tells."""
    got = f"version {held.version}" if held else "nothing"
    if first is None:
        return f"not delivered yet: the hub has delivered {got}; version {version} is in its log"
    status, operation = first
    if status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return (
            f"not delivered yet: version {version} is {status.value}; the hub has delivered {got}"
        )
    if status is DeliveryStatus.DEAD:
        return (
            f"version {version} is dead (`mastersync exceptions list --kind dead_letter`); "
            f"the hub has delivered {got}"
        )
    if status is DeliveryStatus.SKIPPED:
        return (
            f"version {version} was skipped when it was delivered (the filter left it out "
            "then, or the consumer had it); `reconcile --repair` sends it"
        )
    if operation == "deactivate":
        return f"version {version} was delivered as a deactivation (the filter left it out then)"
    return f"delivered as version {version}, gone from the consumer"


def reconcile_target(
    store: Store,
    landscape: CompiledLandscape,
    reader: StateReader,
    subscription: Subscription,
    options: ReconcileOptions | None = None,
) -> Reconciliation:
    """Compare what a consumer holds with what the subscription would give it.

    Expected: the current golden records the subscription's filter selects, through its
    projection and outbound mapping, keyed by the consumer's own key (the cross-reference
    its acknowledgement left). Actual: the consumer's full listing. The listing is read a
    chunk at a time and never held; the hub keeps only the master ids it named. With
    ``repair``, missing and mismatched records are queued again (the current version), a
    chunk or batch at a time as they are found (progress phase "repair": re-deliveries
    queued); extra records are reported, never deleted. A consumer that is also a source
    of the domain keeps what it changed in fields it may write: reported as
    ``changed_at_source``, never pushed over; a record held exactly as the hub read it
    before its last delivery there is that delivery lost, and ``mismatched``. Of several
    listed keys of one record, the one the hub writes it at is compared; the row of a
    record merged away (whose key now names the survivor) is that record's.
    """
    options = options or ReconcileOptions()
    sub = subscription
    run = ReconciliationRun(
        options.ids("rcn"), sub.system, sub.domain, Role.TARGET, options.clock(), sub.id
    )
    work = _TargetRun(store, landscape, sub, options, reader)
    for chunk in chunks(reader.read_state(sub.domain), options.chunk):
        work.compare(chunk)
        options.advance("listed", len(chunk))
    work.missing()
    result = TargetReconciliation(run, work.report, held_back=work.held_back)
    if work.repair_id is not None:
        run.repair = {"replay": work.repair_id, "queued": work.queued}
        result.notes.append(
            f"queued {work.queued} re-deliveries as replay {work.repair_id}; "
            "`mastersync run` sends them"
        )
        if work.held_back:
            run.repair["held_back"] = work.held_back
            result.notes.append(
                f"{work.held_back} mismatched record(s) not repaired: re-sending them would "
                f"write over what {sub.system} changed in fields it is the source of"
            )
    if work.report.counts[Bucket.EXTRA]:
        result.notes.append("extra records are reported only: nothing is deleted")
    if work.report.counts[Bucket.CHANGED_AT_SOURCE]:
        result.notes.append(
            f"{work.report.counts[Bucket.CHANGED_AT_SOURCE]} record(s) changed at {sub.system} "
            "in fields it is the source of: the hub reads them from there "
            f"(`mastersync reconcile --system {sub.system} --domain {sub.domain} "
            "--role source --repair` reads them now) and never pushes over them"
        )
    return finish(store, result, options.clock)
