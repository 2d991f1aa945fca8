"""Process APIs: customer onboarding, item activation, supplier approval.

Each process moves one golden record through lifecycle states; every step is a write of
the starter's system through ingest (so ownership, audit and four-eyes apply), and a step
marked ``second_person`` must be taken by someone other than the starter.

A start or step is recorded in the transaction of its write, and only if that write set
the golden record's lifecycle (another system's value can win by ownership or
survivorship), over the process version it was decided on (two requests never both take
it), and over the record as it read it (a write landing in between is not reverted): see
:class:`mastersync.ports.governance.ProcessStep`. A process can be cancelled; one whose
starter's system may no longer write the lifecycle (the landscape gave it to another
system) can never advance, holds no lock on the record, and waits to be cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mastersync.domain.governance.access import Principal
from mastersync.domain.governance.four_eyes import GUARDED
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.survivorship import Rule, rule_of
from mastersync.domain.versions import Version
from mastersync.pipeline.governance.writes import WriteResult, write_record
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.governance import (
    Governance,
    ProcessConflict,
    ProcessRecord,
    ProcessStep,
    StaleStep,
    StepNotTaken,
)

# The field every step writes.
LIFECYCLE = "lifecycle_state"
# The state of a cancelled process (no step leaves it).
CANCELLED = "cancelled"
# How often a step is taken on what is stored now after a write of its record landed
# between its read and its write (each time: another write in that window).
ATTEMPTS = 3


class ProcessError(Exception):
    """A process step that cannot be taken, with the reason (and, where a field's rule
    refused it, that field and rule as problems)."""

    def __init__(
        self, message: str, status: int = 409, problems: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


@dataclass(frozen=True)
class Step:
    """One transition: from a state to the next, the lifecycle it writes, who may take it."""

    source: str
    target: str
    lifecycle: str
    scope: str
    second_person: bool = False


@dataclass(frozen=True)
class Flow:
    """A process kind: its domain, first state and steps."""

    domain: str
    first: str
    first_lifecycle: str
    steps: tuple[Step, ...]
    # Fields a record needs before the step into a state (the readiness hook: configured
    # gates replace this when the landscape declares them).
    ready: Mapping[str, tuple[str, ...]]


FLOWS: dict[str, Flow] = {
    "customer-onboarding": Flow(
        "customer",
        "awaiting_credit_approval",
        "pending",
        (Step("awaiting_credit_approval", "active", "active", "approve", second_person=True),),
        {"active": ("name", "country")},
    ),
    "supplier-approval": Flow(
        "supplier",
        "awaiting_approval",
        "onboarding",
        (Step("awaiting_approval", "approved", "approved", "approve", second_person=True),),
        # An account is its IBAN: a bank account with only a holder or a bank name is none.
        {"approved": ("name", "country", "bank_account.iban")},
    ),
    "item-activation": Flow(
        "item",
        "draft",
        "draft",
        (
            Step("draft", "enriched", "enriched", "item:write"),
            Step("enriched", "approved", "approved", "approve", second_person=True),
            Step("approved", "active", "active", "item:write"),
        ),
        {"enriched": ("name", "base_uom"), "active": ("name", "base_uom", "gtin")},
    ),
}


# (kind, state) of every process that still has a step to take.
OPEN_STATES = frozenset((kind, s.source) for kind, flow in FLOWS.items() for s in flow.steps)


def stranded(process: ProcessRecord, landscape: CompiledLandscape) -> bool:
    """Whether an open process can never advance under ``landscape``: its starter's system
    may no longer write the lifecycle (ownership moved to another system since it began).
    Such a process holds no lock on its record's lifecycle (the owner sets it); it stays
    open, saying where it stood, until someone cancels it."""
    system = process.history[0].get("system") if process.history else None
    policy = landscape.policies[process.domain].fields.get(LIFECYCLE)
    return system is not None and policy is not None and not policy.may_write(str(system))


def open_processes(
    governance: Governance, master_id: str, landscape: CompiledLandscape | None = None
) -> list[ProcessRecord]:
    """A record's processes that still have a step to take; given the landscape in force,
    only those that can take it (a stranded one locks nothing, see ``stranded``)."""
    return [
        p
        for p in governance.processes_of(master_id)
        if (p.kind, p.state) in OPEN_STATES and not (landscape and stranded(p, landscape))
    ]


def _missing(value: Any, path: str) -> bool:
    """Whether a readiness field (dotted: a part of a structured value) is absent or empty."""
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return True
        value = value.get(part)
    return value in (None, "", [], {})


def _cancel_hint(process: ProcessRecord) -> str:
    return f"cancel it: POST /v1/processes/{process.id}/cancel"


def _may_set_lifecycle(
    ingestor: Ingestor, domain: str, system: str, process: ProcessRecord | None = None
) -> None:
    """Refuse a start or step before it writes anything when ``system`` may not write the
    lifecycle (another system owns it): the write would take the other fields and drop the
    state. A process already under way is stranded so: it can only be cancelled."""
    policy = ingestor.landscape.policies[domain].fields.get(LIFECYCLE)
    if policy is not None and not policy.may_write(system):
        owners = ", ".join(policy.owners)
        said = f"{LIFECYCLE} of {domain} is owned by {owners}, not {system}"
        if process is None:
            raise ProcessError(f"{said}: a process started as {system} cannot set it")
        raise ProcessError(
            f"{said}: process {process.id} ({process.kind}, {process.state}), started as "
            f"{system}, can no longer advance; {_cancel_hint(process)}",
            problems=[{"field": LIFECYCLE, "rule": "ownership", "message": process.id}],
        )


def _rule(ingestor: Ingestor, domain: str, system: str, holder: str | None) -> tuple[str, str]:
    """(rule name, why) of the field policy that keeps ``holder``'s lifecycle over
    ``system``'s."""
    policy = ingestor.landscape.policies[domain].fields[LIFECYCLE]
    rule, order = rule_of(policy)
    if policy.owners:
        if not policy.may_write(system):
            return "ownership", f"only {', '.join(policy.owners)} may write it"
        return "ownership", f"its owners in priority order are {', '.join(policy.owners)}"
    if rule is Rule.SOURCE_PRIORITY:
        return rule.value, f"systems in priority order: {', '.join(order)}"
    if rule is Rule.MOST_RECENT:
        return rule.value, f"{holder or 'another system'}'s value is the most recent"
    return rule.value, f"{holder or 'another system'}'s value is the most complete"


def _not_taken(
    ingestor: Ingestor,
    process: ProcessRecord,
    system: str,
    key: str,
    target: str,
    exc: StepNotTaken,
) -> ProcessError:
    """The error for a start or step whose lifecycle did not take: record, field, rule."""
    holder = exc.holder.get("system")
    name, why = _rule(ingestor, process.domain, system, holder)
    source = f"{holder} {exc.holder.get('key', '')}".strip() if holder else "no source"
    message = (
        f"{process.domain} {key} ({exc.master_id}): {exc.field} stays {exc.value!r} (from "
        f"{source}), not {exc.wanted!r} as written by {system}: refused by the {name} rule "
        f"({why}); the step to {target} was not taken"
    )
    if process.history:
        message += f", process {process.id} stays {process.state}"
    return ProcessError(message, 409, [{"field": exc.field, "rule": name, "message": message}])


def _write(
    ingestor: Ingestor,
    governance: Governance,
    principal: Principal,
    step: ProcessStep,
    attributes: dict[str, Any],
    route: str,
) -> WriteResult:
    """Write the step's record as the starter's system; the store records the step with it
    (or raises ProcessConflict, StaleStep or StepNotTaken, and writes neither)."""
    domain = step.process.domain
    result = write_record(
        ingestor,
        governance,
        consumer=principal.consumer,
        person=principal.person,
        system=step.system,
        domain=domain,
        key=step.key,
        version=None,
        attributes=attributes,
        request_id=step.request_id,
        route=route,
        step=step,
    )
    if result.outcome in ("rejected", "stale"):
        problems = "; ".join(f"{f}: {m}" for f, _, m in result.problems)
        raise ProcessError(f"{domain} {step.key} was {result.outcome}: {problems}", 422)
    return result


def start(
    ingestor: Ingestor,
    governance: Governance,
    principal: Principal,
    kind: str,
    key: str,
    attributes: dict[str, Any],
    request_id: str,
    clock: Callable[[], str] = utc_now,
) -> ProcessRecord:
    """Start a process: write the record in its first lifecycle state as the caller's
    system. Refused if the record has an open process (a stranded one too: it is cancelled
    first), and if the first state does not take on the golden record."""
    flow = FLOWS[kind]
    system = principal.system
    if system is None:
        raise ProcessError(f"{principal.consumer} has no source system to write as", 403)
    _may_set_lifecycle(ingestor, flow.domain, system)
    with ingestor.store.unit_of_work(write=False) as uow:
        known = uow.find_master(flow.domain, system, key)
    if known is not None:
        earlier = _started(ingestor, governance, flow.domain, key, known, request_id)
        if earlier is not None:
            return earlier
    now = clock()
    entry = {
        "at": now,
        "step": "start",
        "state": flow.first,
        "by": principal.person,
        "system": system,
        "key": key,
        "request_id": request_id,
    }
    process = ProcessRecord(
        new_id("prc"), kind, flow.first, flow.domain, principal.person, now, now, known, [entry]
    )
    step = ProcessStep(
        process, system, key, LIFECYCLE, flow.first_lifecycle, request_id, open_states=OPEN_STATES
    )
    values = {**attributes, LIFECYCLE: flow.first_lifecycle}
    try:
        _write(ingestor, governance, principal, step, values, f"POST /v1/processes/{kind}")
    except ProcessConflict as exc:
        # Another start got there first; if it was this same start (a retry racing the
        # first try), its process is the answer.
        other = governance.process(exc.process_id) if exc.process_id else None
        if other is None:
            raise ProcessError(str(exc)) from None
        if other.history and other.history[0].get("request_id") == request_id:
            return other
        raise ProcessError(f"{exc}{_stranded_hint(other, ingestor.landscape)}") from None
    except StepNotTaken as exc:
        # Nothing was recorded: the error names no process.
        refused = _not_taken(ingestor, replace(process, history=[]), system, key, flow.first, exc)
        raise refused from None
    stored = governance.process(process.id)
    if stored is None:
        raise ProcessError(f"{flow.domain} {key}: the start was written but not recorded")
    return stored


def _started(
    ingestor: Ingestor,
    governance: Governance,
    domain: str,
    key: str,
    master_id: str,
    request_id: str,
) -> ProcessRecord | None:
    """The process this same start (``request_id``) already started on the record (a
    retry after a lost answer), or None if the record has no open process; refused if it
    has another (a second start would set it back to the first state, and both would wait
    for the same record)."""
    for process in open_processes(governance, master_id):
        if process.history and process.history[0].get("request_id") == request_id:
            return process
        raise ProcessError(
            f"{domain} {key} already has an open process {process.id} "
            f"({process.kind}, {process.state}){_stranded_hint(process, ingestor.landscape)}"
        )
    return None


def _stranded_hint(process: ProcessRecord, landscape: CompiledLandscape) -> str:
    """What to do about an open process in the way that can never advance."""
    if not stranded(process, landscape):
        return ""
    return (
        f"; it can no longer advance ({LIFECYCLE} is owned by another system now): "
        f"{_cancel_hint(process)}"
    )


def _repeated(process: ProcessRecord, request_id: str) -> ProcessRecord | None:
    """The earlier answer to a request that already took (or was refused) a step: a retry
    after a lost answer must not take the next step as well."""
    at = next(
        (i for i, h in enumerate(process.history) if i and h.get("request_id") == request_id),
        None,
    )
    if at is None:
        return None
    entry = process.history[at]
    if "refused" in entry:
        # Steps recorded as refused before steps were recorded with their write.
        raise ProcessError(str(entry["refused"]))
    # The process as that step left it, not as later steps (by others) moved it.
    return replace(
        process,
        state=str(entry["state"]),
        updated_at=str(entry["at"]),
        history=process.history[: at + 1],
    )


@dataclass(frozen=True)
class _Read:
    """What a step read: the golden record's attributes and version, the starter's source
    record's version, and what the step writes."""

    current: dict[str, Any]
    golden_version: int
    source_version: Version
    values: dict[str, Any]


def _step_values(
    ingestor: Ingestor,
    governance: Governance,
    master_id: str,
    system: str,
    key: str,
    lifecycle: str,
) -> _Read:
    """The golden record and what the step writes: the starter system's contribution as
    stored now with only the lifecycle changed. The write is made only if neither changed
    before it (else it is read again): restating an older contribution reverts a write."""
    with ingestor.store.unit_of_work(write=False) as uow:
        record = uow.golden(master_id)
        members = uow.members(master_id)
    source = next((m for m in members if m.ref == (system, key)), None)
    if record is None or source is None:
        raise ProcessError(f"the record of {system} {key} is gone or was merged away")
    values = {**source.values, LIFECYCLE: lifecycle}
    # A guarded value the source changed and that waits for confirmation is not in its
    # stored values (a held value is never kept): restating the stored one would be the
    # source taking its change back, which supersedes the pending change (a bank account
    # change silently dropped, the payment block lifted). The step says what the source
    # last asked for instead: the same held value again is the same pending change.
    for change in governance.pending(master_id=master_id, limit=1000):
        if (change.system, change.source_key) != (system, key):
            continue
        if change.field not in GUARDED.get(change.domain, ()):
            continue
        if change.proposed is None:
            values.pop(change.field, None)
        else:
            values[change.field] = change.proposed
    return _Read(dict(record.attributes), record.version, source.version, values)


def _next_step(process: ProcessRecord, principal: Principal, verb: str) -> Step:
    """The step a process waits on, if ``principal`` may ``verb`` it: take it, or cancel
    the process instead (which needs the same: its scope, and a second person)."""
    flow = FLOWS[process.kind]
    step = next((s for s in flow.steps if s.source == process.state), None)
    if step is None:
        raise ProcessError(f"process {process.id} is {process.state}: no step is left")
    if step.scope not in principal.scopes:
        raise ProcessError(
            f"to {verb} the step to {step.target} needs the scope {step.scope!r}", 403
        )
    if step.second_person and principal.person == process.started_by:
        raise ProcessError(
            f"process {process.id} was started by {principal.person}: a different person "
            f"must {verb} the step to {step.target} (four-eyes)",
            403,
        )
    return step


def advance(
    ingestor: Ingestor,
    governance: Governance,
    principal: Principal,
    process: ProcessRecord,
    master_id: str,
    request_id: str,
    expected: str | None = None,
    clock: Callable[[], str] = utc_now,
) -> ProcessRecord:
    """Take the next step of a process whose record is now ``master_id``; ``expected`` is
    the state the caller means to move on from (a different one is refused). A step meeting
    another request's change of the process is refused (409); one meeting a write of its
    record made since it read it is taken again on what is stored now."""
    origin = process.history[0] if process.history else {}
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _advance(
                ingestor, governance, principal, process, master_id, request_id, expected, clock
            )
        except ProcessConflict as exc:
            fresh = governance.process(process.id)
            earlier = _repeated(fresh, request_id) if fresh is not None else None
            if earlier is not None:
                return earlier  # the same request, taken by a try running alongside
            raise ProcessError(str(exc)) from None
        except StaleStep as exc:
            fresh = governance.process(process.id)
            if fresh is None or fresh.version != process.version:
                # Moved on by another request meanwhile: not the step this one decided on.
                state = fresh.state if fresh is not None else "gone"
                raise ProcessError(
                    f"process {process.id} was changed by another request meanwhile "
                    f"({state} now): the step was not taken"
                ) from None
            if attempt == ATTEMPTS:
                raise ProcessError(
                    f"{process.domain} {origin.get('key')} changed while the step was taken, "
                    f"{ATTEMPTS} times ({exc}): the step was not taken; try again"
                ) from None
            process = fresh
            with ingestor.store.unit_of_work(write=False) as uow:
                found = uow.find_master(
                    process.domain, str(origin.get("system")), str(origin.get("key"))
                )
            master_id = found or master_id
    raise AssertionError("unreachable")  # pragma: no cover


def _advance(
    ingestor: Ingestor,
    governance: Governance,
    principal: Principal,
    process: ProcessRecord,
    master_id: str,
    request_id: str,
    expected: str | None,
    clock: Callable[[], str],
) -> ProcessRecord:
    """One try of ``advance``."""
    flow = FLOWS[process.kind]
    earlier = _repeated(process, request_id)
    if earlier is not None:
        return earlier
    if expected is not None and expected != process.state:
        raise ProcessError(
            f"process {process.id} is {process.state}, not {expected}: the step was not taken"
        )
    step = _next_step(process, principal, "take")
    origin = process.history[0]
    system, key = str(origin["system"]), str(origin["key"])
    _may_set_lifecycle(ingestor, flow.domain, system, process)
    read = _step_values(ingestor, governance, master_id, system, key, step.lifecycle)
    missing = [f for f in flow.ready.get(step.target, ()) if _missing(read.current, f)]
    if missing:
        raise ProcessError(
            f"the {flow.domain} is not ready for {step.target}: {', '.join(missing)} missing"
        )
    now = clock()
    entry: dict[str, Any] = {
        "at": now,
        "step": step.target,
        "by": principal.person,
        "request_id": request_id,
        "state": step.target,
    }
    moved = replace(process, state=step.target, updated_at=now, history=[*process.history, entry])
    recorded = ProcessStep(
        moved,
        system,
        key,
        LIFECYCLE,
        step.lifecycle,
        request_id,
        expected=process.version,
        master_id=master_id,
        golden_version=read.golden_version,
        source_version=read.source_version,
        open_states=OPEN_STATES,
    )
    try:
        _write(
            ingestor,
            governance,
            principal,
            recorded,
            read.values,
            "POST /v1/processes/{id}/advance",
        )
    except StepNotTaken as exc:
        raise _not_taken(ingestor, process, system, key, step.target, exc) from None
    stored = governance.process(process.id)
    # As the step left it (a cancel may follow at once).
    done = _repeated(stored, request_id) if stored is not None else None
    if done is None:
        raise ProcessError(f"process {process.id}: the step was written but not recorded")
    return done


def cancel(
    governance: Governance,
    principal: Principal,
    process: ProcessRecord,
    reason: str,
    request_id: str,
    clock: Callable[[], str] = utc_now,
) -> ProcessRecord:
    """Close an open process without taking its step, saying who and why in its history.

    The record keeps its lifecycle state as it is, and the process's lock on it is released:
    its systems (the owner, where ownership moved) set it again. Cancelling forgoes the
    step the process waits on, so it takes what that step takes: its scope, and a person
    other than the starter where the step needs one (else a starter could cancel an
    approval and set the state straight). Over the process as the caller read it: moved on
    by another request meanwhile, it is not cancelled (409). The same request again answers
    as the first did.
    """
    earlier = _repeated(process, request_id)
    if earlier is not None:
        return earlier
    why = reason.strip()
    if not why:
        raise ProcessError(f"cancelling process {process.id} needs a reason", 422)
    if (process.kind, process.state) not in OPEN_STATES:
        raise ProcessError(f"process {process.id} is {process.state}: there is nothing to cancel")
    _next_step(process, principal, "cancel")
    flow = FLOWS[process.kind]
    at = next(i for i, s in enumerate(flow.steps) if s.source == process.state)
    ahead = next((s for s in flow.steps[at:] if s.second_person), None)
    if ahead is not None and principal.person == process.started_by:
        # Not only the next step: a starter cancelling at draft could then write the state
        # the approval further on guards (an item active without its approval).
        raise ProcessError(
            f"process {process.id} was started by {principal.person} and has a four-eyes "
            f"step ahead (to {ahead.target}): a different person must cancel it",
            403,
        )
    now = clock()
    entry = {
        "at": now,
        "step": "cancel",
        "from": process.state,
        "state": CANCELLED,
        "by": principal.person,
        "consumer": principal.consumer,
        "reason": why,
        "request_id": request_id,
    }
    closed = replace(process, state=CANCELLED, updated_at=now, history=[*process.history, entry])
    if governance.update_process(closed, process.version):
        return replace(closed, version=process.version + 1)
    fresh = governance.process(process.id)
    earlier = _repeated(fresh, request_id) if fresh is not None else None
    if earlier is not None:
        return earlier
    state = fresh.state if fresh is not None else "gone"
    raise ProcessError(
        f"process {process.id} was changed by another request meanwhile ({state} now): it "
        "was not cancelled"
    )
