"""Four-eyes decisions: a different person with the approve scope confirms or rejects a
held change; a confirmed one becomes a golden version like any other write."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.governance.four_eyes import FourEyesError, PendingChange, check_decider
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.merge import merge
from mastersync.domain.records import LineageEntry
from mastersync.pipeline.ids import new_id, new_trace_id, utc_now
from mastersync.ports.governance import Governance
from mastersync.ports.store import ChangeSet, Store


def payment_blocked(governance: Governance, master_id: str, attributes: Mapping[str, Any]) -> bool:
    """A supplier is not to be paid while a bank account change awaits confirmation, or
    while it is still onboarding (supplier approval) or blocked."""
    if attributes.get("lifecycle_state") in ("onboarding", "blocked"):
        return True
    return any(p.field == "bank_account" for p in governance.pending(master_id=master_id))


def decide(
    store: Store,
    landscape: CompiledLandscape,
    governance: Governance,
    change_id: int,
    person: str,
    *,
    approve: bool,
    channel: str,
    trace_id: str | None = None,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> PendingChange:
    """Confirm or reject a held change as ``person`` (never the one who asked for it)."""
    change = governance.pending_change(change_id)
    if change is None:
        raise FourEyesError(f"no pending change {change_id}")
    check_decider(change, person)
    now, trace = clock(), trace_id or new_trace_id()
    status = "approved" if approve else "rejected"
    changes = ChangeSet(actor=person, channel=channel, decisions=[(change_id, status, person, now)])
    with store.unit_of_work() as uow:
        if approve:
            _apply(uow.load_golden([change.master_id]), change, changes, landscape, now, trace, ids)
        changes.lineage.append(
            LineageEntry(
                trace,
                "approval",
                status,
                now,
                change.domain,
                change.master_id,
                changes.golden[0].version if changes.golden else None,
                change.system,
                change.source_key,
                None,
                None,
                {
                    "change": change_id,
                    "field": change.field,
                    "requested_by": change.requested_by,
                    "decided_by": person,
                },
            )
        )
        uow.write(changes)
        uow.commit()
    return dataclasses.replace(change, status=status, decided_by=person, decided_at=now)


def _apply(
    loaded: tuple[list[GoldenRecord], list[Contribution]],
    change: PendingChange,
    changes: ChangeSet,
    landscape: CompiledLandscape,
    now: str,
    trace: str,
    ids: Callable[[str], str],
) -> None:
    records, members = loaded
    golden = next((g for g in records if g.master_id == change.master_id), None)
    source = next((m for m in members if m.ref == (change.system, change.source_key)), None)
    if golden is None or source is None:
        raise FourEyesError(
            f"change {change.id}: {change.system} record {change.source_key} is no longer "
            f"part of {change.master_id}; reject the change instead"
        )
    policy = landscape.policies[change.domain]
    values = dict(source.values)
    if change.proposed is None:
        values.pop(change.field, None)  # the source stopped giving the value
    else:
        values[change.field] = change.proposed
    updated = dataclasses.replace(source, values=values, received_at=now)
    others = [m for m in members if m.master_id == golden.master_id and m.ref != updated.ref]
    merged = merge(
        golden.attributes, golden.provenance, [*others, updated], {change.field}, policy.fields
    )
    changes.contributions.append(updated)
    if not merged.changes:
        return
    version = golden.version + 1
    changes.golden.append(
        GoldenRecord(
            golden.master_id,
            golden.domain,
            version,
            merged.attributes,
            merged.provenance,
            golden.created_at,
            now,
            golden.quality,
            trace,
        )
    )
    changes.events.append(
        ChangeEvent(
            ids("evt"),
            golden.master_id,
            golden.domain,
            version,
            "updated",
            merged.changes,
            policy.spec.schema_version,
            trace,
            f"approval/{change.id}",
            now,
            {"system": change.system, "key": change.source_key, "version": str(source.version)},
        )
    )
