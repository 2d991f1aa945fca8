"""System APIs for running the hub (v1): exceptions inbox, deliveries, audit log, and the
four-eyes confirmations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from mastersync.api.auth import Caller, need
from mastersync.api.context import context
from mastersync.api.errors import ApiError
from mastersync.api.records import load_visible
from mastersync.api.schemas import (
    AuditOut,
    DeliveryStats,
    HeldChange,
    IgnoreBody,
    InboxAction,
    InboxEntry,
)
from mastersync.api.system import held_out
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.governance.access import restricted_fields
from mastersync.domain.governance.four_eyes import FourEyesError, OwnChangeError
from mastersync.domain.problems import ConfigError
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.pipeline.exceptions import InboxError
from mastersync.pipeline.governance.approvals import decide
from mastersync.ports.store import ConcurrencyError, ExceptionFilter

router = APIRouter(prefix="/v1")
Id = Annotated[int, Path(ge=1, le=2**62)]


def _entry(e: ExceptionEntry) -> InboxEntry:
    assert e.id is not None
    return InboxEntry(
        id=e.id,
        kind=e.kind,
        status=e.status.value,
        system=e.system,
        domain=e.domain,
        source_key=e.source_key,
        master_id=e.master_id,
        field=e.field,
        rule=e.rule,
        message=e.message,
        signature=e.signature,
        attempts=e.attempts,
        created_at=e.created_at,
        trace_id=e.trace_id,
    )


@router.get("/exceptions", response_model=list[InboxEntry], tags=["system: inbox"])
def exceptions(
    request: Request,
    principal: Caller,
    status: Annotated[ExceptionStatus, Query()] = ExceptionStatus.OPEN,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    system: Annotated[str | None, Query(max_length=40)] = None,
    domain: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InboxEntry]:
    """The exceptions inbox, newest first (admin)."""
    need(principal, "admin")
    f = ExceptionFilter(status=status, kind=kind, system=system, domain=domain, limit=limit)
    with context(request).hub.store.unit_of_work(write=False) as uow:
        return [_entry(e) for e in uow.exceptions(f)]


def _one(request: Request, entry_id: Id) -> ExceptionEntry:
    with context(request).hub.store.unit_of_work(write=False) as uow:
        entry = uow.exception(entry_id)
    if entry is None:
        raise ApiError(404, f"no inbox entry {entry_id}")
    return entry


@router.get("/exceptions/{entry_id}", response_model=InboxEntry, tags=["system: inbox"])
def exception(request: Request, principal: Caller, entry_id: Id) -> InboxEntry:
    """One inbox entry (admin)."""
    need(principal, "admin")
    return _entry(_one(request, entry_id))


@router.post("/exceptions/{entry_id}/retry", response_model=InboxAction, tags=["system: inbox"])
def retry(request: Request, principal: Caller, entry_id: Id) -> InboxAction:
    """Run the entry's record again through the current landscape (admin)."""
    need(principal, "admin")
    entry = _one(request, entry_id)
    try:
        report = context(request).hub.inbox.retry([entry])
    except (InboxError, ConfigError) as exc:
        raise ApiError(409, str(exc)) from None
    return InboxAction(
        resolved=report.resolved,
        still_failing=report.still_failing,
        skipped={str(k): v for k, v in report.skipped.items()},
        queued=report.queued,
    )


@router.post("/exceptions/{entry_id}/ignore", response_model=InboxAction, tags=["system: inbox"])
def ignore(request: Request, principal: Caller, entry_id: Id, body: IgnoreBody) -> InboxAction:
    """Close the entry without acting, recording who and why (admin)."""
    need(principal, "admin")
    entry = _one(request, entry_id)
    try:
        done = context(request).hub.inbox.ignore([entry], principal.person, body.reason)
    except InboxError as exc:
        raise ApiError(422, str(exc)) from None
    skipped = {} if done else {str(entry_id): f"already {entry.status.value}"}
    return InboxAction(resolved=done, still_failing=[], skipped=skipped)


@router.get("/deliveries", response_model=list[DeliveryStats], tags=["system: deliveries"])
def deliveries(request: Request, principal: Caller) -> list[DeliveryStats]:
    """Per subscription: queue depths, lag and latency (admin)."""
    need(principal, "admin")
    hub = context(request).hub
    subs = {s.id: s.domain for s in hub.landscape.subscriptions.values()}
    with hub.store.unit_of_work(write=False) as uow:
        stats = uow.delivery_stats(subs)
    return [DeliveryStats(**vars(s)) for s in stats]


@router.get("/audit/{domain}/{ref}", response_model=list[AuditOut], tags=["system: audit"])
def audit(request: Request, principal: Caller, domain: str, ref: str) -> list[AuditOut]:
    """Every write to a golden record: who, when, through what, each field before/after
    (admin)."""
    need(principal, "admin")
    if domain not in DOMAINS:
        raise ApiError(404, f"unknown domain {domain!r}; domains are {', '.join(DOMAINS)}")
    ctx = context(request)
    record, _ = load_visible(ctx.hub.store, ctx.governance, principal, domain, ref)
    # Fields the caller's scopes do not show (credit, bank details) are left out here too;
    # the hash still covers them, and `mastersync audit verify` checks the whole entry.
    hidden = restricted_fields(domain, principal.scopes)
    return [
        AuditOut(
            seq=e.seq,
            at=e.at,
            master_id=e.master_id,
            version=e.version,
            action=e.action,
            actor=e.actor,
            channel=e.channel,
            request_id=e.request_id,
            changes={f: c for f, c in e.field_changes().items() if f not in hidden},
            hash=e.hash,
        )
        for e in ctx.governance.audit(master_id=record.master_id)
    ]


@router.get("/approvals", response_model=list[HeldChange], tags=["four-eyes"])
def approvals(
    request: Request,
    principal: Caller,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|superseded)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[HeldChange]:
    """Held changes of guarded fields (approve)."""
    need(principal, "approve")
    return [held_out(p) for p in context(request).governance.pending(status=status, limit=limit)]


def _decide(request: Request, principal: Caller, change_id: int, approve: bool) -> HeldChange:
    need(principal, "approve")
    ctx = context(request)
    verb = "approve" if approve else "reject"
    try:
        change = decide(
            ctx.hub.store,
            ctx.hub.landscape,
            ctx.governance,
            change_id,
            principal.person,
            approve=approve,
            channel=f"api:{principal.consumer} POST /v1/approvals/{{id}}/{verb}",
            trace_id=request.state.request_id,
        )
    except OwnChangeError as exc:
        raise ApiError(403, str(exc)) from None
    except FourEyesError as exc:
        status = 404 if str(exc).startswith("no pending change") else 409
        raise ApiError(status, str(exc)) from None
    except ConcurrencyError:
        raise ApiError(409, f"change {change_id} was decided by someone else") from None
    return held_out(change)


@router.post("/approvals/{change_id}/approve", response_model=HeldChange, tags=["four-eyes"])
def approve(request: Request, principal: Caller, change_id: Id) -> HeldChange:
    """Confirm a held change; it becomes a golden version. Not by the person who asked."""
    return _decide(request, principal, change_id, True)


@router.post("/approvals/{change_id}/reject", response_model=HeldChange, tags=["four-eyes"])
def reject(request: Request, principal: Caller, change_id: Id) -> HeldChange:
    """Reject a held change; the golden record keeps its value."""
    return _decide(request, principal, change_id, False)
