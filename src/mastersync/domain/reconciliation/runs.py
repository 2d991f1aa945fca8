"""A reconciliation run as it is kept, and the inbox entry for a record gone from its source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.records import ExceptionEntry

# The rule of a record the hub holds from a source that the source's full listing lacks.
SOURCE_RECORD_MISSING = "source_record_missing"


class Role(StrEnum):
    """What a system is to a domain in a reconciliation."""

    # It receives the domain (an outbound subscription): the hub's projection is the truth.
    TARGET = "target"
    # It feeds the domain (an inbound mapping): what it lists now is the truth.
    SOURCE = "source"


@dataclass
class ReconciliationRun:
    """The summary of one run: which system, domain and role, when, and counts per bucket."""

    run_id: str
    system: str
    domain: str
    role: Role
    started_at: str
    subscription: str | None = None
    finished_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # What was done about the drift: deliveries queued, records ingested, inbox entries.
    repair: dict[str, Any] = field(default_factory=dict)


def source_missing_problem(system: str, domain: str, key: str, master_id: str) -> Problem:
    """The problem of a source record the hub holds but the source no longer lists."""
    return Problem(
        ProblemKind.DRIFT,
        None,
        SOURCE_RECORD_MISSING,
        f"{domain} {key!r} of {system} is gone from {system}'s full listing, but golden "
        f"record {master_id} still has it as a source (deleted at the source? the "
        "incremental read cannot see deletions)",
    )


def source_missing_entry(
    system: str,
    domain: str,
    key: str,
    master_id: str,
    last_seen: Mapping[str, Any],
    run_id: str,
    at: str,
    read_at: str | None = None,
) -> ExceptionEntry:
    """The inbox entry of a source record gone from its system; ``read_at``: when the hub
    last read the record (its cross-reference's ``received_at``)."""
    problem = source_missing_problem(system, domain, key, master_id)
    return ExceptionEntry(
        problem.kind.value,
        system,
        domain,
        problem.rule,
        problem.message,
        problem.signature(system, domain),
        {
            "system": system,
            "domain": domain,
            "key": key,
            "master_id": master_id,
            "last_seen": dict(last_seen),
            # What the entry is about: the record as the hub read it then. Ignoring the entry
            # accepts that deletion only; a later read (the record made anew) is not covered.
            "read_at": read_at,
            "reconciliation": run_id,
        },
        at,
        source_key=key,
        master_id=master_id,
        locator=f"reconciliation {run_id}",
    )
