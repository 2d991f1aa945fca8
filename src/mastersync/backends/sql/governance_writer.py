"""Governance rows written with a change set, in its transaction: the audit log entries of
every golden version, four-eyes holds and their decisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql.tables import audit_log, pending_changes, processes
from mastersync.domain.governance.audit import GENESIS, AuditEntry, canonical_json
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
    c, p = pending_changes.c, processes.c
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
            .where(
                p.domain == domain,
                p.history[(0, "system")].as_string() == system,
                p.history[(0, "key")].as_string() == key,
            )
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
