"""Process APIs (v1): start a process, read where it stands, take its next step, cancel it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mastersync.api.auth import Caller, need
from mastersync.api.context import context
from mastersync.api.errors import ApiError
from mastersync.api.records import load_visible
from mastersync.api.schemas import ProcessOut
from mastersync.api.system import KEY_PATTERN, check_reach, check_write
from mastersync.domain.canonical import DOMAINS
from mastersync.pipeline.governance.processes import (
    FLOWS,
    ProcessError,
    advance,
    cancel,
    start,
)
from mastersync.pipeline.queries import live_record
from mastersync.ports.governance import ProcessRecord

router = APIRouter(prefix="/v1/processes", tags=["process"])


class ProcessStart(BaseModel):
    """The record a process starts with, as the caller's system knows it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, pattern=KEY_PATTERN)
    attributes: dict[str, Any] = Field(default_factory=dict)


def _refused(exc: ProcessError) -> ApiError:
    """A refused start, step or cancel as the API answers it (with the field and rule
    that refused it, where one did)."""
    return ApiError(exc.status, str(exc), problems=exc.problems)


def _out(p: ProcessRecord) -> ProcessOut:
    history = [{k: v for k, v in h.items() if k != "request_id"} for h in p.history]
    return ProcessOut(
        id=p.id,
        kind=p.kind,
        state=p.state,
        domain=p.domain,
        master_id=p.master_id,
        started_by=p.started_by,
        created_at=p.created_at,
        updated_at=p.updated_at,
        history=history,
    )


@router.post("/{kind}", response_model=ProcessOut, status_code=201, summary="Start a process")
def start_process(
    request: Request,
    principal: Caller,
    kind: Literal["customer-onboarding", "item-activation", "supplier-approval"],
    body: ProcessStart,
) -> ProcessOut:
    """Write the record in the process's first state; returns the process and its id."""
    ctx = context(request)
    domain = FLOWS[kind].domain
    # Checked and normalised as the system API's writes are: unknown fields are refused,
    # and the reach check sees the tax id as the merge will (a partner's "136695976" with
    # country DE is DE136695976, another party's customer).
    given = {k: v for k, v in body.attributes.items() if k != "lifecycle_state"}
    try:
        parsed = DOMAINS[domain].model.model_validate(given)
    except ValidationError as exc:
        raise ApiError(
            422,
            "the request is not valid",
            problems=[
                {
                    "field": ".".join(["attributes", *(str(p) for p in err["loc"])]),
                    "rule": err["type"],
                    "message": err["msg"],
                }
                for err in exc.errors()
            ],
        ) from None
    attributes = parsed.model_dump(mode="json", exclude_unset=True)
    check_write(ctx, principal, domain, set(parsed.model_fields_set))
    check_reach(ctx, principal, domain, attributes)
    try:
        process = start(
            ctx.ingestor,
            ctx.governance,
            principal,
            kind,
            body.key,
            attributes,
            request.state.request_id,
        )
    except ProcessError as exc:
        raise _refused(exc) from None
    return _out(process)


def _located(request: Request, process: ProcessRecord, master_id: str) -> str:
    """The record a process is about now: the one its starter's source record belongs to
    (a split moves that record out of the process's, a merge moves it into another; the
    process kept the old id, and was found by no one: never advanced, its lifecycle held
    for good). Without that source record any more, the record its old one was merged into."""
    origin = process.history[0] if process.history else {}
    with context(request).hub.store.unit_of_work(write=False) as uow:
        if "system" in origin and "key" in origin:
            found = uow.find_master(process.domain, str(origin["system"]), str(origin["key"]))
            if found is not None:
                return found
        record = live_record(uow, master_id)
    return record.master_id if record is not None else master_id


def _mine(request: Request, principal: Caller, process_id: str) -> ProcessRecord:
    process = context(request).governance.process(process_id)
    if process is None:
        raise ApiError(404, f"no process {process_id}")
    need(principal, f"{process.domain}:read")
    if process.master_id is not None:
        process.master_id = _located(request, process, process.master_id)
        ctx = context(request)
        try:
            load_visible(
                ctx.hub.store, ctx.governance, principal, process.domain, process.master_id
            )
        except ApiError:
            raise ApiError(404, f"no process {process_id}") from None
    return process


@router.get("/{process_id}", response_model=ProcessOut, summary="Where a process stands")
def get_process(request: Request, principal: Caller, process_id: str) -> ProcessOut:
    """The process's state and every step so far."""
    return _out(_mine(request, principal, process_id))


class ProcessAdvance(BaseModel):
    """Optionally, the state the caller means to move the process on from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(default=None, alias="from")


@router.post("/{process_id}/advance", response_model=ProcessOut, summary="Take the next step")
def advance_process(
    request: Request,
    principal: Caller,
    process_id: str,
    body: ProcessAdvance | None = None,
) -> ProcessOut:
    """Move the record to the next state (some steps need a second person); a request
    repeated with the same X-Request-ID answers as the first did, taking no further step."""
    ctx = context(request)
    process = _mine(request, principal, process_id)
    if process.master_id is None:
        raise ApiError(409, f"process {process_id} has no record")
    try:
        process = advance(
            ctx.ingestor,
            ctx.governance,
            principal,
            process,
            process.master_id,
            request.state.request_id,
            expected=body.from_ if body is not None else None,
        )
    except ProcessError as exc:
        raise _refused(exc) from None
    return _out(process)


class ProcessCancel(BaseModel):
    """Why the process is cancelled (kept in its history, with who cancelled it)."""

    model_config = ConfigDict(extra="forbid")

    # Something besides spaces, and no NUL (PostgreSQL keeps none in text).
    reason: str = Field(min_length=1, max_length=500, pattern=KEY_PATTERN)


@router.post("/{process_id}/cancel", response_model=ProcessOut, summary="Cancel a process")
def cancel_process(
    request: Request, principal: Caller, process_id: str, body: ProcessCancel
) -> ProcessOut:
    """Close an open process without its step: the record keeps its lifecycle state, and
    the process's lock on it is released. Cancelling needs what the step it forgoes needs
    (its scope; a second person where the step needs one); a process stranded by a change
    of the lifecycle's owner is cancelled so too. A request repeated with the same
    X-Request-ID answers as the first did."""
    ctx = context(request)
    process = _mine(request, principal, process_id)
    try:
        process = cancel(ctx.governance, principal, process, body.reason, request.state.request_id)
    except ProcessError as exc:
        raise _refused(exc) from None
    return _out(process)
