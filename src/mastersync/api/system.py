"""System APIs (v1): canonical read, search and upsert per domain, xref look-up, lineage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from mastersync.api.auth import Caller, need
from mastersync.api.context import ApiContext, context
from mastersync.api.errors import ApiError
from mastersync.api.records import PLURALS, load_visible, render
from mastersync.api.schemas import (
    HeldChange,
    LineageStep,
    Record,
    RecordPage,
    WriteOutcome,
    XrefOut,
)
from mastersync.api.settings import SUCCESSORS
from mastersync.api.versioning import deprecate_v1
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.governance.access import Principal, forbidden_writes, restricted_fields
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.identity import key_pairs, natural_keys_of
from mastersync.domain.problems import ConfigError
from mastersync.domain.words import a_or_an
from mastersync.pipeline.governance.approvals import payment_blocked
from mastersync.pipeline.governance.processes import open_processes
from mastersync.pipeline.governance.writes import WriteResult, write_record
from mastersync.ports.store import UnitOfWork

router = APIRouter(prefix="/v1")

# A key has something besides spaces, and no NUL (PostgreSQL keeps none in text).
KEY_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


def held_out(p: PendingChange) -> HeldChange:
    """A pending change as the API shows it (the values stay inside the hub)."""
    assert p.id is not None
    return HeldChange(
        id=p.id,
        master_id=p.master_id,
        domain=p.domain,
        field=p.field,
        system=p.system,
        source_key=p.source_key,
        requested_by=p.requested_by,
        requested_at=p.requested_at,
        status=p.status,
        decided_by=p.decided_by,
        decided_at=p.decided_at,
    )


def record_out(
    ctx: ApiContext, principal: Principal, record: Any, linked: list[str]
) -> dict[str, Any]:
    """The caller's view of a record; suppliers say whether they may be paid."""
    blocked = (
        payment_blocked(ctx.governance, record.master_id, record.attributes)
        if record.domain == "supplier"
        else None
    )
    return render(record, principal, linked, payment_blocked=blocked)


def list_records(
    ctx: ApiContext, principal: Principal, domain: str, limit: int, offset: int, q: str | None
) -> dict[str, Any]:
    """One page of a domain's records within the caller's reach."""
    page = ctx.governance.search(
        domain, principal.rule(domain), text=q, limit=limit + 1, offset=offset
    )
    records = page.records[:limit]
    return {
        "items": [record_out(ctx, principal, r, page.linked[r.master_id]) for r in records],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(page.records) > limit else None,
    }


def check_write(ctx: ApiContext, principal: Principal, domain: str, fields: set[str]) -> str:
    """The system the caller writes as, after its scope, field and object checks."""
    need(principal, f"{domain}:write")
    if principal.system is None:
        raise ApiError(403, f"{principal.consumer} has no source system to write as")
    denied = forbidden_writes(domain, dict.fromkeys(fields), principal.scopes)
    if denied:
        raise ApiError(
            403,
            f"{principal.consumer} may not write {domain} field(s) {', '.join(denied)}",
            problems=[
                {"field": f, "rule": "field_scope", "message": "needs a field-group scope"}
                for f in denied
            ],
        )
    return principal.system


def _joined(ctx: ApiContext, uow: UnitOfWork, domain: str, attributes: dict[str, Any]) -> set[str]:
    """The golden records a write with these attributes joins through a natural key."""
    policy = ctx.hub.landscape.policies[domain]
    keys = key_pairs(natural_keys_of(policy, attributes, ()))
    return set(uow.load_natural_keys(domain, keys).values()) if keys else set()


def check_reach(
    ctx: ApiContext, principal: Principal, domain: str, attributes: dict[str, Any]
) -> None:
    """A channel partner may not write into a record outside its reach through a natural
    key (another party's customer with the same tax id, another channel's item with the
    same GTIN)."""
    rule = principal.rule(domain)
    if rule.linked_system is None and rule.channel is None:
        return
    with ctx.hub.store.unit_of_work(write=False) as uow:
        masters = _joined(ctx, uow, domain, attributes)
        if not masters:
            return
        # An item of another channel is as far out of reach as another party's customer
        # (review found a partner's write with its GTIN linking the partner's system to it).
        # Items only: no other domain has channels.
        by_channel = rule.channel is not None and domain == "item"
        records = [uow.golden(m) for m in sorted(masters)] if by_channel else []
    linked = ctx.governance.linked_systems(masters)
    outside = any(
        rule.linked_system is not None and rule.linked_system not in linked[master]
        for master in masters
    ) or any(
        g is not None
        # A record the partner's own system already feeds is its own, channels or not.
        and not (principal.system is not None and principal.system in linked[g.master_id])
        and rule.channel not in (g.attributes.get("channels") or [])
        for g in records
    )
    if outside:
        raise ApiError(409, f"{a_or_an(domain)} record outside your reach has the same natural key")


def check_lifecycle(
    ctx: ApiContext, domain: str, system: str, key: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    """A record in an open process (onboarding, approval, activation) changes its lifecycle
    through that process only: set straight, an approval awaiting a second person was
    bypassed (a supplier written `approved` by the person who started its approval).
    Returns the attributes to write: a write that leaves the state out keeps it (a record's
    write replaces the system's whole record, so leaving it out cleared it)."""
    # The records the write reaches: by the caller's key, or through a natural key (a second
    # key with the supplier's tax id merges into it as well).
    with ctx.hub.store.unit_of_work(write=False) as uow:
        masters = _joined(ctx, uow, domain, attributes)
        if (own := uow.find_master(domain, system, key)) is not None:
            masters.add(own)
        records = [g for m in sorted(masters) if (g := uow.golden(m)) is not None]
    for current in records:
        processes = open_processes(ctx.governance, current.master_id, ctx.hub.landscape)
        if not processes:
            continue
        state = current.attributes.get("lifecycle_state")
        if "lifecycle_state" not in attributes:
            attributes = {**attributes, "lifecycle_state": state}
            continue
        if attributes["lifecycle_state"] == state:
            continue  # an explicit null is a change too
        process = processes[0]
        raise ApiError(
            409,
            f"{domain} {key} is in process {process.id} ({process.kind}, {process.state}): "
            f"its lifecycle_state changes through POST /v1/processes/{process.id}/advance",
            problems=[{"field": "lifecycle_state", "rule": "process", "message": process.id}],
        )
    return attributes


def write_out(result: WriteResult) -> WriteOutcome:
    """The answer to a write."""
    return WriteOutcome(
        outcome=result.outcome,
        master_id=result.master_id,
        request_id=result.request_id,
        problems=[{"field": f, "rule": r, "message": m} for f, r, m in result.problems],
        ignored_fields=result.ignored,
        held=[held_out(p) for p in result.held],
    )


def _lineage(ctx: ApiContext, principal: Principal, domain: str, ref: str) -> list[LineageStep]:
    record, _ = load_visible(ctx.hub.store, ctx.governance, principal, domain, ref)
    hidden = restricted_fields(domain, principal.scopes)
    with ctx.hub.store.unit_of_work(write=False) as uow:
        entries = uow.lineage(master_id=record.master_id)
    return [
        LineageStep(
            at=e.at,
            stage=e.stage,
            outcome=e.outcome,
            trace_id=e.trace_id,
            system=e.system,
            source_key=e.source_key,
            source_version=e.source_version,
            golden_version=e.golden_version,
            changed=[f for f in e.detail.get("changed", []) if f not in hidden],
        )
        for e in entries
    ]


def _write_model(domain: str) -> type[BaseModel]:
    spec = DOMAINS[domain]
    model: type[BaseModel] = create_model(
        f"{domain.title()}Write",
        __config__=ConfigDict(extra="forbid"),
        key=(str, Field(min_length=1, max_length=200, pattern=KEY_PATTERN, description="your key")),
        version=(
            int | None,
            Field(default=None, ge=0, le=10**15, description="your change counter, if any"),
        ),
        attributes=(spec.model, Field(description=f"canonical {domain} fields")),
    )
    return model


def _add_domain_routes(domain: str) -> None:
    plural = PLURALS[domain]
    write_model = _write_model(domain)
    tag = f"system: {plural}"

    def search(
        request: Request,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        q: Annotated[str | None, Query(max_length=100, description="name contains")] = None,
    ) -> dict[str, Any]:
        need(principal, f"{domain}:read")
        return list_records(context(request), principal, domain, limit, offset, q)

    def get_one(request: Request, principal: Caller, ref: str) -> dict[str, Any]:
        need(principal, f"{domain}:read")
        ctx = context(request)
        record, linked = load_visible(ctx.hub.store, ctx.governance, principal, domain, ref)
        return record_out(ctx, principal, record, linked)

    def lineage(request: Request, principal: Caller, ref: str) -> list[LineageStep]:
        need(principal, f"{domain}:read")
        return _lineage(context(request), principal, domain, ref)

    def upsert(request: Request, principal: Caller, body: Annotated[Any, Body()]) -> WriteOutcome:
        ctx = context(request)
        attributes_model = body.attributes
        system = check_write(ctx, principal, domain, set(attributes_model.model_fields_set))
        attributes = attributes_model.model_dump(mode="json", exclude_unset=True)
        check_reach(ctx, principal, domain, attributes)
        attributes = check_lifecycle(ctx, domain, system, body.key, attributes)
        try:
            result = write_record(
                ctx.ingestor,
                ctx.governance,
                consumer=principal.consumer,
                person=principal.person,
                system=system,
                domain=domain,
                key=body.key,
                version=body.version,
                attributes=attributes,
                request_id=request.state.request_id,
                route=f"POST /v1/{plural}",
            )
        except ConfigError as exc:
            raise ApiError(409, str(exc)) from None
        if result.outcome in ("rejected", "stale"):
            raise ApiError(
                422 if result.outcome == "rejected" else 409,
                f"{domain} {body.key} was {result.outcome}",
                problems=[{"field": f, "rule": r, "message": m} for f, r, m in result.problems],
            )
        return write_out(result)

    upsert.__annotations__["body"] = Annotated[write_model, Body()]
    deprecated = f"/v1/{plural}" in SUCCESSORS
    router.add_api_route(
        f"/{plural}",
        search,
        dependencies=[Depends(deprecate_v1)] if deprecated else [],
        # The OpenAPI document says it too: generated clients and /docs read that, not headers.
        deprecated=deprecated or None,
        methods=["GET"],
        response_model=RecordPage,
        tags=[tag],
        summary=f"Search {plural}",
        operation_id=f"search_{plural}_v1",
    )
    router.add_api_route(
        f"/{plural}",
        upsert,
        methods=["POST"],
        response_model=WriteOutcome,
        tags=[tag],
        summary=f"Create or update {a_or_an(domain)} as your system",
        operation_id=f"upsert_{domain}_v1",
    )
    router.add_api_route(
        f"/{plural}/{{ref}}",
        get_one,
        methods=["GET"],
        response_model=Record,
        tags=[tag],
        summary=f"One {domain} by master id or system:key",
        operation_id=f"get_{domain}_v1",
    )
    router.add_api_route(
        f"/{plural}/{{ref}}/lineage",
        lineage,
        methods=["GET"],
        response_model=list[LineageStep],
        tags=[tag],
        summary=f"What happened to {a_or_an(domain)}",
        operation_id=f"lineage_{domain}_v1",
    )


for _domain in DOMAINS:
    _add_domain_routes(_domain)


@router.get(
    "/xref/{domain}/{system}/{key}",
    response_model=XrefOut,
    tags=["system: xref"],
    summary="The master id a system's key belongs to",
)
def xref(request: Request, principal: Caller, domain: str, system: str, key: str) -> XrefOut:
    """Look up ``system:key`` in a domain."""
    if domain not in DOMAINS:
        raise ApiError(404, f"unknown domain {domain!r}; domains are {', '.join(DOMAINS)}")
    need(principal, f"{domain}:read")
    ctx = context(request)
    record, _ = load_visible(ctx.hub.store, ctx.governance, principal, domain, f"{system}:{key}")
    return XrefOut(system=system, key=key, domain=domain, master_id=record.master_id)
