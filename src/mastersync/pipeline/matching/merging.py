"""Merge and unmerge golden records: one transaction each, with events, lineage and history."""

from __future__ import annotations

from collections.abc import Callable

from mastersync.domain.consolidate import (
    Consolidation,
    MergeContext,
    MergeRefused,
    plan_merge,
    plan_split,
    plan_unmerge,
)
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.ledger import KeyChange
from mastersync.domain.matching.records import (
    DecisionStatus,
    MatchDecision,
    MergeRecord,
    MergeStatus,
    pair_key,
)
from mastersync.domain.records import LineageEntry
from mastersync.pipeline.ids import new_id, new_trace_id, utc_now
from mastersync.pipeline.matching.models import compiled
from mastersync.ports.matching import MatchChanges
from mastersync.ports.store import ChangeSet, Store, UnitOfWork


def _load(
    uow: UnitOfWork, ids: list[str]
) -> tuple[dict[str, GoldenRecord], dict[str, list[Contribution]]]:
    records, members = uow.load_golden(ids)
    found = {g.master_id: g for g in records}
    for master_id in ids:
        if master_id not in found:
            raise MergeRefused(f"no golden record {master_id}")
    by_master: dict[str, list[Contribution]] = {m: [] for m in ids}
    for c in members:
        by_master.setdefault(c.master_id, []).append(c)
    return found, by_master


def _write(
    uow: UnitOfWork,
    landscape: CompiledLandscape,
    plan: Consolidation,
    stage: str,
    actor: str,
    ctx: MergeContext,
    detail: dict[str, object],
) -> None:
    domain = plan.golden[0].domain
    _index_free(uow, plan)
    held: dict[str, list[str]] = {g.master_id: [] for g in plan.golden}
    for h in plan.held:
        held[h.master_id].append(h.field)
    lineage = [
        LineageEntry(
            ctx.trace_id,
            stage,
            "accepted",
            ctx.now,
            domain,
            g.master_id,
            g.version,
            detail={
                **detail,
                "by": actor,
                "changed": sorted(e.changes),
                **({"held": held[g.master_id]} if held[g.master_id] else {}),
            },
        )
        for g, e in zip(plan.golden, plan.events, strict=True)
    ]
    uow.write(
        ChangeSet(
            contributions=plan.contributions,
            golden=plan.golden,
            keys=plan.keys,
            events=plan.events,
            lineage=lineage,
            # The audit log records who merged, and that it was a merge.
            actor=actor,
            channel=stage,
            # Pending changes of the source records that moved go with them.
            moved_sources=[(c.domain, c.system, c.key, c.master_id) for c in plan.contributions],
            # Guarded changes the regrouping would make wait for a confirmation, in this
            # transaction; the merge's actor asks for them (and so may not confirm them).
            holds=[
                PendingChange(
                    h.master_id,
                    domain,
                    h.field,
                    h.origin["system"],
                    h.origin.get("key", ""),
                    h.proposed,
                    h.current,
                    actor,
                    ctx.now,
                    ctx.trace_id,
                )
                # No source may write the field: nothing to confirm, the value stays.
                for h in plan.held
                if h.origin.get("system")
            ],
        )
    )
    config = landscape.policies[domain].matching
    if config is not None:
        keys = compiled(config)
        changes = MatchChanges(
            keys={
                g.master_id: (domain, [] if g.merged_into else keys.block_keys(g.attributes))
                for g in plan.golden
            }
        )
        uow.write_matching(changes)


def _index_free(uow: UnitOfWork, plan: Consolidation) -> None:
    """Index each key the plan's records want (``plan.wanted``) that no record holds yet."""
    if not any(plan.wanted.values()):
        return
    domain = plan.golden[0].domain
    wanted_keys = {k for keys in plan.wanted.values() for k in keys}
    taken = set(uow.load_natural_keys(domain, wanted_keys))
    for master_id, wanted in plan.wanted.items():
        free = sorted(wanted - taken)
        plan.keys += [KeyChange(domain, n, v, master_id, True) for n, v in free]
        taken.update(free)


def merge_records(
    store: Store,
    landscape: CompiledLandscape,
    survivor_id: str,
    loser_id: str,
    *,
    actor: str,
    reason: str | None = None,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> MergeRecord:
    """Merge ``loser`` into ``survivor``; the merge as recorded (its id undoes it)."""
    with store.unit_of_work() as uow:
        merge = merge_in(
            uow, landscape, survivor_id, loser_id, actor=actor, reason=reason, now=clock(), ids=ids
        )
        uow.commit()
    return merge


def merge_in(
    uow: UnitOfWork,
    landscape: CompiledLandscape,
    survivor_id: str,
    loser_id: str,
    *,
    actor: str,
    reason: str | None,
    now: str,
    ids: Callable[[str], str] = new_id,
) -> MergeRecord:
    """The merge inside a caller's unit of work (review accept, dedupe --merge)."""
    if survivor_id == loser_id:
        raise MergeRefused(f"cannot merge {survivor_id} into itself")
    golden, members = _load(uow, [survivor_id, loser_id])
    survivor, loser = golden[survivor_id], golden[loser_id]
    policy = landscape.policies[survivor.domain]
    keys = [(n, v) for _, n, v, _ in uow.natural_keys_of([loser_id])]
    ctx = MergeContext(now, new_trace_id(), ids, "merge")
    plan = plan_merge(survivor, loser, members[survivor_id], members[loser_id], keys, policy, ctx)
    merge = MergeRecord(
        survivor.domain, survivor_id, loser_id, actor, ctx.trace_id, now, plan.snapshot, reason
    )
    merge_id = uow.save_merge(merge)
    for event in plan.events:
        event.causation_id = f"merge:{merge_id}"
        event.source["merge"] = str(merge_id)
    _write(uow, landscape, plan, "merge", actor, ctx, {"merge": merge_id, "reason": reason})
    return merge


def unmerge_records(
    store: Store,
    landscape: CompiledLandscape,
    merge_id: int,
    *,
    actor: str,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> MergeRecord:
    """Undo a merge: the loser gets its source records and natural keys back."""
    with store.unit_of_work() as uow:
        merge = uow.merge_record(merge_id)
        if merge is None:
            raise MergeRefused(f"no merge {merge_id}")
        if merge.status is MergeStatus.UNMERGED:
            raise MergeRefused(f"merge {merge_id} was undone already, at {merge.unmerged_at}")
        golden, members = _load(uow, [merge.survivor_id, merge.loser_id])
        survivor, loser = golden[merge.survivor_id], golden[merge.loser_id]
        policy = landscape.policies[survivor.domain]
        keys = [(n, v) for _, n, v, _ in uow.natural_keys_of([survivor.master_id])]
        now = clock()
        ctx = MergeContext(now, new_trace_id(), ids, f"unmerge:{merge_id}")
        plan = plan_unmerge(
            merge.snapshot, survivor, loser, members[survivor.master_id], keys, policy, ctx
        )
        for event in plan.events:
            event.source["merge"] = str(merge_id)
        _write(uow, landscape, plan, "unmerge", actor, ctx, {"merge": merge_id})
        uow.finish_unmerge(merge_id, now)
        # A steward's unmerge says the two differ: kept as a rejection of the pair, so
        # dedupe does not merge them again and review does not ask again.
        pair = pair_key(merge.survivor_id, merge.loser_id)
        decision = uow.decisions_between(merge.domain, [pair]).get(pair)
        if decision is None:
            decision = MatchDecision(
                merge.domain,
                *pair,
                0.0,
                0.0,
                "distinct",
                DecisionStatus.REJECTED,
                "unmerge",
                {"comparisons": []},
                now,
                trace_id=ctx.trace_id,
            )
        decision.status, decision.decided_by, decision.decided_at = (
            DecisionStatus.REJECTED,
            actor,
            now,
        )
        decision.note = "unmerged"
        uow.write_matching(MatchChanges(decisions=[decision]))
        uow.commit()
    merge.status, merge.unmerged_at = MergeStatus.UNMERGED, now
    return merge


def split_record(
    store: Store,
    landscape: CompiledLandscape,
    domain: str,
    system: str,
    key: str,
    *,
    actor: str,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> str:
    """Move one source record out of its golden record into a new one; the new master id."""
    with store.unit_of_work() as uow:
        master = uow.find_master(domain, system, key)
        if master is None:
            raise MergeRefused(f"no {domain} source record {system}:{key}")
        golden, members = _load(uow, [master])
        keys = [(n, v) for _, n, v, _ in uow.natural_keys_of([master])]
        ctx = MergeContext(clock(), new_trace_id(), ids, f"split:{system}:{key}")
        policy = landscape.policies[domain]
        plan = plan_split(golden[master], members[master], (system, key), keys, policy, ctx)
        _write(uow, landscape, plan, "split", actor, ctx, {"system": system, "key": key})
        uow.commit()
    return plan.golden[1].master_id
