"""Records of what happened: lineage entries and exceptions-inbox entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class LineageEntry:
    """One step of one record's journey: received, merged, delivered ..."""

    trace_id: str
    stage: str
    outcome: str
    at: str
    domain: str
    master_id: str | None = None
    golden_version: int | None = None
    system: str | None = None
    source_key: str | None = None
    source_version: str | None = None
    batch_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


class ExceptionStatus(StrEnum):
    """Where an inbox entry stands."""

    OPEN = "open"
    RESOLVED = "resolved"
    IGNORED = "ignored"


@dataclass(slots=True)
class ExceptionEntry:
    """One entry of the exceptions inbox: the failed record, the rule, and what was done."""

    kind: str
    system: str
    domain: str
    rule: str
    message: str
    signature: str
    payload: Any
    created_at: str
    source_key: str | None = None
    master_id: str | None = None
    field: str | None = None
    locator: str | None = None
    trace_id: str | None = None
    batch_id: str | None = None
    status: ExceptionStatus = ExceptionStatus.OPEN
    attempts: int = 1
    updated_at: str | None = None
    resolution: dict[str, Any] | None = None
    id: int | None = None
    # Who wrote the record and through what (an API write names its person): a retry
    # writes as them, so a four-eyes hold still names its requester.
    actor: str | None = None
    channel: str | None = None


@dataclass(slots=True)
class BatchSummary:
    """One ingest run: where it came from and what came of it."""

    batch_id: str
    system: str
    domain: str
    source: str
    started_at: str
    finished_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
