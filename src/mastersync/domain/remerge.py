"""Recomputing a golden record under the landscape as it is now (ownership, survivorship and
normalisation changed since its source records came): pure, the pipeline loads and writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mastersync.domain.consolidate import MergeContext, quality_of
from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.ingest import keep_guarded
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.merge import merge
from mastersync.domain.problems import Problem
from mastersync.domain.validation import validate


@dataclass(slots=True)
class Remerge:
    """What recomputing one golden record changes (nothing, when all is as it was)."""

    # The next version (or the record with only its provenance refreshed), or None.
    golden: GoldenRecord | None = None
    event: ChangeEvent | None = None
    # Source records whose stored values the canonical model now spells otherwise.
    renewed: list[Contribution] = field(default_factory=list)
    # Every source record of the golden record as it now stands.
    members: list[Contribution] = field(default_factory=list)
    # Guarded fields the recomputation would change: (field, value, source), to confirm.
    unconfirmed: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    # Quality rules (errors) the recomputed record would newly fail: it is left as it was.
    refused: list[Problem] = field(default_factory=list)


def _renewed(policy: DomainPolicy, c: Contribution) -> Contribution:
    """``c`` with its values as the canonical model spells them today (a VAT number with its
    country prefix, say); as it was when they no longer pass (a rule added since: that
    record's next change meets it, in ingest, with the source to fix it)."""
    if not c.digest:  # a key a consumer gave back: no values
        return c
    values, problems = validate(policy.spec, dict(c.values))
    return c if problems or values == c.values else replace(c, values=values)


def _newly_failing(
    policy: DomainPolicy, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[Problem]:
    """Errors of the domain's quality rules on ``after`` that ``before`` did not have."""
    rules = [*policy.record_rules, *policy.golden_rules]
    failing = [p for r in rules for p in r.evaluate(after) if p.is_error]
    if not failing:
        return []
    known = {(p.field, p.rule) for r in rules for p in r.evaluate(before)}
    return [p for p in failing if (p.field, p.rule) not in known]


def plan_remerge(
    golden: GoldenRecord,
    members: Sequence[Contribution],
    policy: DomainPolicy,
    ctx: MergeContext,
) -> Remerge:
    """The golden record as its source records make it under ``policy``.

    Guarded fields (credit limit, bank account) keep their value: a change waits for a
    confirmation, as any other way in. A record whose values change gets a version and an
    ``updated`` event, which subscribers receive like any other change. One that would
    newly fail a quality rule (a required name no source that may write it has) is left as
    it is, as ingest refuses such a change.
    """
    now = [_renewed(policy, c) for c in members]
    renewed = [c for c, before in zip(now, members, strict=True) if c is not before]
    touched = set(policy.fields) | set(golden.attributes)
    merged = merge(golden.attributes, golden.provenance, now, touched, policy.fields)
    # Guarded values first taken back (they wait for a confirmation), as ingest does: a rule
    # failing only on one must not refuse the rest.
    unconfirmed = keep_guarded(merged, golden.attributes, golden)
    refused = _newly_failing(policy, golden.attributes, merged.attributes)
    if refused:
        return Remerge(members=list(members), refused=refused)
    plan = Remerge(renewed=renewed, members=now, unconfirmed=unconfirmed)
    if not merged.changes:
        if merged.provenance != golden.provenance:
            plan.golden = replace(golden, provenance=merged.provenance)
        return plan
    version = golden.version + 1
    plan.golden = replace(
        golden,
        version=version,
        attributes=merged.attributes,
        provenance=merged.provenance,
        updated_at=ctx.now,
        quality=quality_of(policy, merged.attributes),
        trace_id=ctx.trace_id,
    )
    plan.event = ChangeEvent(
        ctx.new_id("evt"),
        golden.master_id,
        golden.domain,
        version,
        "updated",
        merged.changes,
        policy.spec.schema_version,
        ctx.trace_id,
        ctx.causation,
        ctx.now,
    )
    return plan
