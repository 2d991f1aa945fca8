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
from mastersync.domain.ingest import keep_guarded
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import KeyChange
from mastersync.domain.merge import MergeResult, merge
from mastersync.domain.words import a_or_an

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


@dataclass(frozen=True, slots=True)
class Held:
    """A guarded field's change a merge or split leaves for a confirmation (four-eyes)."""

    master_id: str
    field: str
    proposed: Any
    # The value the record keeps meanwhile.
    current: Any
    # The source record whose value would win ({"system", "key"}); empty when no source
    # may write the field: then there is nothing to confirm and the record keeps its value.
    origin: dict[str, str]


@dataclass(slots=True)
class Consolidation:
    """Everything a merge or unmerge writes."""

    golden: list[GoldenRecord]
    contributions: list[Contribution]
    keys: list[KeyChange]
    events: list[ChangeEvent]
    # What an unmerge needs: the loser's source records and natural keys, and the versions.
    snapshot: dict[str, Any] = field(default_factory=dict)
    # Guarded changes taken back from the records, to wait for a confirmation.
    held: list[Held] = field(default_factory=list)
    # master id -> natural keys the record holds that ``keys`` does not index to it: the
    # pipeline indexes the ones no record has (the plan cannot see the whole index).
    wanted: dict[str, set[tuple[str, str]]] = field(default_factory=dict)


def recompute(
    golden: GoldenRecord, members: Sequence[Contribution], policy: DomainPolicy
) -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """(attributes, provenance, changes) of ``golden`` recomputed from ``members``."""
    if not members:
        changes = {k: {"before": v, "after": None} for k, v in sorted(golden.attributes.items())}
        return {}, {}, changes
    result = _merged(golden, members, policy)
    return result.attributes, result.provenance, result.changes


def _merged(
    golden: GoldenRecord, members: Sequence[Contribution], policy: DomainPolicy
) -> MergeResult:
    touched = set(policy.fields) | set(golden.attributes)
    return merge(golden.attributes, golden.provenance, list(members), touched, policy.fields)


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
    *,
    guard: bool = False,
) -> tuple[GoldenRecord, dict[str, dict[str, Any]], list[Held]]:
    held: list[Held] = []
    if not members:
        attributes, provenance, changes = recompute(golden, members, policy)
    else:
        result = _merged(golden, members, policy)
        if guard:
            # An existing record's guarded fields (credit limit, bank account) keep their
            # value: another source's value that wins once the source records are
            # regrouped waits for a confirmation, as in ingest and remerge.
            held = [
                Held(golden.master_id, name, proposed, golden.attributes.get(name), origin)
                for name, proposed, origin in keep_guarded(result, golden.attributes, golden)
            ]
        attributes, provenance, changes = result.attributes, result.provenance, result.changes
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
    return updated, changes, held


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
            f"{loser.master_id} is {a_or_an(loser.domain)}, {survivor.master_id} "
            f"{a_or_an(survivor.domain)}: "
            "only records of one domain merge"
        )
    _check_live(survivor, "survivor")
    _check_live(loser, "loser")
    # Source records move. A consumer's key for the loser (an acknowledgement: no digest)
    # stays with it: the consumer holds the loser there and its deactivation goes there;
    # moved, the survivor's deliveries could land on that retired record.
    moved = [replace(c, master_id=survivor.master_id) for c in loser_members if c.digest]
    kept, kept_changes, held = _next(
        survivor, policy, [*survivor_members, *moved], ctx, None, guard=True
    )
    # The retired record is nobody's to confirm a change of: it is recomputed unguarded.
    retired, retired_changes, _ = _next(loser, policy, loser_members, ctx, survivor.master_id)
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
        held,
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
    """Give the loser back its source records and natural keys; recompute both records.

    Natural keys follow the records' keys as they are now, as in ingest and split: one the
    loser's source records changed while merged (a new VAT number) is its current one.
    """
    if loser.merged_into != survivor.master_id:
        raise MergeRefused(
            f"{loser.master_id} is not merged into {survivor.master_id} "
            f"(merged into: {loser.merged_into or 'nothing'})"
        )
    _check_live(survivor, "survivor")
    refs = {(s, k) for s, k in snapshot.get("xrefs", [])}
    back = [replace(c, master_id=loser.master_id) for c in survivor_members if c.ref in refs]
    stay = [c for c in survivor_members if c.ref not in refs]
    if not back:
        # Revived, the loser would be a live record with no values and no source record.
        named = ", ".join(f"{s}:{k}" for s, k in sorted(refs)) or "none"
        raise MergeRefused(
            f"{loser.master_id} has no source record left in {survivor.master_id} "
            f"(it had {named}): they were split off (or moved) since; nothing to unmerge"
        )
    if not stay:
        raise MergeRefused(f"unmerging would leave {survivor.master_id} without any source record")
    # Both are existing records: a guarded value the regrouping would change (the limit the
    # loser's source brought, confirmed while merged) waits for a confirmation.
    kept, kept_changes, held = _next(survivor, policy, stay, ctx, None, guard=True)
    revived, revived_changes, held_too = _next(loser, policy, back, ctx, None, guard=True)
    kept_keys = key_pairs(natural_keys_of(policy, kept.attributes, stay))
    revived_keys = key_pairs(natural_keys_of(policy, revived.attributes, back))
    # The loser's keys as it left them (its golden values are as of the merge): one it
    # holds no more now is given up, and no longer identifies either record.
    given_up = key_pairs(natural_keys_of(policy, loser.attributes, back)) - revived_keys
    snapshot_keys = {(n, v) for n, v in snapshot.get("natural_keys", [])}
    own = {nk.name: nk for nk in policy.natural_keys}

    def holder(name: str, value: str) -> str | None:
        """Who a key identifies after the unmerge (None: nobody)."""
        nk = own.get(name)
        if nk is not None:
            # The record whose golden value it is, else the one a source record sends it
            # for (as in split and ingest).
            golden = (nk.value(kept.attributes) == value, nk.value(revived.attributes) == value)
            sent = ((name, value) in kept_keys, (name, value) in revived_keys)
            for kept_has, revived_has in (golden, sent):
                if kept_has != revived_has:
                    return survivor.master_id if kept_has else loser.master_id
                if kept_has:
                    break
            else:
                if (name, value) in given_up:
                    return None
        # Both records hold it alike, or neither from its values (a key of a record merged
        # into the loser before): where it was before the merge.
        return loser.master_id if (name, value) in snapshot_keys else survivor.master_id

    placed = {(n, v): holder(n, v) for n, v in survivor_keys}
    keys = [
        KeyChange(loser.domain, n, v, survivor.master_id, False)
        for (n, v), m in placed.items()
        if m != survivor.master_id
    ]
    keys += [
        KeyChange(loser.domain, n, v, loser.master_id, True)
        for (n, v), m in placed.items()
        if m == loser.master_id
    ]
    # Keys the records hold that the survivor is not indexed by (the loser's new VAT
    # number): each for the one record it identifies, indexed by the pipeline if free.
    wanted: dict[str, set[tuple[str, str]]] = {survivor.master_id: set(), loser.master_id: set()}
    for n, v in (kept_keys | revived_keys) - set(placed):
        if (m := holder(n, v)) is not None:
            wanted[m].add((n, v))
    source = {"survivor": survivor.master_id, "loser": loser.master_id}
    return Consolidation(
        [kept, revived],
        back,
        keys,
        [
            _event(kept, "unmerged", kept_changes, policy, ctx, source),
            _event(revived, "unmerged", revived_changes, policy, ctx, source),
        ],
        wanted=wanted,
        held=[*held, *held_too],
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
    # A new record's first values are not held (onboarding has its own confirmation).
    created, created_changes, _ = _next(empty, policy, [moved], ctx, None)
    kept, kept_changes, held = _next(golden, policy, stay, ctx, None, guard=True)
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
        held=held,
        # The new record's own keys (or its source record's), where no record holds them
        # yet; then the kept record's (a value only one of its other source records sends,
        # left unindexed while the split-off record's value stood for it).
        wanted={
            new_id: created_keys - set(going),
            golden.master_id: kept_keys - set(going),
        },
    )
