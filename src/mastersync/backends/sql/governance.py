"""The governance port on the store's SQL database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.backends.sql.governance_writer import merged_into, process_values
from mastersync.backends.sql.tables import (
    api_consumers,
    api_signing_keys,
    api_usage,
    audit_log,
    cursors,
    golden,
    outbox,
    pending_changes,
    processes,
    xref,
)
from mastersync.domain.governance.access import ObjectRule
from mastersync.domain.governance.audit import AuditEntry
from mastersync.domain.governance.four_eyes import PendingChange
from mastersync.ports.governance import Consumer, Page, ProcessRecord, SigningKey, Usage
from mastersync.ports.store import StoreError

# The cursors row with the outbox position auditing began after (written by migration 0013).
AUDIT_START = "audit:since"

_CONSUMER_COLUMNS = (
    "name",
    "person",
    "system",
    "scopes",
    "partner_channel",
    "rate_per_minute",
    "quota_per_day",
    "secret_hash",
    "status",
    "created_at",
    "revoked_at",
)


def _consumer(row: Mapping[Any, Any]) -> Consumer:
    return Consumer(
        name=row["name"],
        person=row["person"],
        scopes=list(rows.json_value(row["scopes"])),
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        system=row["system"],
        partner_channel=row["partner_channel"],
        rate_per_minute=row["rate_per_minute"],
        quota_per_day=row["quota_per_day"],
        status=row["status"],
        revoked_at=row["revoked_at"],
    )


def _audit(row: Mapping[Any, Any]) -> AuditEntry:
    return AuditEntry(
        int(row["seq"]),
        row["at"],
        row["master_id"],
        row["domain"],
        row["version"],
        row["action"],
        row["actor"],
        row["channel"],
        row["request_id"],
        row["changes"],
        row["prev_hash"],
        row["hash"],
    )


def _pending(row: Mapping[Any, Any]) -> PendingChange:
    return PendingChange(
        master_id=row["master_id"],
        domain=row["domain"],
        field=row["field"],
        system=row["system"],
        source_key=row["source_key"],
        proposed=rows.json_value(row["proposed"]),
        current=rows.json_value(row["current"]),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        trace_id=row["trace_id"],
        status=row["status"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        id=int(row["id"]),
        detail=rows.json_value(row["detail"]) or {},
    )


def _process(r: Any) -> ProcessRecord:
    return ProcessRecord(
        r["id"],
        r["kind"],
        r["state"],
        r["domain"],
        r["started_by"],
        r["created_at"],
        r["updated_at"],
        r["master_id"],
        list(rows.json_value(r["history"])),
        int(r["version"]),
    )


class SqlGovernance:
    """See :class:`mastersync.ports.governance.Governance`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- consumers and keys ------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Register a consumer."""
        values = {c: getattr(consumer, c) for c in _CONSUMER_COLUMNS}
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(api_consumers).values(**values))
        except sa.exc.IntegrityError:
            raise StoreError(f"a consumer named {consumer.name!r} exists already") from None

    def consumer(self, name: str) -> Consumer | None:
        """One consumer."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_consumers).where(api_consumers.c.name == name))
                .mappings()
                .first()
            )
        return _consumer(row) if row else None

    def consumers(self) -> list[Consumer]:
        """Every consumer, by name."""
        with self.engine.connect() as conn:
            q = sa.select(api_consumers).order_by(api_consumers.c.name)
            return [_consumer(r) for r in conn.execute(q).mappings()]

    def revoke(self, name: str, at: str) -> bool:
        """Revoke a consumer."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(api_consumers)
                .where(api_consumers.c.name == name, api_consumers.c.status == "active")
                .values(status="revoked", revoked_at=at)
            )
        return done.rowcount == 1

    def signing_keys(self, *, include_retired: bool = False) -> list[SigningKey]:
        """Signing keys, newest first."""
        q = sa.select(api_signing_keys).order_by(
            api_signing_keys.c.created_at.desc(), api_signing_keys.c.kid.desc()
        )
        if not include_retired:
            q = q.where(api_signing_keys.c.retired_at.is_(None))
        with self.engine.connect() as conn:
            return [
                SigningKey(r["kid"], r["secret"], r["created_at"], r["retired_at"])
                for r in conn.execute(q).mappings()
            ]

    def add_signing_key(self, key: SigningKey) -> None:
        """Add a key."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(api_signing_keys).values(
                    kid=key.kid, secret=key.secret, created_at=key.created_at
                )
            )

    def retire_key(self, kid: str, at: str) -> bool:
        """Retire a key."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(api_signing_keys)
                .where(api_signing_keys.c.kid == kid, api_signing_keys.c.retired_at.is_(None))
                .values(retired_at=at)
            )
        return done.rowcount == 1

    # --- usage ---------------------------------------------------------------------------
    def add_usage(self, usage: Collection[Usage]) -> None:
        """Add call counts (one transaction)."""
        if not usage:
            return
        c = api_usage.c
        with self.engine.begin() as conn:
            for u in usage:
                key = (
                    (c.consumer == u.consumer)
                    & (c.api_version == u.api_version)
                    & (c.route == u.route)
                    & (c.day == u.day)
                )
                done = conn.execute(
                    sa.update(api_usage)
                    .where(key)
                    .values(calls=c.calls + u.calls, last_at=sa.func.max(c.last_at, u.last_at))
                    if self.engine.dialect.name == "sqlite"
                    else sa.update(api_usage)
                    .where(key)
                    .values(calls=c.calls + u.calls, last_at=sa.func.greatest(c.last_at, u.last_at))
                )
                if done.rowcount == 0:
                    conn.execute(
                        sa.insert(api_usage).values(
                            consumer=u.consumer,
                            api_version=u.api_version,
                            route=u.route,
                            day=u.day,
                            calls=u.calls,
                            last_at=u.last_at,
                        )
                    )

    def usage(self) -> list[Usage]:
        """Call counts."""
        c = api_usage.c
        q = sa.select(api_usage).order_by(c.consumer, c.api_version, c.route, c.day)
        with self.engine.connect() as conn:
            return [
                Usage(
                    r["consumer"], r["api_version"], r["route"], r["day"], r["calls"], r["last_at"]
                )
                for r in conn.execute(q).mappings()
            ]

    # --- audit and four-eyes -------------------------------------------------------------
    def audit(
        self, master_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit entries in order."""
        q = sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
        if master_id is not None:
            q = q.where(audit_log.c.master_id == master_id)
        with self.engine.connect() as conn:
            return [_audit(r) for r in conn.execute(q.limit(limit)).mappings()]

    def audit_all(self, batch: int = 5000) -> Iterator[AuditEntry]:
        """Every audit entry in order."""
        after = 0
        while True:
            entries = self.audit(after=after, limit=batch)
            yield from entries
            if len(entries) < batch:
                return
            after = entries[-1].seq

    def unaudited(self, limit: int = 100) -> list[tuple[str, int]]:
        """Outbox events since auditing began that have no audit entry."""
        o, a = outbox.alias("o"), audit_log.alias("a")
        # Where auditing began is kept apart from the log (migration 0013): taken from the
        # first audited event, a log emptied of every entry verified as intact. Without
        # that row every event counts.
        start = sa.func.coalesce(
            sa.select(cursors.c.position).where(cursors.c.name == AUDIT_START).scalar_subquery(),
            0,
        )
        q = (
            sa.select(o.c.master_id, o.c.version)
            .select_from(
                o.outerjoin(a, (a.c.master_id == o.c.master_id) & (a.c.version == o.c.version))
            )
            .where(a.c.seq.is_(None), o.c.position > start)
            .order_by(o.c.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(m, int(v)) for m, v in conn.execute(q)]

    def pending(
        self, master_id: str | None = None, status: str | None = "pending", limit: int = 100
    ) -> list[PendingChange]:
        """Held changes, oldest first."""
        c = pending_changes.c
        q = sa.select(pending_changes).order_by(c.id).limit(limit)
        if master_id is not None:
            q = q.where(c.master_id == master_id)
        if status is not None:
            q = q.where(c.status == status)
        with self.engine.connect() as conn:
            return [_pending(r) for r in conn.execute(q).mappings()]

    def pending_change(self, change_id: int) -> PendingChange | None:
        """One held change."""
        q = sa.select(pending_changes).where(pending_changes.c.id == change_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _pending(row) if row else None

    # --- processes -----------------------------------------------------------------------
    def save_process(self, process: ProcessRecord) -> None:
        """Insert or update a process (unconditionally; its version counts the change)."""
        values = process_values(process, process.master_id)
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(processes)
                .where(processes.c.id == process.id)
                .values(**values, version=processes.c.version + 1)
            )
            if done.rowcount == 0:
                conn.execute(
                    sa.insert(processes).values(id=process.id, version=process.version, **values)
                )

    def update_process(self, process: ProcessRecord, expected: int) -> bool:
        """Replace a process if its version is still ``expected``."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(processes)
                .where(processes.c.id == process.id, processes.c.version == expected)
                .values(**process_values(process, process.master_id), version=expected + 1)
            )
        return done.rowcount == 1

    def process(self, process_id: str) -> ProcessRecord | None:
        """One process."""
        with self.engine.connect() as conn:
            r = (
                conn.execute(sa.select(processes).where(processes.c.id == process_id))
                .mappings()
                .first()
            )
        return None if r is None else _process(r)

    def processes_of(self, master_id: str) -> list[ProcessRecord]:
        """The processes about a record, oldest first. A merge, split or unmerge moves a
        process with its starter's source record; one left on a record merged away (before
        processes moved) is found through the merges, however many ago."""
        q = (
            sa.select(processes)
            .where(processes.c.master_id.in_(merged_into(master_id)))
            .order_by(processes.c.created_at, processes.c.id)
        )
        with self.engine.connect() as conn:
            return [_process(r) for r in conn.execute(q).mappings()]

    # --- reads of golden records within object rules -------------------------------------
    def search(
        self,
        domain: str,
        rule: ObjectRule,
        *,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
        where: Mapping[str, str | Collection[str]] | None = None,
    ) -> Page:
        """Golden records of a domain within an object rule."""
        if rule.nothing:
            return Page([], {})
        g = golden.c
        q = sa.select(golden).where(g.domain == domain, g.merged_into.is_(None))
        if rule.linked_system is not None:
            linked = sa.select(xref.c.master_id).where(
                xref.c.domain == domain, xref.c.system == rule.linked_system
            )
            q = q.where(g.master_id.in_(linked))
        if rule.channel is not None:
            q = q.where(self._has_channel(rule.channel))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(g.attributes["name"].as_string().ilike(pattern, escape="\\"))
        for name, wanted in (where or {}).items():
            column = g.attributes[name].as_string()
            if isinstance(wanted, str):
                q = q.where(column == wanted)
            elif not wanted:
                return Page([], {})
            else:
                q = q.where(column.in_(sorted(wanted)))
        if after is not None:
            q = q.where(g.master_id > after).order_by(g.master_id).limit(limit)
        else:
            q = q.order_by(g.updated_at.desc(), g.master_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            found = [rows.golden(r) for r in conn.execute(q).mappings()]
        return Page(found, self.linked_systems([r.master_id for r in found]))

    def _has_channel(self, channel: str) -> sa.TextClause:
        if self.engine.dialect.name == "postgresql":
            return sa.text(
                "golden.attributes -> 'channels' @> jsonb_build_array(CAST(:channel AS text))"
            ).bindparams(channel=channel)
        return sa.text(
            "EXISTS (SELECT 1 FROM json_each(golden.attributes, '$.channels') "
            "WHERE json_each.value = :channel)"
        ).bindparams(channel=channel)

    def linked_systems(self, master_ids: Collection[str]) -> dict[str, list[str]]:
        """Systems with a cross-reference to each record."""
        out: dict[str, list[str]] = {m: [] for m in master_ids}
        if not out:
            return out
        q = (
            sa.select(xref.c.master_id, xref.c.system)
            .where(xref.c.master_id.in_(list(out)))
            .order_by(xref.c.system)
        )
        with self.engine.connect() as conn:
            for master, system in conn.execute(q):
                if system not in out[master]:
                    out[master].append(system)
        return out
