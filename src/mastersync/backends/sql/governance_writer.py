"""Governance rows written with a change set, in its transaction: the audit log entries of
every golden version, four-eyes holds and their decisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.backends.sql.tables import audit_log, golden, pending_changes, processes, xref
from mastersync.domain.governance.audit import GENESIS, AuditEntry, canonical_json
from mastersync.ports.governance import (
    ProcessConflict,
    ProcessRecord,
    ProcessStep,
    StaleStep,
    StepNotTaken,
)
from mastersync.ports.store import ChangeSet, ConcurrencyError

# The writer's bulk insert: (connection, table, columns, rows).
Insert = Callable[[sa.Connection, str, Sequence[str], list[tuple[Any, ...]]], None]
AUDIT_COLUMNS = (
    "seq",
    "at",
    "master_id",
    "domain",
    "version",
    "action",
    "actor",
    "channel",
    "request_id",
    "changes",
    "prev_hash",
    "hash",
)
# The chain's last entry (built once: every chunk that changes a record reads it).
_AUDIT_HEAD = sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)


def write_governance(conn: sa.Connection, changes: ChangeSet, insert: Insert) -> None:
    """Append audit entries for the change set's events; write holds and decisions.

    Called after the outbox rows are inserted: on PostgreSQL the outbox lock is then held
    until commit, so audit entries are appended by one writer at a time, in commit order;
    SQLite has one writer anyway.
    """
    if changes.events:
        _append_audit(conn, changes, insert)
    if changes.moved_sources:
        _follow(conn, changes)
    if changes.statements:
        _supersede(conn, changes)
    if changes.holds:
        _write_holds(conn, changes)
    for change_id, status, person, at in changes.decisions:
        done = conn.execute(
            sa.update(pending_changes)
            .where(pending_changes.c.id == change_id, pending_changes.c.status == "pending")
            .values(status=status, decided_by=person, decided_at=at)
        )
        if done.rowcount != 1:
            raise ConcurrencyError(f"pending change {change_id} was decided by someone else")
    step = changes.process_step
    if step is not None:
        _take_step(conn, changes, step)


def merged_into(master_id: str) -> sa.Select[tuple[str]]:
    """``master_id`` and every record merged into it, however many merges ago: one
    statement (a recursive query), for an IN beside the caller's own."""
    g = golden.c
    chain = sa.select(g.master_id).where(g.merged_into == master_id).cte(recursive=True)
    # UNION, not UNION ALL: a cycle cannot be, but never loop on one.
    chain = chain.union(sa.select(g.master_id).where(g.merged_into == chain.c.master_id))
    return sa.select(sa.literal(master_id)).union(sa.select(chain.c.master_id))  # type: ignore[return-value]


def process_values(process: ProcessRecord, master_id: str | None) -> dict[str, Any]:
    """A process's columns but its id and version, on the record ``master_id``."""
    return {
        "kind": process.kind,
        "state": process.state,
        "domain": process.domain,
        "master_id": master_id,
        "started_by": process.started_by,
        "created_at": process.created_at,
        "updated_at": process.updated_at,
        "history": process.history,
    }


def _started_from(domain: str, system: str, key: str) -> sa.ColumnElement[bool]:
    """The processes started with this source record (the first history entry names it)."""
    p = processes.c
    started: sa.ColumnElement[bool] = (
        (p.domain == domain)
        & (p.history[(0, "system")].as_string() == system)
        & (p.history[(0, "key")].as_string() == key)
    )
    return started


def _concerned(changes: ChangeSet, step: ProcessStep) -> bool:
    """Whether this change set is the step's write, and ingest took its record: not
    refused (stale or rejected, or failed before the merge: an inbox entry, no lineage),
    whose reasons the caller answers with, and not some other write made while the step
    was set (its lineage has other trace ids). The step's record sent again unchanged is
    skipped without lineage: that is the step's write too, taken."""
    ref = (step.system, step.key)
    said = [e.outcome for e in changes.lineage if (e.system, e.source_key) == ref]
    if said:
        return any(outcome in ("accepted", "unchanged") for outcome in said)
    if any(e.trace_id != step.request_id for e in changes.lineage):
        return False
    return not any((x.system, x.source_key) == ref for x in changes.exceptions)


def _take_step(conn: sa.Connection, changes: ChangeSet, step: ProcessStep) -> None:
    """Record a process step in the transaction of its write, if the write took effect
    and nothing it was decided on changed (see ProcessStep); else raise, which rolls the
    write back with it. What is read here stays as read until commit: the write holds its
    source key's lock (PostgreSQL; SQLite has one writer), and the golden row is locked
    (the write locked it already if it loaded it)."""
    if not _concerned(changes, step):
        return
    process = step.process
    where = (
        (xref.c.domain == process.domain)
        & (xref.c.system == step.system)
        & (xref.c.source_key == step.key)
    )
    master = conn.execute(sa.select(xref.c.master_id).where(where)).scalar()
    if master is None:
        return  # nothing was written (the caller finds the step unrecorded and says so)
    master = str(master)
    row = (
        conn.execute(sa.select(golden).where(golden.c.master_id == master).with_for_update())
        .mappings()
        .first()
    )
    record = rows.golden(row) if row is not None else None
    if step.expected is None:
        _no_other_open(conn, step, master)
    else:
        _unchanged(conn, changes, step, master, record.version if record else 0)
    value = record.attributes.get(step.field) if record is not None else None
    if record is None or value != step.value:
        holder = record.provenance.get(step.field, {}) if record is not None else {}
        raise StepNotTaken(master, step.field, step.value, value, holder)
    values = process_values(process, master)
    if step.expected is None:
        conn.execute(sa.insert(processes).values(id=process.id, version=1, **values))
        return
    done = conn.execute(
        sa.update(processes)
        .where(processes.c.id == process.id, processes.c.version == step.expected)
        .values(**values, version=step.expected + 1)
    )
    if done.rowcount != 1:
        raise ProcessConflict(
            f"process {process.id} was changed by another request meanwhile: the step to "
            f"{process.state} was not taken"
        )


def _no_other_open(conn: sa.Connection, step: ProcessStep, master: str) -> None:
    """A start: refused if the record (or one merged into it) or the starter's source
    record already has an open process (another start got there first)."""
    p = processes.c
    domain = step.process.domain
    q = sa.select(p.id, p.kind, p.state).where(
        p.master_id.in_(merged_into(master)) | _started_from(domain, step.system, step.key)
    )
    for found in conn.execute(q):
        if found.id != step.process.id and (found.kind, found.state) in step.open_states:
            raise ProcessConflict(
                f"{domain} {step.key} ({master}) already has an open process {found.id} "
                f"({found.kind}, {found.state})",
                found.id,
            )


def _unchanged(
    conn: sa.Connection, changes: ChangeSet, step: ProcessStep, master: str, version: int
) -> None:
    """A step: the process is at the version the step was decided on, and the golden
    record and the starter's source record were as the step read them when its write
    began (this write's own changes are the only ones since)."""
    process = step.process
    stored = conn.execute(
        sa.select(processes.c.version, processes.c.state).where(processes.c.id == process.id)
    ).first()
    if stored is None or stored.version != step.expected:
        now = "gone" if stored is None else f"{stored.state} now"
        raise ProcessConflict(
            f"process {process.id} was changed by another request meanwhile ({now}): the "
            f"step to {process.state} was not taken"
        )
    if step.master_id is not None and master != step.master_id:
        raise StaleStep(
            f"{process.domain} {step.key} moved from {step.master_id} to {master} (a merge or "
            "split) while the step was taken"
        )
    if step.golden_version is not None:
        # ``version`` is the record's now: this write's own new versions taken off.
        made = sum(1 for e in changes.events if e.master_id == master)
        before = version - made
        if before != step.golden_version:
            raise StaleStep(
                f"{process.domain} {master} is at version {before}, the step read version "
                f"{step.golden_version}"
            )
    read = step.source_version
    written = next((c for c in changes.contributions if c.ref == (step.system, step.key)), None)
    # An arrival-ordered write numbers the source record's versions one by one: another
    # version than the next of the one read means another write of it came in between.
    if (
        written is not None
        and isinstance(read, int)
        and isinstance(written.version, int)
        and written.version != read + 1
    ):
        raise StaleStep(
            f"{step.system} {step.key} is at version {written.version - 1}, the step read "
            f"version {read}"
        )


def _append_audit(conn: sa.Connection, changes: ChangeSet, insert: Insert) -> None:
    head = conn.execute(_AUDIT_HEAD).first()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    rows: list[tuple[Any, ...]] = []
    actor, channel = changes.actor, changes.channel
    for event in changes.events:
        seq += 1
        entry = AuditEntry(
            seq,
            event.occurred_at,
            event.master_id,
            event.domain,
            event.version,
            event.kind,
            actor,
            channel,
            event.trace_id,
            canonical_json(event.changes),
            prev,
        ).seal()
        prev = entry.hash
        # Column order: AUDIT_COLUMNS.
        rows.append(
            (
                entry.seq,
                entry.at,
                entry.master_id,
                entry.domain,
                entry.version,
                entry.action,
                entry.actor,
                entry.channel,
                entry.request_id,
                entry.changes,
                entry.prev_hash,
                entry.hash,
            )
        )
    # Straight on the driver (COPY on PostgreSQL): SQLAlchemy's per-row parameter
    # processing cost more than the insert itself.
    insert(conn, "audit_log", AUDIT_COLUMNS, rows)


def _follow(conn: sa.Connection, changes: ChangeSet) -> None:
    """Pending changes of moved source records go with them: confirmed, they change the
    record the source is in now, and a supplier with one is payment-blocked there. So do
    the processes they started: a process is about its starter's record, and its lifecycle
    lock must hold there (a split moved the record out from under it)."""
    c = pending_changes.c
    for domain, system, key, master_id in changes.moved_sources:
        conn.execute(
            sa.update(pending_changes)
            .where(
                c.domain == domain, c.system == system, c.source_key == key, c.status == "pending"
            )
            .values(master_id=master_id)
        )
        conn.execute(
            sa.update(processes)
            .where(_started_from(domain, system, key))
            .values(master_id=master_id)
        )


def _supersede(conn: sa.Connection, changes: ChangeSet) -> None:
    """Pending changes a newer version of their record no longer asks for: superseded.

    Looked up by source record, not golden record (a split or merge moves a source record,
    its pending changes with it, see _follow). One read per 500 records of a system
    (indexed); JSON values compare here, as PostgreSQL's json type has no equality."""
    c = pending_changes.c
    said = {(s.system, s.source_key, s.field): s for s in changes.statements}
    by_system: dict[str, set[str]] = {}
    for s in changes.statements:
        by_system.setdefault(s.system, set()).add(s.source_key)
    for system, keys in sorted(by_system.items()):
        wanted = sorted(keys)
        for i in range(0, len(wanted), 500):
            q = sa.select(c.id, c.system, c.source_key, c.field, c.proposed, c.detail).where(
                c.system == system,
                c.source_key.in_(wanted[i : i + 500]),
                c.status == "pending",
            )
            for row in conn.execute(q).all():
                now = said.get((row.system, row.source_key, row.field))
                if now is None or row.proposed == now.value:
                    continue
                conn.execute(
                    sa.update(pending_changes)
                    .where(c.id == row.id, c.status == "pending")
                    .values(
                        status="superseded",
                        decided_at=now.at,
                        detail={**(row.detail or {}), "superseded_by": now.trace_id},
                    )
                )


def _write_holds(conn: sa.Connection, changes: ChangeSet) -> None:
    c = pending_changes.c
    for hold in changes.holds:
        # The same held value again (a retried or re-sent record) is one pending change.
        same = conn.execute(
            sa.select(c.id, c.proposed).where(
                c.master_id == hold.master_id,
                c.field == hold.field,
                c.system == hold.system,
                c.source_key == hold.source_key,
                c.status == "pending",
            )
        ).all()
        if any(row.proposed == hold.proposed for row in same):
            continue
        conn.execute(
            sa.insert(pending_changes).values(
                master_id=hold.master_id,
                domain=hold.domain,
                field=hold.field,
                system=hold.system,
                source_key=hold.source_key,
                proposed=hold.proposed,
                current=hold.current,
                requested_by=hold.requested_by,
                requested_at=hold.requested_at,
                trace_id=hold.trace_id,
                status="pending",
                detail=hold.detail,
            )
        )
