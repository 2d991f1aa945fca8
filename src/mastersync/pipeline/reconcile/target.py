"""Reconcile a consumer system: the hub's projection of its golden records versus what the
system holds, compared in the system's own (outbound) shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.delivery import REPAIR_PREFIX, Applied, DeliveryStatus
from mastersync.domain.golden import GoldenRecord
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.mapping.spec import ValueOp
from mastersync.domain.reconciliation import (
    Bucket,
    DriftEntry,
    DriftReport,
    Normalisation,
    ReconciliationRun,
    RecordError,
    Role,
    classify,
)
from mastersync.domain.subscriptions import Operation, OutboundMappingFailed, Subscription
from mastersync.pipeline.distribution.deliverer import referenced_keys
from mastersync.pipeline.reconcile.common import (
    ReconcileOptions,
    Reconciliation,
    chunks,
    finish,
)
from mastersync.pipeline.reconcile.repair import queue_repairs
from mastersync.ports.connector import StateReader
from mastersync.ports.store import Store, UnitOfWork

GoldenState = tuple[int, dict[str, Any], str | None]


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


class _TargetRun:
    """One reconciliation of one subscription's consumer."""

    def __init__(
        self,
        store: Store,
        landscape: CompiledLandscape,
        sub: Subscription,
        options: ReconcileOptions,
    ) -> None:
        self.store, self.sub, self.options = store, sub, options
        self.fields = written_fields(landscape, sub)
        self.norm = normalisation(landscape, sub)
        self.report = DriftReport(options.examples)
        # Master ids the listing named: what is left of the expected records is missing.
        self.seen: set[str] = set()
        self.repair_id = options.ids(REPAIR_PREFIX) if options.repair else None
        self.queued = 0

    # --- the listing, a chunk at a time ---------------------------------------------------
    def compare(self, chunk: list[tuple[str, Any]]) -> None:
        """Classify one chunk of the system's listing; queue repairs of its mismatches."""
        sub = self.sub
        with self.store.unit_of_work(write=False) as uow:
            xrefs = uow.load_xrefs(sub.domain, [(sub.system, str(k)) for k, _ in chunk])
            masters = {c.key: c.master_id for c in xrefs}
            # Keys the hub read from this system as a source (an acknowledgement alone
            # leaves no digest): the system's own records.
            sourced = {c.key for c in xrefs if c.digest}
            ids = set(masters.values())
            states = uow.golden_states(ids)
            applied = uow.applied_for(sub.id, ids)
            keys = self._reference_keys(uow, states)
        repairs = []
        for key, native in chunk:
            entry = self._classify(str(key), native, masters, states, applied, keys)
            if entry is not None and entry.bucket is Bucket.EXTRA and str(key) in sourced:
                entry = DriftEntry(entry.key, Bucket.SOURCED, entry.master_id, note=entry.note)
            if entry is None:
                continue
            self.report.add(entry)
            if entry.bucket is Bucket.MISMATCHED and entry.master_id is not None:
                repairs.append(entry.master_id)
        self._repair(repairs)

    def _classify(
        self,
        key: str,
        native: Any,
        masters: Mapping[str, str],
        states: Mapping[str, GoldenState],
        applied: Mapping[str, Applied],
        keys: Mapping[str, dict[str, str]],
    ) -> DriftEntry | None:
        sub = self.sub
        master = masters.get(key)
        if not isinstance(native, Mapping):
            self.report.fail(
                RecordError(
                    key, None, "record", f"{sub.system} listed a {type(native).__name__}", master
                )
            )
            if master is not None:
                # Held there, if unreadable: not missing as well (a repair would have sent
                # the record over whatever the consumer keeps at that key).
                self.seen.add(master)
            return None
        if master is None:
            return DriftEntry(key, Bucket.EXTRA, note="unknown to the hub: no cross-reference")
        if master in self.seen:
            return DriftEntry(key, Bucket.EXTRA, master, note="a second record of the same master")
        self.seen.add(master)
        state = states.get(master)
        if state is None:
            return DriftEntry(key, Bucket.EXTRA, master, note="no such golden record")
        version, attributes, _ = state
        view = sub.view(master, version, attributes, self._refs(attributes, keys))
        try:
            operation = sub.operation(view, False)
        except OutboundMappingFailed as exc:  # a filter that cannot be evaluated on it
            self.report.fail(RecordError(key, exc.field, exc.rule, exc.message, master))
            return None
        if operation is not Operation.UPSERT:
            held = applied.get(master)
            if held is not None and not held.active:
                return DriftEntry(key, Bucket.RETIRED, master)
            why = (
                f"merged into {attributes['_merged_into']}"
                if attributes.get("_merged_into")
                else "the subscription's filter leaves it out"
            )
            return DriftEntry(key, Bucket.EXTRA, master, note=why)
        try:
            expected = sub.payload(view)
        except OutboundMappingFailed as exc:
            self.report.fail(RecordError(key, exc.field, exc.rule, exc.message, master))
            return None
        entry = classify(
            key, expected, native, master_id=master, fields=self.fields, norm=self.norm
        )
        held = applied.get(master)
        if entry.bucket is Bucket.MISMATCHED and (held is None or held.version < version):
            got = f"version {held.version}" if held else "nothing"
            entry = DriftEntry(
                key,
                entry.bucket,
                master,
                entry.diffs,
                f"the hub has delivered {got} of version {version} so far",
            )
        return entry

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
        """Every golden record the subscription selects that the listing lacked."""
        sub, options = self.sub, self.options
        found: list[str] = []
        with self.store.unit_of_work(write=False) as uow:
            for batch in chunks(uow.scan_golden(sub.domain, options.chunk), options.chunk):
                unseen = [g for g in batch if g.master_id not in self.seen]
                refs = referenced_keys(uow, sub, (g.attributes for g in unseen))
                wanted = [g for g in unseen if self._selects(g, refs)]
                ids = [g.master_id for g in wanted]
                keys = uow.consumer_keys(sub.system, sub.domain, ids) if ids else {}
                applied = uow.applied_for(sub.id, ids) if ids else {}
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
                found.extend(ids)
                options.advance("hub", len(batch))
        self._repair(found)

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

    def _repair(self, master_ids: list[str]) -> None:
        if self.repair_id is None or not master_ids:
            return
        self.queued += queue_repairs(
            self.store, self.sub, master_ids, self.repair_id, self.options.clock
        )


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
    ``repair``, missing and mismatched records are queued again (the current version);
    extra records are reported, never deleted.
    """
    options = options or ReconcileOptions()
    sub = subscription
    run = ReconciliationRun(
        options.ids("rcn"), sub.system, sub.domain, Role.TARGET, options.clock(), sub.id
    )
    work = _TargetRun(store, landscape, sub, options)
    for chunk in chunks(reader.read_state(sub.domain), options.chunk):
        work.compare(chunk)
        options.advance("listed", len(chunk))
    work.missing()
    result = Reconciliation(run, work.report)
    if work.repair_id is not None:
        run.repair = {"replay": work.repair_id, "queued": work.queued}
        result.notes.append(
            f"queued {work.queued} re-deliveries as replay {work.repair_id}; "
            "`mastersync run` sends them"
        )
    if work.report.counts[Bucket.EXTRA]:
        result.notes.append("extra records are reported only: nothing is deleted")
    return finish(store, result, options.clock)
