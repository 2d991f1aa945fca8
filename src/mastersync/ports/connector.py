"""What inbound connectors hand to the pipeline: records, or failures to read one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SourceRecord:
    """One native record as a connector read it."""

    payload: dict[str, Any]
    # Where it came from, for people: "items.csv:12", "webhook 7f3a".
    locator: str | None = None
    trace_id: str | None = None
    # Re-merge even if this exact version was applied (retries after a config change).
    reapply: bool = False


@dataclass(slots=True)
class ReadFailure:
    """Input a connector could not even parse into a record."""

    locator: str
    rule: str
    message: str
    raw: Any
