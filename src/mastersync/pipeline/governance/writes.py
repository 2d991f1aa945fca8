"""Writes through the API: canonical records ingested as the consumer's own system, so
ownership, survivorship, validation, four-eyes and the audit log apply as to any file."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.domain.mapping.mapper import Mapper
from mastersync.domain.mapping.spec import MappingSpec, ValueOp, VersionKind, VersionSpec
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.governance import Governance, ProcessStep

# Where a record written through the API was read (its inbox entries keep it).
API_LOCATOR = "api "


@cache
def canonical_mapper(system: str, domain: str, versioned: bool) -> Mapper:
    """A mapping that takes canonical attributes as they are: ``{key, version?, attributes}``."""
    spec = MappingSpec(
        key="key",
        version=(
            VersionSpec(from_="version", kind=VersionKind.COUNTER)
            if versioned
            else VersionSpec(kind=VersionKind.ARRIVAL)
        ),
        fields={
            name: ValueOp(from_=f"attributes.{name}", optional=True)
            for name in DOMAINS[domain].fields
        },
    )
    return Mapper(system, domain, spec, numbers_as_text=False)


@dataclass
class WriteResult:
    """What came of one write."""

    outcome: str
    master_id: str | None
    request_id: str
    # (field, rule, message) of each reason the record was not applied.
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    # Fields the system may not write (owned by another system): dropped, in the inbox.
    ignored: list[str] = field(default_factory=list)
    held: list[PendingChange] = field(default_factory=list)


def write_record(
    ingestor: Ingestor,
    governance: Governance,
    *,
    consumer: str,
    person: str,
    system: str,
    domain: str,
    key: str,
    version: int | None,
    attributes: dict[str, Any],
    request_id: str,
    route: str,
    step: ProcessStep | None = None,
) -> WriteResult:
    """Ingest one canonical record as ``system`` (taking a process ``step`` with it); the
    caller checked scopes and fields."""
    payload: dict[str, Any] = {"key": key, "attributes": attributes}
    if version is not None:
        payload["version"] = version
    record = SourceRecord(payload, locator=f"{API_LOCATOR}{request_id}", trace_id=request_id)
    report = ingestor.ingest(
        system,
        domain,
        [record],
        source=f"api:{consumer}",
        actor=person,
        channel=f"api:{consumer} {route}",
        mapper=canonical_mapper(system, domain, version is not None),
        step=step,
    )
    outcome = next((k for k, n in report.outcomes.items() if n), "unchanged")
    master = report.master_ids[0] if report.master_ids else None
    if master is None and outcome == "unchanged":
        # A write that changed nothing (a retry, or the record already says so) names no
        # record in the report, but it is about one: the record its key belongs to.
        with ingestor.store.unit_of_work(write=False) as uow:
            master = uow.find_master(domain, system, key)
    problems = [(f or "-", rule, message) for _, f, rule, message in report.tally.rejects]
    ignored = sorted({f for kind, f, _ in report.problems if kind == "ownership_violation"})
    held = (
        [p for p in governance.pending(master_id=master) if p.trace_id == request_id]
        if master
        else []
    )
    return WriteResult(outcome, master, request_id, problems, ignored, held)
