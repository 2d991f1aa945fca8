"""One source record through identify -> ownership -> quality -> merge -> golden version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import GUARDED
from mastersync.domain.identity import Keys, natural_keys_of
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import KeyChange, Ledger
from mastersync.domain.merge import MergeResult, enforce_ownership, merge
from mastersync.domain.problems import Problem, ProblemKind, shown
from mastersync.domain.quality import unusable
from mastersync.domain.survivorship import is_empty
from mastersync.domain.versions import Version, compare


class Outcome(StrEnum):
    """What happened to one source record."""

    ACCEPTED = "accepted"
    UNCHANGED = "unchanged"
    STALE = "stale"
    REJECTED = "rejected"


@dataclass(slots=True)
class Incoming:
    """A mapped and schema-valid source record."""

    system: str
    domain: str
    key: str
    version: Version | None
    timestamp: str | None
    values: dict[str, Any]
    # Hash of the payload as the source sent it: the same version with another hash is a
    # source contradicting itself.
    digest: str
    # Values the schema refused in fields the system may not write, set aside (not in
    # ``values``) rather than refusing the record: field -> (value sent, the problems).
    malformed: dict[str, tuple[Any, list[Problem]]] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """Per-record facts from outside the core: time, ids."""

    now: str
    trace_id: str
    receipt_id: str
    new_id: Callable[[str], str]
    # Re-merge even when this exact version was applied (a retry after a config change).
    reapply: bool = False
    # Duplicate detection for a record neither its xref nor a natural key identified: the
    # master id to link it to, or None for a new golden record (pipeline/matching).
    match: Callable[[Incoming], str | None] | None = None


@dataclass(slots=True)
class RecordResult:
    """Everything one record changes, for the store to write in one transaction."""

    outcome: Outcome
    master_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    contribution: Contribution | None = None
    golden: GoldenRecord | None = None
    event: ChangeEvent | None = None
    keys: list[KeyChange] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    # Guarded fields the merge would have changed unconfirmed: (field, the value it would
    # have taken, the source record it came from) -- kept as they were, to be confirmed.
    unconfirmed: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)


def _reject(problems: list[Problem], **detail: Any) -> RecordResult:
    return RecordResult(Outcome.REJECTED, detail.pop("master_id", None), problems, detail=detail)


def _stale(message: str, master_id: str) -> RecordResult:
    problem = Problem(ProblemKind.STALE_UPDATE, "version", "stale", message)
    return RecordResult(Outcome.STALE, master_id, [problem])


def _as_sent(fields: tuple[str, ...], values: Mapping[str, Any]) -> str:
    """A natural key's value as the record has it (the key itself is upper-cased, and a
    composite one joined with '|': 'ITM_01…|LOC_…' is no id anyone can look up)."""
    if len(fields) == 1:
        return str(values.get(fields[0]))
    return "(" + ", ".join(f"{f} {values.get(f)}" for f in fields if values.get(f)) + ")"


def _same_system(
    ledger: Ledger, rec: Incoming, master: str, name: str, value: str
) -> list[Problem]:
    """A warning when the golden record a natural key found already holds a record of this
    system under another key: two ERP items of one GTIN, two customers of one VAT id.

    They are joined (a source's duplicates are consolidated like any others, and the result
    does not depend on which came first), but a data steward should know: the newer record's
    values may now win over the older one's.
    """
    # Source records only: the key a consumer gave back for a record delivered to it is a
    # member too (no values, no digest), and warned of a duplicate the hub itself made.
    held = sorted(
        c.key
        for c in ledger.members.get(master, {}).values()
        if c.system == rec.system and c.key != rec.key and c.digest
    )
    if not held:
        return []
    return [
        Problem(
            ProblemKind.AMBIGUOUS_MATCH,
            name,
            "same_system",
            f"{name} {value} joined {rec.system} {rec.key} to {master}, which {rec.system} "
            f"also holds as {', '.join(held)}: a duplicate in {rec.system}, or a key typed "
            "twice? (survivorship now chooses between them)",
            severity="warning",
        )
    ]


def _identify(
    ledger: Ledger, policy: DomainPolicy, rec: Incoming
) -> tuple[str | None, str, list[Problem]]:
    """(master id or None for new, how it was found, problems: errors reject the record)."""
    if len(policy.natural_keys) == 1:  # the common case: no disagreement possible
        nk = policy.natural_keys[0]
        value = nk.value(rec.values)
        master = ledger.natural.get((rec.domain, nk.name, value)) if value is not None else None
        if master is None or value is None:
            return None, "new", []
        shown = _as_sent(nk.fields, rec.values)
        return master, f"natural_key:{nk.name}", _same_system(ledger, rec, master, nk.name, shown)
    hits: dict[str, str] = {}
    for nk in policy.natural_keys:
        value = nk.value(rec.values)
        if value is not None:
            master = ledger.natural.get((rec.domain, nk.name, value))
            if master is not None:
                hits[nk.name] = master
    masters = sorted(set(hits.values()))
    if len(masters) > 1:
        found = ", ".join(f"{k} -> {m}" for k, m in sorted(hits.items()))
        return (
            None,
            "ambiguous",
            [
                Problem(
                    ProblemKind.AMBIGUOUS_MATCH,
                    None,
                    "natural_key",
                    f"natural keys point at different records: {found}",
                )
            ],
        )
    if masters:
        name = next(k for k, m in sorted(hits.items()) if m == masters[0])
        key = next(nk for nk in policy.natural_keys if nk.name == name)
        same = _same_system(ledger, rec, masters[0], name, _as_sent(key.fields, rec.values))
        return masters[0], f"natural_key:{name}", same
    return None, "new", []


def _key_changes(
    ledger: Ledger,
    policy: DomainPolicy,
    master_id: str,
    before: Keys,
    after: Keys,
    current: Mapping[str, Any],
    attributes: Mapping[str, Any],
) -> tuple[list[KeyChange], list[Problem]]:
    """Natural keys the record gains and loses (``natural_keys_of`` before and after; the
    golden attributes before and after tell a golden value from one only sent).

    A key new to the record that nobody holds is taken. One another record holds as its
    golden value: an ambiguous match when it becomes this record's golden value; a key only
    a source record of this one sends is then not taken, and the record goes on without it.
    A golden value takes a key another record has only from a source record (the owner's
    value over a CRM's copy of it), with a warning."""
    domain = policy.spec.name
    changes, problems = [], []
    for nk in policy.natural_keys:
        # Sets: a record joined through one shared key may have thousands of values.
        olds, news = set(before.get(nk.name, ())), set(after.get(nk.name, ()))
        own = nk.value(attributes)
        for new in sorted(news):
            golden_now = own == new
            owner = ledger.natural.get((domain, nk.name, new))
            # Looked at when the key is new to the record, or becomes its golden value (it
            # was only sent before, and another record may hold it meanwhile), or nothing
            # indexes it (a split left it, or it was stored when only one sent value
            # counted). The chunk loads every key its records hold or could gain.
            if new in olds and owner is not None and not (golden_now and nk.value(current) != new):
                continue
            if owner is None:
                changes.append(KeyChange(domain, nk.name, new, master_id, True))
            elif owner != master_id and golden_now:
                other = ledger.golden.get(owner)
                if other is None or nk.value(other.attributes) == new:
                    problems.append(
                        Problem(
                            ProblemKind.AMBIGUOUS_MATCH,
                            nk.fields[0],
                            "natural_key",
                            f"{nk.name} {new} already identifies {owner}; this record is "
                            f"{master_id}",
                        )
                    )
                    continue
                changes.append(KeyChange(domain, nk.name, new, owner, False))
                changes.append(KeyChange(domain, nk.name, new, master_id, True))
                problems.append(
                    Problem(
                        ProblemKind.AMBIGUOUS_MATCH,
                        nk.fields[0],
                        "sent_key",
                        f"{nk.name} {new} identified {owner} only because one of its source "
                        f"records sent it; {master_id} holds it as its value and is identified "
                        "by it now: are they one? (`mastersync merge`)",
                        severity="warning",
                    )
                )
        for old in sorted(olds - news):
            changes.append(KeyChange(domain, nk.name, old, master_id, False))
    return changes, problems


def _quality(policy: DomainPolicy, attributes: dict[str, Any], gaps: list[Problem]) -> float:
    """Share of the domain's quality rules the golden record passes."""
    total = len(policy.record_rules) + len(policy.golden_rules)
    if not total:
        return 1.0
    failed = len({p.field for p in gaps}) + sum(
        1 for r in policy.record_rules if r.evaluate(attributes)
    )
    return round(1 - failed / total, 4)


def _known_gap(problem: Problem) -> Problem:
    """A required field the golden record lacked before this change too (a rule added
    since, say): the change is applied with a warning, not held back for it."""
    return replace(
        problem,
        severity="warning",
        message=f"{problem.message} (missing before this change too)",
    )


def _same_sources(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether each field's value comes from the same source record (system and key) in
    both provenances. (Runs for every record that changes no value: kept cheap.)"""
    if a.keys() != b.keys():
        return False
    for name, p in a.items():
        q = b[name]
        if p is not q and (p.get("system") != q.get("system") or p.get("key") != q.get("key")):
            return False
    return True


def _kept(
    rec: Incoming, policy: DomainPolicy, failing: Mapping[str, list[Problem]]
) -> Mapping[str, Any]:
    """What the record's contribution keeps: all it sent but a guarded field (credit
    limit, bank account) it may not write, and a value it may not write that fails a
    quality rule (``failing``). Kept, the first would win unconfirmed once ownership moved
    to the system: four-eyes confirms only what a system may write; the second would win
    unchecked then (the merge takes an owner's kept value as it is), and, a natural key's,
    identify records meanwhile."""
    guarded = GUARDED.get(rec.domain)
    dropped = set(failing)
    if guarded:
        dropped.update(
            n for n in guarded if n in rec.values and not policy.fields[n].may_write(rec.system)
        )
    if not dropped:
        return rec.values
    return {k: v for k, v in rec.values.items() if k not in dropped}


def _failing_unwritable(
    policy: DomainPolicy,
    rec: Incoming,
    values: Mapping[str, Any],
    current: Mapping[str, Any],
) -> dict[str, list[Problem]]:
    """Values the system sent for fields it may not write (not in ``values``, what it may)
    that differ from the golden record's and break a quality rule: field -> the errors."""
    if values is rec.values or not policy.record_rules:
        return {}  # (enforce_ownership hands back the record's own values when it blocks none)
    ignored = {
        name: value
        for name, value in rec.values.items()
        if name not in values and value != current.get(name) and not is_empty(value)
    }
    return unusable(policy.record_rules, ignored, {**current, **values}) if ignored else {}


def _naming_rules(
    violations: list[Problem],
    failing: Mapping[str, list[Problem]],
    rec: Incoming,
    policy: DomainPolicy,
) -> list[Problem]:
    """The ownership violations, each of a value that breaks a rule saying which and why,
    and that the value is not kept; plus one for a natural key's failing value, which
    raised none while it could identify the record. One entry per value, not two."""

    def failure(name: str) -> str:
        rules = "; ".join(f"rule {p.rule} ({p.message})" for p in failing[name])
        key = "identifies no record and " if name in policy.key_fields else ""
        return (
            f"it also fails {rules}, so it is not kept: it {key}will not serve should "
            f"ownership move to {rec.system}"
        )

    out = []
    for p in violations:
        if p.field is not None and p.field in failing:
            p = replace(p, message=f"{p.message}; {failure(p.field)}")
        out.append(p)
    named = {p.field for p in violations}
    for name in failing:
        if name not in named:
            owners = ", ".join(policy.fields[name].owners)
            raw = rec.values[name] if name in rec.values else rec.malformed[name][0]
            sent = shown(raw)
            out.append(
                Problem(
                    ProblemKind.OWNERSHIP_VIOLATION,
                    name,
                    "ownership",
                    f"{rec.system} may not write {name}: owned by {owners} (sent {sent}); "
                    f"{failure(name)}",
                    severity="warning",
                )
            )
    return out


def keep_guarded(
    merged: MergeResult, current: Mapping[str, Any], golden: GoldenRecord
) -> list[tuple[str, Any, dict[str, str]]]:
    """Take back, in ``merged``, any change to a guarded field of an existing golden record
    (credit limit, bank account), and return them: such a change is only ever made by a
    confirmation (four-eyes). The record's own new values are held before the merge; this
    catches the rest: another source's value that wins now (ownership or survivorship
    changed, a split), a record joined by matching. Review found both set limits unseen."""
    guarded = GUARDED.get(golden.domain)
    if not guarded or not merged.changes:
        return []
    taken = []
    for name in guarded:
        change = merged.changes.pop(name, None)
        if change is None:
            continue
        origin = merged.provenance.get(name) or {}
        taken.append((name, change["after"], dict(origin)))
        if name in current:
            merged.attributes[name] = current[name]
            if name in golden.provenance:
                merged.provenance[name] = golden.provenance[name]
        else:
            merged.attributes.pop(name, None)
            merged.provenance.pop(name, None)
    return taken


def process(ledger: Ledger, policy: DomainPolicy, rec: Incoming, ctx: Context) -> RecordResult:
    """Apply one record to the ledger's state and say what to write. Pure but for ``ledger``."""
    prev = ledger.xrefs.get((rec.domain, rec.system, rec.key))
    if rec.version is None and prev is not None and rec.digest == prev.digest and not ctx.reapply:
        return RecordResult(Outcome.UNCHANGED, prev.master_id)  # arrival order: same content
    version: Version = (
        rec.version
        if rec.version is not None
        else ((prev.version + 1 if isinstance(prev.version, int) else 1) if prev else 1)
    )
    joined: list[Problem] = []
    # The version applied again in another spelling (2.50 for 2.5, a version written 007,
    # a field the mapping does not read): told from a contradiction once mapped.
    respelt = False
    if prev is not None:
        order = compare(version, prev.version)
        if order < 0:
            return _stale(
                f"version {version} is older than applied version {prev.version}", prev.master_id
            )
        if order == 0 and not (ctx.reapply and rec.digest == prev.digest):
            if rec.digest == prev.digest:
                return RecordResult(Outcome.UNCHANGED, prev.master_id)
            respelt = True
        master_id: str | None = prev.master_id
        found_by = "xref"
    else:
        master_id, found_by, joined = _identify(ledger, policy, rec)
        if any(p.is_error for p in joined):
            return _reject(joined, identified_by=found_by)
        if master_id is None and ctx.match is not None:
            master_id = ctx.match(rec)
            found_by = "match" if master_id else found_by
    golden = ledger.golden.get(master_id) if master_id else None
    current = golden.attributes if golden else {}
    values, violations = enforce_ownership(
        rec.values, rec.system, current, policy.fields, policy.readonly.get(rec.system)
    )
    if violations and policy.key_fields:
        # A natural key's value is no contradiction while no record of a system that may
        # write it is there: it identifies the record (the CRM's copy of the ERP's customer
        # number, before the ERP's record came), and was an inbox entry per linked account
        # that nothing settled. Once the owner's record is there, even without a value, a
        # different one is a violation.
        sources = ledger.members.get(master_id, {}).values() if master_id else ()
        violations = [
            p
            for p in violations
            if p.field not in policy.key_fields
            or current.get(p.field)
            or any(policy.fields[p.field].may_write(m.system) for m in sources if m.digest)
        ]
    # A value the system may not write refuses nothing (it is not taken), but one that
    # breaks a rule is said, in its ownership entry, and not kept: kept, it was taken
    # unchecked once ownership moved to the system, and a natural key's joined records the
    # rule would have kept apart (the rules ran only on what the system may write).
    failing = _failing_unwritable(policy, rec, values, current)
    if rec.malformed:
        failing = {**failing, **{name: found for name, (_, found) in rec.malformed.items()}}
    if failing:
        violations = _naming_rules(violations, failing, rec, policy)
    kept = _kept(rec, policy, failing)
    if respelt:
        assert prev is not None
        # (Contributions stored before they kept owned fields hold ``values``.)
        if rec.values == prev.values or values == prev.values or kept == prev.values:
            return RecordResult(Outcome.UNCHANGED, prev.master_id)
        return _stale(
            f"version {version} was already applied with different content", prev.master_id
        )
    checked: list[Problem] = []
    if policy.record_rules:
        view = {**current, **values}
        checked = [p for r in policy.record_rules if r.path[0] in values for p in r.evaluate(view)]
    if any(p.is_error for p in checked):
        return _reject(checked, master_id=master_id, identified_by=found_by)
    new_master = master_id or ctx.new_id(policy.spec.id_prefix)
    # The contribution keeps what the source sent, owned fields too: merging takes only an
    # owner's value, and should ownership move to this system, its value is there (it was
    # dropped, and the field cleared once the old owner's record changed). Not a guarded
    # field's (see ``_kept``).
    contribution = Contribution(
        rec.domain,
        rec.system,
        rec.key,
        new_master,
        version,
        rec.timestamp,
        kept,
        rec.digest,
        ctx.now,
    )
    others = ledger.members.get(new_master)
    members = [m for m in others.values() if m.ref != contribution.ref] if others else []
    members.append(contribution)
    touched = set(rec.values) | (set(prev.values) if prev else set())
    merged = merge(current, golden.provenance if golden else {}, members, touched, policy.fields)
    unconfirmed = keep_guarded(merged, current, golden) if golden is not None else []
    gaps = [p for r in policy.golden_rules for p in r.evaluate(merged.attributes)]
    if gaps and golden is not None:
        # The rule failed on the record before this change too (a rule added since, say):
        # under its condition, through lists, as evaluated on the golden record as it was.
        before = {(p.field, p.rule) for r in policy.golden_rules for p in r.evaluate(current)}
        gaps = [_known_gap(p) if (p.field, p.rule) in before else p for p in gaps]
    before_keys = natural_keys_of(policy, current, others.values() if others else ())
    after_keys = natural_keys_of(policy, merged.attributes, members)
    keys, conflicts = _key_changes(
        ledger, policy, new_master, before_keys, after_keys, current, merged.attributes
    )
    errors = [p for p in (*gaps, *conflicts) if p.is_error]
    if errors:
        return _reject(errors, master_id=master_id, identified_by=found_by)
    problems = [*joined, *violations, *checked, *gaps, *conflicts]
    detail: dict[str, Any] = {"identified_by": found_by, "source_version": str(version)}
    if violations:
        detail["violations"] = [p.field for p in violations]
    warnings = [f"{p.field}: {p.rule}" for p in (*checked, *gaps)]
    if warnings:
        detail["warnings"] = warnings
    if golden is not None and not merged.changes:
        # The same values; the record's own may still have changed (a field cleared that
        # another source also has), and with them which source stands behind a value: the
        # golden record says so, without a new version or an event. (Only then: a source
        # sending the same values at a new version does not rewrite the record.)
        changed = prev is None or prev.values != contribution.values
        outcome = Outcome.ACCEPTED if changed else Outcome.UNCHANGED
        refreshed = (
            None
            if _same_sources(merged.provenance, golden.provenance)
            else replace(golden, provenance=merged.provenance)
        )
        return RecordResult(
            outcome,
            new_master,
            problems,
            contribution,
            refreshed,
            None,
            keys,
            detail,
            unconfirmed,
        )
    kind = "created" if golden is None else "updated"
    new_version = (golden.version if golden else 0) + 1
    updated = GoldenRecord(
        new_master,
        rec.domain,
        new_version,
        merged.attributes,
        merged.provenance,
        created_at=golden.created_at if golden else ctx.now,
        updated_at=ctx.now,
        quality=_quality(policy, merged.attributes, gaps),
        trace_id=ctx.trace_id,
    )
    event = ChangeEvent(
        ctx.new_id("evt"),
        new_master,
        rec.domain,
        new_version,
        kind,
        merged.changes,
        policy.spec.schema_version,
        ctx.trace_id,
        ctx.receipt_id,
        ctx.now,
        {"system": rec.system, "key": rec.key, "version": str(version)},
    )
    detail.update(
        changed=sorted(merged.changes), golden_version=new_version, event_id=event.event_id
    )
    return RecordResult(
        Outcome.ACCEPTED,
        new_master,
        problems,
        contribution,
        updated,
        event,
        keys,
        detail,
        unconfirmed,
    )
