"""Request and response documents of the API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(_Doc):
    """A golden record as the caller may see it."""

    master_id: str
    domain: str
    version: int
    attributes: dict[str, Any]
    provenance: dict[str, dict[str, str]]
    quality: float
    updated_at: str
    systems: list[str]
    payment_blocked: bool | None = None


class RecordPage(_Doc):
    """One page of records, by offset."""

    items: list[Record]
    limit: int
    offset: int
    next_offset: int | None


class RecordPageV2(_Doc):
    """One page of records, by cursor: stable while records change."""

    items: list[Record]
    limit: int
    next_cursor: str | None


class HeldChange(_Doc):
    """A change of a guarded field waiting for a second person."""

    id: int
    master_id: str
    domain: str
    field: str
    system: str
    source_key: str
    requested_by: str
    requested_at: str
    status: str
    decided_by: str | None = None
    decided_at: str | None = None


class Problem(_Doc):
    """Why (part of) a write was not applied."""

    field: str
    rule: str
    message: str


class WriteOutcome(_Doc):
    """What came of a write."""

    outcome: str = Field(description="accepted, unchanged, stale or rejected")
    master_id: str | None
    request_id: str
    problems: list[Problem]
    ignored_fields: list[str] = Field(description="owned by another system: not applied")
    held: list[HeldChange] = Field(description="four-eyes: waiting for confirmation")


class XrefOut(_Doc):
    """Which golden record a system's key belongs to."""

    system: str
    key: str
    domain: str
    master_id: str


class LineageStep(_Doc):
    """One step of a record's journey (values left out)."""

    at: str
    stage: str
    outcome: str
    trace_id: str
    system: str | None
    source_key: str | None
    source_version: str | None
    golden_version: int | None
    changed: list[str]


class InboxEntry(_Doc):
    """An exceptions-inbox entry."""

    id: int
    kind: str
    status: str
    system: str
    domain: str
    source_key: str | None
    master_id: str | None
    field: str | None
    rule: str
    message: str
    signature: str
    attempts: int
    created_at: str
    trace_id: str | None


class InboxAction(_Doc):
    """What an inbox action did."""

    resolved: list[int]
    still_failing: list[int]
    skipped: dict[str, str]
    # Dead letters sent back to the delivery queue (their outcome comes with the hub's rounds).
    queued: list[int] = []


class IgnoreBody(_Doc):
    """Why entries are closed without acting."""

    reason: str = Field(min_length=1, max_length=500)


class DeliveryStats(_Doc):
    """How one subscription keeps up."""

    subscription: str
    pending: int
    retrying: int
    delivered: int
    dead: int
    skipped: int
    lag: int
    oldest_open_at: str | None
    p50_ms: float | None
    p99_ms: float | None
    # Of the skipped, the versions that sent the consumer nothing new.
    unchanged: int = 0
    # pending..skipped count each version once; the deliveries replays queued, and of them
    # the still open, are these.
    replayed: int = 0
    replaying: int = 0


class AuditOut(_Doc):
    """One audit-log entry."""

    seq: int
    at: str
    master_id: str
    version: int
    action: str
    actor: str
    channel: str
    request_id: str
    changes: dict[str, dict[str, Any]]
    hash: str


class TokenOut(_Doc):
    """An OAuth2 access token."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class ProcessOut(_Doc):
    """A process and where it stands."""

    id: str
    kind: str
    state: str
    domain: str
    master_id: str | None
    started_by: str
    created_at: str
    updated_at: str
    history: list[dict[str, Any]]


class ErrorDetail(BaseModel):
    """What went wrong, for the caller."""

    status: int
    code: str
    message: str
    request_id: str | None = None
    problems: list[Problem] | None = None


class ErrorDoc(BaseModel):
    """Every error answer has this shape."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorDoc, "description": description}


# Answers any operation may give besides its own.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("the request cannot be read"),
    401: _error("no or bad credentials"),
    403: _error("a scope or field group is missing"),
    404: _error("no such record within your reach"),
    409: _error("conflicts with the record's state"),
    413: _error("the body is too large"),
    422: _error("the request is not valid: names each field and rule"),
    429: _error("over the rate limit or quota; see Retry-After"),
    500: _error("failed inside the hub; quote the request id"),
    503: _error("took too long"),
}
