"""Merging two golden records into one, and undoing it. Pure: the pipeline loads and writes.

Both directions recompute the golden fields from the full set of contributions under
ownership and survivorship, so the outcome depends on which source records a golden record
holds, never on the order in which merges happened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.identity import key_pairs, natural_keys_of
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import KeyChange
from mastersync.domain.merge import merge

# The change a merged (or unmerged) record's event carries, and the state field it becomes.
MERGED_INTO = "_merged_into"


class MergeRefused(ValueError):
    """The records cannot be merged or unmerged as asked (named in the message)."""


@dataclass(slots=True)
class MergeContext:
    """Facts from outside the core."""

    now: str
    trace_id: str
    new_id: Callable[[str], str]
    # What the events name as their cause ("merge:12", "review:40").
    causation: str


@dataclass(slots=True)
class Consolidation:
    """Everything a merge or unmerge writes."""

    golden: list[GoldenRecord]
    contributions: list[Contribution]
    keys: list[KeyChange]
    events: list[ChangeEvent]
    # What an unmerge needs: the loser's source records and natural keys, and the versions.
    snapshot: dict[str, Any] = field(default_factory=dict)


def recompute(
    golden: GoldenRecord, members: Sequence[Contribution], policy: DomainPolicy
) -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """(attributes, provenance, changes) of ``golden`` recomputed from ``members``."""
    touched = set(policy.fields) | set(golden.attributes)
    if not members:
        changes = {k: {"before": v, "after": None} for k, v in sorted(golden.attributes.items())}
        return {}, {}, changes
    result = merge(golden.attributes, golden.provenance, list(members), touched, policy.fields)
    return result.attributes, result.provenance, result.changes


def quality_of(policy: DomainPolicy, attributes: dict[str, Any]) -> float:
    """Share of the domain's quality rules the attributes pass."""
    rules = [*policy.record_rules, *policy.golden_rules]
    if not rules:
        return 1.0
    failed = sum(1 for r in rules if r.evaluate(attributes))
    return round(1 - failed / len(rules), 4)


def _next(
    golden: GoldenRecord,
    policy: DomainPolicy,
    members: Sequence[Contribution],
    ctx: MergeContext,
    merged_into: str | None,
) -> tuple[GoldenRecord, dict[str, dict[str, Any]]]:
    attributes, provenance, changes = recompute(golden, members, policy)
    updated = GoldenRecord(
        golden.master_id,
        golden.domain,
        golden.version + 1,
        attributes,
        provenance,
        created_at=golden.created_at,
        updated_at=ctx.now,
        quality=quality_of(policy, attributes),
        trace_id=ctx.trace_id,
        merged_into=merged_into,
    )
    if merged_into != golden.merged_into:
        # A meta field ("_" first): delivery folds it into the state it sends, which tells
        # consumers to deactivate a merged record, and payloads leave it out.
        moved = {"before": golden.merged_into, "after": merged_into}
        changes = {**changes, MERGED_INTO: moved}
    return updated, changes


def _event(
    g: GoldenRecord,
    kind: str,
    changes: dict[str, dict[str, Any]],
    policy: DomainPolicy,
    ctx: MergeContext,
    source: dict[str, str],
) -> ChangeEvent:
    return ChangeEvent(
        ctx.new_id("evt"),
        g.master_id,
        g.domain,
        g.version,
        kind,
        changes,
        policy.spec.schema_version,
        ctx.trace_id,
        ctx.causation,
        ctx.now,
        source,
    )


def _check_live(g: GoldenRecord, role: str) -> None:
    if g.merged_into is not None:
        raise MergeRefused(f"{role} {g.master_id} was merged into {g.merged_into} already")


def plan_merge(
    survivor: GoldenRecord,
    loser: GoldenRecord,
    survivor_members: Sequence[Contribution],
    loser_members: Sequence[Contribution],
    loser_keys: Sequence[tuple[str, str]],
    policy: DomainPolicy,
    ctx: MergeContext,
) -> Consolidation:
    """Move the loser's source records and natural keys to the survivor and retire the loser."""
    if survivor.master_id == loser.master_id:
        raise MergeRefused(f"cannot merge {survivor.master_id} into itself")
    if survivor.domain != loser.domain:
        raise MergeRefused(
            f"{loser.master_id} is a {loser.domain}, {survivor.master_id} a {survivor.domain}: "
            "only records of one domain merge"
        )
    _check_live(survivor, "survivor")
    _check_live(loser, "loser")
    # Source records move. A consumer's key for the loser (an acknowledgement: no digest)
    # stays with it: the consumer holds the loser there and its deactivation goes there;
    # moved, the survivor's deliveries could land on that retired record.
    moved = [replace(c, master_id=survivor.master_id) for c in loser_members if c.digest]
    kept, kept_changes = _next(survivor, policy, [*survivor_members, *moved], ctx, None)
    retired, retired_changes = _next(loser, policy, loser_members, ctx, survivor.master_id)
    source = {"survivor": survivor.master_id, "loser": loser.master_id}
    keys = [KeyChange(loser.domain, n, v, loser.master_id, False) for n, v in loser_keys]
    keys += [KeyChange(loser.domain, n, v, survivor.master_id, True) for n, v in loser_keys]
    return Consolidation(
        [kept, retired],
        moved,
        keys,
        [
            _event(kept, "merged", kept_changes, policy, ctx, source),
            _event(retired, "merged", retired_changes, policy, ctx, source),
        ],
        {
            "xrefs": sorted([c.system, c.key] for c in moved),
            "natural_keys": sorted([n, v] for n, v in loser_keys),
            "survivor_version": survivor.version,
            "loser_version": loser.version,
        },
    )


def plan_unmerge(
    snapshot: dict[str, Any],
    survivor: GoldenRecord,
    loser: GoldenRecord,
    survivor_members: Sequence[Contribution],
    survivor_keys: Sequence[tuple[str, str]],
    policy: DomainPolicy,
    ctx: MergeContext,
) -> Consolidation:
    """Give the loser back its source records and natural keys; recompute both records."""
    if loser.merged_into != survivor.master_id:
        raise MergeRefused(
            f"{loser.master_id} is not merged into {survivor.master_id} "
            f"(merged into: {loser.merged_into or 'nothing'})"
        )
    _check_live(survivor, "survivor")
    refs = {(s, k) for s, k in snapshot.get("xrefs", [])}
    back = [replace(c, master_id=loser.master_id) for c in survivor_members if c.ref in refs]
    stay = [c for c in survivor_members if c.ref not in refs]
    if not stay:
        raise MergeRefused(f"unmerging would leave {survivor.master_id} without any source record")
    kept, kept_changes = _next(survivor, policy, stay, ctx, None)
    revived, revived_changes = _next(loser, policy, back, ctx, None)
    wanted = {(n, v) for n, v in snapshot.get("natural_keys", [])}
    moving = [(n, v) for n, v in survivor_keys if (n, v) in wanted]
    keys = [KeyChange(loser.domain, n, v, survivor.master_id, False) for n, v in moving]
    keys += [KeyChange(loser.domain, n, v, loser.master_id, True) for n, v in moving]
    source = {"survivor": survivor.master_id, "loser": loser.master_id}
    return Consolidation(
        [kept, revived],
        back,
        keys,
        [
            _event(kept, "unmerged", kept_changes, policy, ctx, source),
            _event(revived, "unmerged", revived_changes, policy, ctx, source),
        ],
    )


def plan_split(
    golden: GoldenRecord,
    members: Sequence[Contribution],
    ref: tuple[str, str],
    keys: Sequence[tuple[str, str]],
    policy: DomainPolicy,
    ctx: MergeContext,
) -> Consolidation:
    """Take one source record out of a golden record into a new one (a wrong link undone).

    Natural keys the kept record no longer has and the new one has go with the new one.
    """
    _check_live(golden, "record")
    moving = next((c for c in members if c.ref == ref), None)
    if moving is None:
        raise MergeRefused(f"{ref[0]}:{ref[1]} is not a source record of {golden.master_id}")
    stay = [c for c in members if c.ref != ref]
    if not stay:
        raise MergeRefused(
            f"{ref[0]}:{ref[1]} is the only source record of {golden.master_id}: nothing to split"
        )
    new_id = ctx.new_id(policy.spec.id_prefix)
    moved = replace(moving, master_id=new_id)
    empty = GoldenRecord(new_id, golden.domain, 0, {}, {}, ctx.now, ctx.now)
    created, created_changes = _next(empty, policy, [moved], ctx, None)
    kept, kept_changes = _next(golden, policy, stay, ctx, None)
    # Natural keys follow the records' keys, as in ingest (a golden value, else one a source
    # record sends): one the kept record no longer has but the new one does goes with it,
    # and a golden value of the new one over a key the kept one has only from a source
    # record (the ERP's record split off, with its customer number a CRM record also sends).
    kept_keys = key_pairs(natural_keys_of(policy, kept.attributes, stay))
    created_keys = key_pairs(natural_keys_of(policy, created.attributes, [moved]))
    own = {nk.name: nk for nk in policy.natural_keys}

    def goes(name: str, value: str) -> bool:
        nk = own.get(name)
        if nk is None or nk.value(kept.attributes) == value:
            return False
        return nk.value(created.attributes) == value or (
            (name, value) not in kept_keys and (name, value) in created_keys
        )

    going = [(name, value) for name, value in keys if goes(name, value)]
    changes = [KeyChange(golden.domain, n, v, golden.master_id, False) for n, v in going]
    changes += [KeyChange(golden.domain, n, v, new_id, True) for n, v in going]
    source = {"split_from": golden.master_id, "system": ref[0], "key": ref[1]}
    return Consolidation(
        [kept, created],
        [moved],
        changes,
        [
            _event(kept, "split", kept_changes, policy, ctx, source),
            _event(created, "created", created_changes, policy, ctx, source),
        ],
    )
