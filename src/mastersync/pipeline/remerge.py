"""Remerge: recompute a domain's golden records from their source records under the
landscape as it is now, a page of records per transaction.

After ownership or survivorship changes in the landscape, a golden record changed only
when one of its sources sent again. Remerging applies the rules to every record at once:
changed records get a version, an event for subscribers, lineage and an audit entry;
guarded fields wait for confirmation; natural keys the records now hold are indexed.
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
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.ledger import KeyChange
from mastersync.domain.records import LineageEntry
from mastersync.domain.remerge import Remerge, plan_remerge
from mastersync.pipeline.ids import new_id, new_trace_id, utc_now
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
    # Natural keys a record now holds that already identify another record.
    key_conflicts: list[str] = field(default_factory=list)
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
        self.key_conflicts += other.key_conflicts
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
    after = ""
    while True:
        for attempt in range(1, ATTEMPTS + 1):
            done = RemergeReport(domain)
            try:
                with store.unit_of_work(write=not dry_run) as uow:
                    found = islice(uow.scan_golden(domain, page, after), page)
                    masters = [g.master_id for g in found]
                    if not masters:
                        return report
                    changes = ChangeSet(actor=actor, channel="remerge")
                    _page(uow, landscape, domain, masters, changes, done, clock, ids)
                    if not dry_run and changes:
                        uow.write(changes)
                        uow.commit()
                break
            except ConcurrencyError:
                # An ingest indexed a key this page adds, or changed a record meanwhile:
                # the page is recomputed on what it wrote.
                if attempt == ATTEMPTS:
                    raise
        report.add(done)
        after = masters[-1]
        report.examined += len(masters)
        if progress is not None:
            progress(len(masters))


def _page(
    uow: UnitOfWork,
    landscape: CompiledLandscape,
    domain: str,
    masters: list[str],
    changes: ChangeSet,
    report: RemergeReport,
    clock: Callable[[], str],
    ids: Callable[[str], str],
) -> None:
    policy = landscape.policies[domain]
    records, members = uow.load_golden(masters)
    by_master: dict[str, list[Contribution]] = {m: [] for m in masters}
    for c in members:
        by_master.setdefault(c.master_id, []).append(c)
    wanted: dict[tuple[str, str], list[str]] = {}
    for golden in sorted(records, key=lambda g: g.master_id):
        ctx = MergeContext(clock(), new_trace_id(), ids, "remerge")
        plan = plan_remerge(golden, by_master[golden.master_id], policy, ctx)
        _take(plan, golden, changes, report, ctx)
        current = plan.golden.attributes if plan.golden else golden.attributes
        for name, value in natural_keys_of(policy, current, plan.members).items():
            wanted.setdefault((name, value), []).append(golden.master_id)
    _index(uow, domain, masters, wanted, changes, report)


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
    domain: str,
    masters: list[str],
    wanted: dict[tuple[str, str], list[str]],
    changes: ChangeSet,
    report: RemergeReport,
) -> None:
    """Index the natural keys the records hold now that nothing indexes yet. Keys indexed
    are never taken away here: a merged-in record's keys point at its survivor, though
    the survivor's values differ."""
    indexed = {(n, v): m for _, n, v, m in uow.natural_keys_of(masters)}
    missing: dict[tuple[str, str], list[str]] = {}
    for key, holders in sorted(wanted.items()):
        if key not in indexed:
            missing[key] = holders
        elif others := sorted(set(holders) - {indexed[key]}):
            _conflict(report, key, [indexed[key], *others])
    if not missing:
        return
    taken = uow.load_natural_keys(domain, missing.keys())
    for (name, value), holders in missing.items():
        found = sorted({taken.get((name, value), holders[0]), *holders})
        if len(found) > 1:
            _conflict(report, (name, value), found)
            continue
        changes.keys.append(KeyChange(domain, name, value, holders[0], True))
        report.keys_added += 1


def _conflict(report: RemergeReport, key: tuple[str, str], masters: list[str]) -> None:
    report.key_conflicts.append(
        f"{key[0]} {key[1]} is held by {', '.join(masters)} (indexed to one at most; "
        "`mastersync merge` them if they are one)"
    )
