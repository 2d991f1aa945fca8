"""Golden records and the source contributions they are computed from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.versions import Version


@dataclass(slots=True)
class Contribution:
    """What one source record currently says about a master record (its xref row too)."""

    domain: str
    system: str
    key: str
    master_id: str
    version: Version
    # The source's own change time (UTC text), for "most recent" survivorship.
    timestamp: str | None
    # Canonical values in JSON shape, nulls left out; owned fields it may not write removed.
    values: Mapping[str, Any]
    # Hash of everything the source sent, to tell a redelivery from a conflicting change.
    digest: str
    received_at: str

    @property
    def ref(self) -> tuple[str, str]:
        """(system, key): this source record's identity."""
        return (self.system, self.key)


@dataclass(slots=True)
class GoldenRecord:
    """The best current version of one master record, with where each value came from."""

    master_id: str
    domain: str
    version: int
    attributes: dict[str, Any]
    # field -> {"system", "key", "version", "at"} of the contribution that won.
    provenance: dict[str, dict[str, str]]
    created_at: str
    updated_at: str
    quality: float = 1.0
    trace_id: str | None = None
    merged_into: str | None = None

    @property
    def lifecycle_state(self) -> str | None:
        """The record's lifecycle state, if its domain has one."""
        state = self.attributes.get("lifecycle_state")
        return str(state) if state is not None else None


@dataclass(slots=True)
class ChangeEvent:
    """A committed change of a golden record, as it goes into the outbox."""

    event_id: str
    master_id: str
    domain: str
    version: int
    kind: str
    # field -> {"before": ..., "after": ...}
    changes: dict[str, dict[str, Any]]
    schema_version: str
    trace_id: str
    causation_id: str
    occurred_at: str
    source: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The event as a JSON-shaped document."""
        return {
            "event_id": self.event_id,
            "master_id": self.master_id,
            "domain": self.domain,
            "version": self.version,
            "kind": self.kind,
            "changes": self.changes,
            "schema_version": self.schema_version,
            "trace_id": self.trace_id,
            "causation_id": self.causation_id,
            "occurred_at": self.occurred_at,
            "source": self.source,
        }
