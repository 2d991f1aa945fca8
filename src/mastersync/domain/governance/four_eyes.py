"""Four-eyes: changes to sensitive fields wait for a second person's confirmation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# domain -> fields whose change is held until a different person with `approve` confirms.
GUARDED: dict[str, tuple[str, ...]] = {
    "customer": ("credit_limit",),
    "supplier": ("bank_account",),
}


class FourEyesError(Exception):
    """A confirmation that may not happen (own change, already decided, unknown)."""


class OwnChangeError(FourEyesError):
    """The person who asked for a change tried to confirm it."""


@dataclass(slots=True)
class PendingChange:
    """A held change of one guarded field of one golden record."""

    master_id: str
    domain: str
    field: str
    system: str
    source_key: str
    proposed: Any
    current: Any
    requested_by: str
    requested_at: str
    trace_id: str
    status: str = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    id: int | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Statement:
    """What a newer version of a source record says for a guarded field: its pending
    changes of that field that propose anything else are superseded (approving one would
    install a value the source no longer sends)."""

    master_id: str
    system: str
    source_key: str
    field: str
    value: Any
    at: str
    trace_id: str


def guarded_changes(
    domain: str, values: Mapping[str, Any], golden: Mapping[str, Any] | None
) -> list[str]:
    """Guarded fields whose value would change on an existing golden record.

    A new record's first values are not held: onboarding a supplier or customer is its own
    process (supplier approval, customer onboarding) with its own confirmation.
    """
    if golden is None:
        return []
    return [f for f in GUARDED.get(domain, ()) if f in values and values[f] != golden.get(f)]


def check_decider(change: PendingChange, decider_person: str) -> None:
    """Raise unless a different person than the requester decides a pending change."""
    if change.status != "pending":
        raise FourEyesError(f"change {change.id} is already {change.status}")
    if change.requested_by == decider_person:
        raise OwnChangeError(
            f"change {change.id} was requested by {decider_person}: a different person must "
            "confirm it (four-eyes)"
        )
