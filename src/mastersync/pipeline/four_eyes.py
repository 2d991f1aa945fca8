"""Four-eyes in the ingest path: a change of a guarded field is held, not applied.

Every write to a golden record -- a file, a connector, the API, a retried inbox entry --
passes through ingest, and ingest holds here; so no path skips the confirmation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.governance.four_eyes import (
    GUARDED,
    PendingChange,
    Statement,
    guarded_changes,
)
from mastersync.domain.ingest import Incoming
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import Ledger
from mastersync.domain.merge import merge
from mastersync.domain.versions import compare
from mastersync.ports.store import ChangeSet


def _master(ledger: Ledger, policy: DomainPolicy, rec: Incoming) -> str | None:
    prev = ledger.xrefs.get((rec.domain, rec.system, rec.key))
    if prev is not None:
        return prev.master_id
    for nk in policy.natural_keys:
        value = nk.value(rec.values)
        if value is not None and (found := ledger.natural.get((rec.domain, nk.name, value))):
            return found
    return None


def _takes(
    ledger: Ledger,
    policy: DomainPolicy,
    master: str,
    rec: Incoming,
    values: Mapping[str, Any],
    name: str,
    now: str,
) -> bool:
    """Whether the golden record's ``name`` would change were ``rec`` merged with
    ``values``."""
    golden = ledger.golden[master]
    members = ledger.members.get(master) or {}
    prev = members.get((rec.system, rec.key))
    version = rec.version if rec.version is not None else (prev.version if prev else 1)
    trial = Contribution(
        rec.domain, rec.system, rec.key, master, version, rec.timestamp, values, rec.digest, now
    )
    others = [m for ref, m in members.items() if ref != trial.ref]
    merged = merge(golden.attributes, golden.provenance, [*others, trial], {name}, policy.fields)
    return name in merged.changes


def hold_guarded(
    ledger: Ledger,
    policy: DomainPolicy,
    rec: Incoming,
    changes: ChangeSet,
    now: str,
    trace_id: str,
) -> list[str]:
    """Take guarded changes out of ``rec`` (the source keeps its previous value) and add a
    pending change for each to ``changes``; returns the fields held."""
    if rec.domain not in GUARDED:
        return []
    master = _master(ledger, policy, rec)
    golden = ledger.golden.get(master) if master else None
    if golden is None or master is None:
        return []
    prev = ledger.xrefs.get((rec.domain, rec.system, rec.key))
    if prev is not None and rec.version is not None:
        order = compare(rec.version, prev.version)
        if order < 0 or (order == 0 and rec.digest != prev.digest):
            # An older version, or the applied one with other content, is stale or
            # unchanged, never taken: holding its guarded values hid a contradiction (the
            # same version with another IBAN became an approval to give, not stale).
            return []
    before = prev.values if prev is not None else {}
    held = []
    names = guarded_changes(rec.domain, rec.values, golden.attributes)
    # A source that stops giving a guarded value changes it too (to another source's value,
    # or to none): that waits for confirmation as well.
    names += [n for n in GUARDED[rec.domain] if n in before and n not in rec.values]
    for name in names:
        if not policy.fields[name].may_write(rec.system):
            continue  # ownership drops it anyway, as a violation
        proposed = rec.values.get(name)
        if (
            name in before
            and before[name] == proposed
            and not _takes(ledger, policy, master, rec, rec.values, name, now)
        ):
            # The source says what it said before, which its record holds confirmed (a held
            # value is never kept, nor one it may not write): nothing new to confirm, unless
            # it would now change the golden record (kept before that was so).
            continue
        # Held, even a value that loses now (a split, or ownership or survivorship changed,
        # would make it win unconfirmed later): the source keeps its previous value, or none
        # if that too would change the golden record unconfirmed.
        if name in before and before[name] != proposed:
            rec.values[name] = before[name]
        else:
            rec.values.pop(name, None)
        if name in rec.values and _takes(ledger, policy, master, rec, rec.values, name, now):
            del rec.values[name]
        changes.holds.append(
            PendingChange(
                master,
                rec.domain,
                name,
                rec.system,
                rec.key,
                proposed,
                golden.attributes.get(name),
                changes.actor,
                now,
                trace_id,
            )
        )
        held.append(name)
    return held


def guarded_sent(rec: Incoming) -> dict[str, Any]:
    """What a record sends for its domain's guarded fields (None: nothing), before
    ``hold_guarded`` takes held values out of it."""
    return {name: rec.values.get(name) for name in GUARDED.get(rec.domain, ())}


def state_guarded(
    changes: ChangeSet,
    master_id: str,
    rec: Incoming,
    sent: Mapping[str, Any],
    now: str,
    trace_id: str,
) -> None:
    """A taken record's guarded values supersede what its earlier versions asked for:
    holds of this change set that ask otherwise go, and the store supersedes its own."""
    for name, value in sent.items():
        changes.holds[:] = [
            h
            for h in changes.holds
            if (h.master_id, h.system, h.source_key, h.field)
            != (master_id, rec.system, rec.key, name)
            or h.proposed == value
        ]
        changes.statements.append(
            Statement(master_id, rec.system, rec.key, name, value, now, trace_id)
        )
