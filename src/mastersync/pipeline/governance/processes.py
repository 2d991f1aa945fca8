"""Process APIs: customer onboarding, item activation, supplier approval.

Each process moves one golden record through lifecycle states; every step is a write of
the starter's system through ingest (so ownership, audit and four-eyes apply), and a step
marked ``second_person`` must be taken by someone other than the starter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mastersync.domain.governance.access import Principal
from mastersync.domain.governance.four_eyes import GUARDED
from mastersync.pipeline.governance.writes import WriteResult, write_record
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.governance import Governance, ProcessRecord


class ProcessError(Exception):
    """A process step that cannot be taken, with the reason."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


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


def open_processes(governance: Governance, master_id: str) -> list[ProcessRecord]:
    """A record's processes that still have a step to take."""
    return [
        p
        for p in governance.processes_of(master_id)
        if p.kind in FLOWS and any(s.source == p.state for s in FLOWS[p.kind].steps)
    ]


def _missing(value: Any, path: str) -> bool:
    """Whether a readiness field (dotted: a part of a structured value) is absent or empty."""
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return True
        value = value.get(part)
    return value in (None, "", [], {})


def _may_set_lifecycle(ingestor: Ingestor, domain: str, system: str) -> None:
    """Refuse a step before it writes anything when ``system`` may not write the lifecycle
    (another system owns it): the write would take the other fields and drop the state."""
    policy = ingestor.landscape.policies[domain].fields.get("lifecycle_state")
    if policy is not None and not policy.may_write(system):
        owners = ", ".join(policy.owners)
        raise ProcessError(
            f"lifecycle_state of {domain} is owned by {owners}, not {system}: a process "
            f"started as {system} cannot set it"
        )


def _write(
    ingestor: Ingestor,
    governance: Governance,
    principal: Principal,
    system: str,
    domain: str,
    key: str,
    attributes: dict[str, Any],
    request_id: str,
    route: str,
) -> WriteResult:
    result = write_record(
        ingestor,
        governance,
        consumer=principal.consumer,
        person=principal.person,
        system=system,
        domain=domain,
        key=key,
        version=None,
        attributes=attributes,
        request_id=request_id,
        route=route,
    )
    if result.outcome in ("rejected", "stale"):
        problems = "; ".join(f"{f}: {m}" for f, _, m in result.problems)
        raise ProcessError(f"{domain} {key} was {result.outcome}: {problems}", 422)
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
    """Start a process: write the record in its first lifecycle state as the caller's system."""
    flow = FLOWS[kind]
    if principal.system is None:
        raise ProcessError(f"{principal.consumer} has no source system to write as", 403)
    _may_set_lifecycle(ingestor, flow.domain, principal.system)
    with ingestor.store.unit_of_work(write=False) as uow:
        known = uow.find_master(flow.domain, principal.system, key)
    if known is not None:
        for process in open_processes(governance, known):
            if process.history and process.history[0].get("request_id") == request_id:
                return process  # the same start again (a retry): the process it started
            # A second start would set the record back to the first state under another
            # process, and both would wait for the same record.
            raise ProcessError(
                f"{flow.domain} {key} already has an open process {process.id} "
                f"({process.kind}, {process.state})"
            )
    values = {**attributes, "lifecycle_state": flow.first_lifecycle}
    result = _write(
        ingestor,
        governance,
        principal,
        principal.system,
        flow.domain,
        key,
        values,
        request_id,
        f"POST /v1/processes/{kind}",
    )
    now = clock()
    process = ProcessRecord(
        new_id("prc"),
        kind,
        flow.first,
        flow.domain,
        principal.person,
        now,
        now,
        result.master_id,
        [
            {
                "at": now,
                "step": "start",
                "state": flow.first,
                "by": principal.person,
                "system": principal.system,
                "key": key,
                "request_id": request_id,
            }
        ],
    )
    governance.save_process(process)
    return process


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
        raise ProcessError(str(entry["refused"]))
    # The process as that step left it, not as later steps (by others) moved it.
    return replace(
        process,
        state=str(entry["state"]),
        updated_at=str(entry["at"]),
        history=process.history[: at + 1],
    )


def _step_values(
    ingestor: Ingestor,
    governance: Governance,
    master_id: str,
    system: str,
    key: str,
    lifecycle: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The golden record's attributes and what the step writes: the starter system's
    contribution as stored now (read just before the write, so a write of that system made
    while the step was under way is not reverted) with only the lifecycle changed."""
    with ingestor.store.unit_of_work(write=False) as uow:
        record = uow.golden(master_id)
        members = uow.members(master_id)
    source = next((m for m in members if m.ref == (system, key)), None)
    if record is None or source is None:
        raise ProcessError(f"the record of {system} {key} is gone or was merged away")
    values = {**source.values, "lifecycle_state": lifecycle}
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
    return dict(record.attributes), values


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
    the state the caller means to move on from (a different one is refused)."""
    flow = FLOWS[process.kind]
    earlier = _repeated(process, request_id)
    if earlier is not None:
        return earlier
    if expected is not None and expected != process.state:
        raise ProcessError(
            f"process {process.id} is {process.state}, not {expected}: the step was not taken"
        )
    step = next((s for s in flow.steps if s.source == process.state), None)
    if step is None:
        raise ProcessError(f"process {process.id} is {process.state}: no step is left")
    if step.scope not in principal.scopes:
        raise ProcessError(f"the step to {step.target} needs the scope {step.scope!r}", 403)
    if step.second_person and principal.person == process.started_by:
        raise ProcessError(
            f"process {process.id} was started by {principal.person}: a different person "
            f"must take the step to {step.target} (four-eyes)",
            403,
        )
    origin = process.history[0]
    system, key = str(origin["system"]), str(origin["key"])
    current, values = _step_values(ingestor, governance, master_id, system, key, step.lifecycle)
    missing = [f for f in flow.ready.get(step.target, ()) if _missing(current, f)]
    if missing:
        raise ProcessError(
            f"the {flow.domain} is not ready for {step.target}: {', '.join(missing)} missing"
        )
    _may_set_lifecycle(ingestor, flow.domain, system)
    result = _write(
        ingestor,
        governance,
        principal,
        system,
        flow.domain,
        key,
        values,
        request_id,
        "POST /v1/processes/{id}/advance",
    )
    now = clock()
    entry: dict[str, Any] = {
        "at": now,
        "step": step.target,
        "by": principal.person,
        "request_id": request_id,
    }
    if "lifecycle_state" in result.ignored:
        # The lifecycle is owned by another system (the landscape changed between the
        # check and the write): the step did not take. Other fields the system may not
        # write (owned elsewhere) are dropped as on any write; the step stands.
        entry["state"] = process.state
        entry["refused"] = f"lifecycle_state is owned by another system than {origin['system']}"
        process.history.append(entry)
        process.updated_at = now
        governance.save_process(process)
        raise ProcessError(str(entry["refused"]))
    process.state = step.target
    entry["state"] = step.target
    process.history.append(entry)
    process.updated_at = now
    governance.save_process(process)
    return process
