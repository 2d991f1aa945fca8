"""Remerge: recompute a domain's golden records from their source records under the
landscape as it is now, a page of records per transaction.

After ownership or survivorship changes in the landscape, a golden record changed only
when one of its sources sent again. Remerging applies the rules to every record at once:
changed records get a version, an event for subscribers, lineage and an audit entry;
guarded fields wait for confirmation; natural keys the records now hold are indexed, and
changed records are re-keyed in the matching candidate index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from mastersync.domain.consolidate import MergeContext
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.identity import natural_keys_of
from mastersync.domain.landscape.policy import CompiledLandscape, DomainPolicy
from mastersync.domain.ledger import KeyChange
from mastersync.domain.records import LineageEntry
from mastersync.domain.remerge import Remerge, plan_remerge
from mastersync.pipeline.ids import new_id, new_trace_id, utc_now
from mastersync.pipeline.matching.models import compiled
from mastersync.ports.matching import MatchChanges
from mastersync.ports.store import ChangeSet, ConcurrencyError, Store, UnitOfWork


@dataclass
class RemergeReport:
    """What a remerge changed (or, dry, would change)."""

    domain: str
    examined: int = 0
    # Golden records given a new version.
    changed: int = 0
    # field -> golden records whose value of it changed.
    fields: Counter[str] = field(default_factory=Counter)
    # Source records whose stored values were re-spelt by the canonical model.
    renewed: int = 0
    # Guarded changes now waiting for a confirmation.
    held: int = 0
    keys_added: int = 0
    # Keys records gave up (no longer their value, nor one their source records send).
    keys_removed: int = 0
    # Keys moved to the record whose golden value they are, from one that had them only
    # from a source record (as ingest does): "name value: from -> to".
    keys_moved: list[str] = field(default_factory=list)
    # Natural keys a record now holds that already identify another record.
    key_conflicts: list[str] = field(default_factory=list)
    # Guarded fields no source may write now: kept as they are ("master id: field").
    unwritable: list[str] = field(default_factory=list)
    # Records left as they were: their recomputation would newly fail a quality rule.
    refused: int = 0
    # "master id: field [rule] message" of the first refusals.
    refusals: list[str] = field(default_factory=list)

    def add(self, other: RemergeReport) -> None:
        """Count a page's figures in."""
        self.changed += other.changed
        self.fields.update(other.fields)
        self.renewed += other.renewed
        self.held += other.held
        self.keys_added += other.keys_added
        self.keys_removed += other.keys_removed
        self.keys_moved += other.keys_moved
        self.key_conflicts += other.key_conflicts
        self.unwritable += other.unwritable
        self.refused += other.refused
        self.refusals += other.refusals[: max(0, SAMPLES - len(self.refusals))]


# Tries per page when a concurrent writer got there first.
ATTEMPTS = 5
# Refusals named in a report (the rest are counted).
SAMPLES = 20


def remerge(
    store: Store,
    landscape: CompiledLandscape,
    domain: str,
    *,
    actor: str,
    dry_run: bool = False,
    page: int = 500,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> RemergeReport:
    """Recompute every live golden record of ``domain``; each page commits on its own (a
    remerge stopped half-way is run again: records already recomputed change no more)."""
    if domain not in landscape.policies:
        known = ", ".join(sorted(landscape.policies))
        raise ValueError(f"no domain {domain!r} in the landscape (it has {known})")
    report = RemergeReport(domain)
    # The index as the run has changed it: (name, value) -> master id, or None once given
    # up. A dry run writes nothing, and later pages must see what earlier ones would do.
    run: dict[tuple[str, str], str | None] = {}
    after = ""
    while True:
        for attempt in range(1, ATTEMPTS + 1):
            done = RemergeReport(domain)
            # A real run's earlier pages are in the store, which concurrent ingest moves on.
            index = _Index(run if dry_run else {})
            try:
                with store.unit_of_work(write=not dry_run) as uow:
                    found = islice(uow.scan_golden(domain, page, after), page)
                    masters = [g.master_id for g in found]
                    if not masters:
                        return report
                    changes = ChangeSet(actor=actor, channel="remerge")
                    _page(uow, landscape, domain, masters, changes, done, index, clock, ids)
                    if not dry_run and changes:
                        uow.write(changes)
                        _reindex(uow, landscape.policies[domain], changes)
                        uow.commit()
                break
            except ConcurrencyError:
                # An ingest indexed a key this page adds, or changed a record meanwhile:
                # the page is recomputed on what it wrote.
                if attempt == ATTEMPTS:
                    raise
        report.add(done)
        if dry_run:
            run.update(index.changed)
        after = masters[-1]
        report.examined += len(masters)
        if progress is not None:
            progress(len(masters))


def _reindex(uow: UnitOfWork, policy: DomainPolicy, changes: ChangeSet) -> None:
    """Re-key the recomputed golden records in the candidate index, in the page's
    transaction: their blocking keys follow their new values, as after ingest or a merge."""
    if policy.matching is None or not changes.golden:
        return
    keys = compiled(policy.matching)
    uow.write_matching(
        MatchChanges(
            keys={g.master_id: (g.domain, keys.block_keys(g.attributes)) for g in changes.golden}
        )
    )


@dataclass
class _Index:
    """The natural-key index as a page sees it: the store's, with what the run changed."""

    run: dict[tuple[str, str], str | None]
    # What this page changes (taken into ``run`` once it is done).
    changed: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def holder(self, key: tuple[str, str], stored: str | None) -> str | None:
        """Who the key identifies, given who the store says."""
        for layer in (self.changed, self.run):
            if key in layer:
                return layer[key]
        return stored


def _page(
    uow: UnitOfWork,
    landscape: CompiledLandscape,
    domain: str,
    masters: list[str],
    changes: ChangeSet,
    report: RemergeReport,
    index: _Index,
    clock: Callable[[], str],
    ids: Callable[[str], str],
) -> None:
    policy = landscape.policies[domain]
    records, members = uow.load_golden(masters)
    by_master: dict[str, list[Contribution]] = {m: [] for m in masters}
    for c in members:
        by_master.setdefault(c.master_id, []).append(c)
    # (name, value) -> [(master id, whether it is the record's golden value)]
    wanted: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    given_up: list[tuple[str, str, str]] = []
    for golden in sorted(records, key=lambda g: g.master_id):
        own = by_master[golden.master_id]
        if golden.merged_into or not own:
            # Merged into another since the page was listed (it was not locked then).
            continue
        ctx = MergeContext(clock(), new_trace_id(), ids, "remerge")
        plan = plan_remerge(golden, own, policy, ctx)
        _take(plan, golden, changes, report, ctx)
        before = natural_keys_of(policy, golden.attributes, own)
        # A refused record is left as it is: its keys as they are, indexed if they are not.
        current = plan.golden.attributes if plan.golden else golden.attributes
        now = before if plan.refused else natural_keys_of(policy, current, plan.members)
        for nk in policy.natural_keys:
            values = set(now.get(nk.name, ()))
            own_value = nk.value(current)
            for value in values:
                holder = (golden.master_id, own_value == value)
                wanted.setdefault((nk.name, value), []).append(holder)
            given_up += [
                (nk.name, old, golden.master_id)
                for old in sorted(set(before.get(nk.name, ())) - values)
            ]
    _index(uow, policy, masters, wanted, given_up, changes, report, index)


def _take(
    plan: Remerge,
    golden: GoldenRecord,
    changes: ChangeSet,
    report: RemergeReport,
    ctx: MergeContext,
) -> None:
    """Add one record's plan to the page's change set."""
    if plan.refused:
        report.refused += 1
        if len(report.refusals) < SAMPLES:
            report.refusals += [
                f"{golden.master_id}: {p.field} [{p.rule}] {p.message}" for p in plan.refused
            ]
        return
    changes.contributions.extend(plan.renewed)
    report.renewed += len(plan.renewed)
    if plan.golden is not None:
        changes.golden.append(plan.golden)
    if plan.event is not None:
        changes.events.append(plan.event)
        report.changed += 1
        report.fields.update(list(plan.event.changes))
        changes.lineage.append(
            LineageEntry(
                ctx.trace_id,
                "remerge",
                "accepted",
                ctx.now,
                golden.domain,
                golden.master_id,
                plan.event.version,
                detail={"by": changes.actor, "changed": sorted(plan.event.changes)},
            )
        )
    for name, proposed, origin in plan.unconfirmed:
        if not origin.get("system"):
            # No source may write the field now: clearing it is no change to confirm (a
            # pending change names the source that asks for it). It keeps its value.
            report.unwritable.append(f"{golden.master_id}: {name}")
            continue
        changes.holds.append(
            PendingChange(
                golden.master_id,
                golden.domain,
                name,
                origin.get("system", ""),
                origin.get("key", ""),
                proposed,
                golden.attributes.get(name),
                changes.actor,
                ctx.now,
                ctx.trace_id,
            )
        )
        report.held += 1


def _index(
    uow: UnitOfWork,
    policy: DomainPolicy,
    masters: list[str],
    wanted: dict[tuple[str, str], list[tuple[str, bool]]],
    given_up: list[tuple[str, str, str]],
    changes: ChangeSet,
    report: RemergeReport,
    index: _Index,
) -> None:
    """Bring the index in line with the keys the records hold now, as ingest would.

    A key a record gave up no longer identifies it. A key nothing indexes goes to the one
    record holding it, or to the one whose golden value it is; one indexed to a record that
    has it only from a source record moves to the record whose golden value it is (with a
    note, as ingest warns). Keys indexed otherwise stay: a merged-in record's keys point at
    its survivor, though the survivor's values differ."""
    domain = policy.spec.name
    stored = {(n, v): m for _, n, v, m in uow.natural_keys_of(masters)}
    for name, value, master in given_up:
        key = (name, value)
        if index.holder(key, stored.get(key)) == master:
            changes.keys.append(KeyChange(domain, name, value, master, False))
            index.changed[key] = None
            report.keys_removed += 1
    elsewhere = [k for k in wanted if k not in stored]
    stored.update(uow.load_natural_keys(domain, elsewhere) if elsewhere else {})
    for key, holders in sorted(wanted.items()):
        indexed = index.holder(key, stored.get(key))
        masters_here = sorted({m for m, _ in holders})
        golden_here = sorted({m for m, is_golden in holders if is_golden})
        if indexed is not None:
            others = [m for m in masters_here if m != indexed]
            if not others:
                continue
            rivals = [m for m in golden_here if m != indexed]
            if len(rivals) == 1 and not (
                indexed in golden_here
                if indexed in masters_here
                else _golden_value(uow, policy, key, indexed)
            ):
                # Indexed to a record that has it only from a source record: it moves to
                # the one whose golden value it is, as in ingest.
                _move(changes, report, index, domain, key, indexed, rivals[0])
                rest = [m for m in others if m != rivals[0]]
                if rest:
                    _conflict(report, key, [rivals[0], *rest])
            else:
                _conflict(report, key, [indexed, *others])
            continue
        # Nothing indexes it: the record whose golden value it is takes it, else the one
        # record that has it from a source record.
        chosen = golden_here or masters_here
        if len(chosen) > 1:
            _conflict(report, key, masters_here)
            continue
        changes.keys.append(KeyChange(domain, key[0], key[1], chosen[0], True))
        index.changed[key] = chosen[0]
        report.keys_added += 1
        if len(masters_here) > 1:
            _conflict(report, key, [chosen[0], *(m for m in masters_here if m != chosen[0])])


def _golden_value(uow: UnitOfWork, policy: DomainPolicy, key: tuple[str, str], master: str) -> bool:
    """Whether the key is ``master``'s golden value (a record merged away counts as one:
    its survivor's keys are not moved)."""
    golden = uow.golden(master)
    if golden is None or golden.merged_into:
        return True
    nk = next(k for k in policy.natural_keys if k.name == key[0])
    return nk.value(golden.attributes) == key[1]


def _move(
    changes: ChangeSet,
    report: RemergeReport,
    index: _Index,
    domain: str,
    key: tuple[str, str],
    source: str,
    target: str,
) -> None:
    changes.keys.append(KeyChange(domain, key[0], key[1], source, False))
    changes.keys.append(KeyChange(domain, key[0], key[1], target, True))
    index.changed[key] = target
    report.keys_moved.append(
        f"{key[0]} {key[1]}: {source} -> {target} (its golden value; {source} has it only "
        "from a source record: `mastersync merge` them if they are one)"
    )


def _conflict(report: RemergeReport, key: tuple[str, str], masters: list[str]) -> None:
    report.key_conflicts.append(
        f"{key[0]} {key[1]} is held by {', '.join(masters)} (indexed to one at most; "
        "`mastersync merge` them if they are one)"
    )
