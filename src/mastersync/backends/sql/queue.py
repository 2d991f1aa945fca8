"""The delivery queue on SQL: the outbox read as a log, per-subscription queues, receipts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mastersync.backends.sql import rows
from mastersync.backends.sql.tables import (
    applied,
    cursors,
    deliveries,
    exceptions,
    golden,
    outbox,
    xref,
)
from mastersync.backends.sql.writer import BatchWriter
from mastersync.domain.delivery import Applied, Delivery, DeliveryStatus, SubscriptionStats
from mastersync.domain.golden import ChangeEvent
from mastersync.ports.store import ChangeSet, DeliveryResults, ReplaySelection

_OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)
# Latency percentiles are taken over this many most recent deliveries.
_RECENT = 2000


def _is_open(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """``status IN ('pending', 'retrying')`` with the values written out: planners match the
    partial indexes of open deliveries only against the same literal condition."""
    return status.in_([sa.literal_column(f"'{s}'") for s in _OPEN])


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.subscription,
        row.event_id,
        row.position,
        row.master_id,
        row.domain,
        row.version,
        DeliveryStatus(row.status),
        row.attempts,
        row.next_attempt_at,
        row.occurred_at,
        row.enqueued_at,
        row.operation,
        row.delivered_at,
        row.latency_ms,
        row.target_key,
        row.last_error,
        rows.json_value(row.history),
        row.replay,
        row.id,
    )


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class SqlDeliveryQueue:
    """Distribution reads and writes; mixed into the SQL unit of work."""

    conn: sa.Connection
    writer: BatchWriter

    def outbox_after(
        self, position: int, domains: Collection[str], limit: int, *, changes: bool = True
    ) -> list[tuple[int, ChangeEvent]]:
        """Outbox events after ``position``, in order (without their changes and source when
        ``changes`` is false: queueing needs neither, and parsing them is most of the cost)."""
        columns = outbox.c if changes else [c for c in outbox.c if c.name != "payload"]
        q = sa.select(*columns).where(outbox.c.position > position)
        if domains:
            q = q.where(outbox.c.domain.in_(sorted(domains)))
        q = q.order_by(outbox.c.position).limit(limit)
        return [(r["position"], rows.event(r)) for r in self.conn.execute(q).mappings()]

    def outbox_head(self) -> int:
        """The newest outbox position (0 when empty)."""
        return int(self.conn.execute(sa.select(sa.func.max(outbox.c.position))).scalar() or 0)

    def cursor(self, name: str) -> int:
        """How far a named reader has got."""
        q = sa.select(cursors.c.position).where(cursors.c.name == name)
        return int(self.conn.execute(q).scalar() or 0)

    def set_cursor(self, name: str, position: int, at: str) -> None:
        """Move a named reader on (never back)."""
        stmt = _insert(self.conn, cursors).values(name=name, position=position, updated_at=at)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"position": position, "updated_at": at},
                where=cursors.c.position < position,
            )
        )

    def cursor_state(self, name: str) -> str | None:
        """A source connector's saved cursor."""
        q = sa.select(cursors.c.state).where(cursors.c.name == name)
        value = self.conn.execute(q).scalar()
        return None if value is None else str(value)

    def save_cursor_state(self, name: str, state: str | None, at: str) -> None:
        """Save a source connector's cursor."""
        stmt = _insert(self.conn, cursors).values(name=name, position=0, updated_at=at, state=state)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"], set_={"state": state, "updated_at": at}
            )
        )

    def forget_cursor_states(self, prefix: str, before: str) -> int:
        """Drop saved states named ``prefix...`` last saved before ``before``."""
        stmt = sa.delete(cursors).where(
            cursors.c.name.startswith(prefix, autoescape=True), cursors.c.updated_at < before
        )
        return self.conn.execute(stmt).rowcount or 0

    def enqueue(self, items: Sequence[Delivery]) -> int:
        """Add deliveries; ones already queued are kept as they are."""
        if not items:
            return 0
        values = [
            {
                "subscription": d.subscription,
                "event_id": d.event_id,
                "position": d.position,
                "master_id": d.master_id,
                "domain": d.domain,
                "version": d.version,
                "status": d.status.value,
                "operation": d.operation,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
                "occurred_at": d.occurred_at,
                "enqueued_at": d.enqueued_at,
                "history": d.history,
                "replay": d.replay,
            }
            for d in items
        ]
        stmt = _insert(self.conn, deliveries).on_conflict_do_nothing(
            index_elements=["subscription", "event_id", "replay"]
        )
        # RETURNING counts what was inserted; executemany rowcounts are not reliable.
        return len(self.conn.execute(stmt.returning(deliveries.c.id), values).all())

    def due(
        self, subscription: str, now: str, limit: int, *, ordered: bool = False
    ) -> list[Delivery]:
        """Open deliveries whose time has come and that no earlier version holds back.

        An earlier version holds a delivery back while it is open in the queue, and also
        while it is in the outbox but not queued yet: a bus may hand events over out of
        order (JetStream redelivers what a dead consumer held after the backoff), and the
        outbox, not the queue, is the record of what exists. Replays are ordered among
        themselves only. A feed that queues in version order (``ordered``) cannot leave an
        earlier version unqueued, so that costly check is left out for it.
        """
        d, e, q = deliveries.alias("d"), deliveries.alias("e"), deliveries.alias("q")
        o = outbox.alias("o")
        earlier_open = (
            sa.select(sa.literal(1))
            .where(
                # The subscription as a parameter, not a correlation: with it, both
                # planners search the indexes instead of scanning them.
                e.c.subscription == subscription,
                e.c.master_id == d.c.master_id,
                _is_open(e.c.status),
                sa.or_(
                    e.c.version < d.c.version,
                    sa.and_(e.c.version == d.c.version, e.c.id < d.c.id),
                ),
            )
            .exists()
        )
        queued = (
            sa.select(sa.literal(1))
            .where(
                q.c.subscription == subscription,
                q.c.event_id == o.c.event_id,
                q.c.replay == "",
            )
            .exists()
        )
        # Versions at or below the one the consumer has applied can hold nothing back (they
        # are superseded), so only the few after it are looked at, not the entity's history.
        applied_version = (
            sa.select(applied.c.version)
            .where(applied.c.subscription == subscription, applied.c.master_id == o.c.master_id)
            .scalar_subquery()
        )
        earlier_unqueued = (
            sa.select(sa.literal(1))
            .where(
                o.c.master_id == d.c.master_id,
                o.c.version < d.c.version,
                o.c.version > sa.func.coalesce(applied_version, 0),
                ~queued,
            )
            .exists()
        )
        conditions = [
            d.c.subscription == subscription,
            _is_open(d.c.status),
            d.c.next_attempt_at <= now,
            ~earlier_open,
        ]
        if not ordered:
            conditions.append(sa.or_(d.c.replay != "", ~earlier_unqueued))
        query = sa.select(d).where(*conditions).order_by(d.c.id).limit(limit)
        return [_delivery(r) for r in self.conn.execute(query)]

    def events_for(
        self, master_ids: Collection[str], since: Mapping[str, int] | None = None
    ) -> dict[str, list[ChangeEvent]]:
        """Outbox events of the records by master id, oldest first: every one, or from
        version ``since[master id]`` on."""
        found: dict[str, list[ChangeEvent]] = defaultdict(list)
        ids = sorted(set(master_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            q = sa.select(outbox).where(outbox.c.master_id.in_(chunk))
            if since:
                # One bound for the chunk (the unique (master_id, version) index serves it);
                # the few older rows it lets through are dropped below.
                q = q.where(outbox.c.version >= min(since.get(m, 0) for m in chunk))
            q = q.order_by(outbox.c.master_id, outbox.c.version)
            for r in self.conn.execute(q).mappings():
                if since and r["version"] < since.get(r["master_id"], 0):
                    continue
                found[r["master_id"]].append(rows.event(r))
        return dict(found)

    def golden_states(
        self, master_ids: Collection[str]
    ) -> dict[str, tuple[int, dict[str, Any], str | None]]:
        """master id -> (version, attributes, trace id) of the current golden records."""
        g = golden.c
        out: dict[str, tuple[int, dict[str, Any], str | None]] = {}
        ids = sorted(set(master_ids))
        for start in range(0, len(ids), 500):
            q = sa.select(g.master_id, g.version, g.attributes, g.trace_id, g.merged_into).where(
                g.master_id.in_(ids[start : start + 500])
            )
            for master, version, attributes, trace, merged_into in self.conn.execute(q):
                state = rows.json_value(attributes)
                if merged_into is not None:
                    # A merged-away record: consumers deactivate it (see Subscription).
                    state = {**state, "_merged_into": merged_into}
                out[master] = (version, state, trace)
        return out

    def applied_for(self, subscription: str, master_ids: Collection[str]) -> dict[str, Applied]:
        """What the consumer holds of the records."""
        ids = sorted(set(master_ids))
        out: dict[str, Applied] = {}
        for start in range(0, len(ids), 500):
            q = sa.select(applied).where(
                applied.c.subscription == subscription,
                applied.c.master_id.in_(ids[start : start + 500]),
            )
            for r in self.conn.execute(q):
                out[r.master_id] = Applied(
                    r.subscription,
                    r.master_id,
                    r.version,
                    r.target_key,
                    bool(r.active),
                    r.applied_at,
                    rows.json_value(r.target_refs) if r.target_refs else None,
                )
        return out

    def consumer_keys(
        self, system: str, domain: str, master_ids: Collection[str]
    ) -> dict[str, dict[str, str]]:
        """The keys a system holds records under: master id -> {"key": …, other names: …}."""
        ids = sorted(set(master_ids))
        out: dict[str, dict[str, str]] = {}
        x, a = xref.c, applied.c
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            q = (
                sa.select(x.master_id, x.source_key)
                .where(x.domain == domain, x.system == system, x.master_id.in_(chunk))
                .order_by(x.master_id, x.received_at.desc())
            )
            for master, key in self.conn.execute(q):
                out.setdefault(master, {"key": key})
            q2 = sa.select(a.master_id, a.target_refs).where(
                a.subscription.like(f"{system}.%"),
                a.master_id.in_(chunk),
                a.target_refs.is_not(None),
            )
            for master, refs in self.conn.execute(q2):
                out.setdefault(master, {}).update(rows.json_value(refs))
        return out

    def record_results(self, results: DeliveryResults) -> None:
        """Write a round's outcome: statuses, applied versions, consumer keys, receipts."""
        conn = self.conn
        if results.deliveries:
            m = self.writer.mark
            sql = (
                f"UPDATE deliveries SET status = {m}, operation = {m}, attempts = {m}, "
                f"next_attempt_at = {m}, delivered_at = {m}, latency_ms = {m}, "
                f"target_key = {m}, last_error = {m}, history = {m} WHERE id = {m}"
            )
            self.writer.many(
                conn,
                sql,
                [
                    (
                        x.status.value,
                        x.operation,
                        x.attempts,
                        x.next_attempt_at,
                        x.delivered_at,
                        x.latency_ms,
                        x.target_key,
                        x.last_error,
                        rows.dumps(x.history),
                        x.id,
                    )
                    for x in results.deliveries
                ],
            )
        if results.applied:
            a = applied.c
            stmt = _insert(conn, applied)
            stmt = stmt.on_conflict_do_update(
                index_elements=["subscription", "master_id"],
                set_={
                    "version": stmt.excluded.version,
                    "target_key": stmt.excluded.target_key,
                    "active": stmt.excluded.active,
                    "applied_at": stmt.excluded.applied_at,
                    # A consumer that names no other keys this time still has the old ones.
                    "target_refs": sa.func.coalesce(stmt.excluded.target_refs, a.target_refs),
                },
                # A replay of an old version never moves the consumer's record back.
                where=a.version <= stmt.excluded.version,
            )
            conn.execute(
                stmt,
                [
                    {
                        "subscription": x.subscription,
                        "master_id": x.master_id,
                        "version": x.version,
                        "target_key": x.target_key,
                        "active": x.active,
                        "applied_at": x.applied_at,
                        "target_refs": rows.dumps(x.refs) if x.refs else None,
                    }
                    for x in results.applied
                ],
            )
        if results.target_keys:
            # Insert only: a consumer that is also a source keeps its own contribution.
            self.writer.many(
                conn,
                self.writer.insert_sql("xref", rows.XREF_COLUMNS) + " ON CONFLICT DO NOTHING",
                [rows.xref_row(c) for c in results.target_keys],
            )
        self.writer.insert(
            conn, "lineage", rows.LINEAGE_COLUMNS, [rows.lineage_row(e) for e in results.lineage]
        )
        self.writer.write_exceptions(conn, ChangeSet(exceptions=list(results.exceptions)))

    def open_deliveries(self, subscriptions: Collection[str]) -> int:
        """Deliveries still to be attempted in these subscriptions."""
        d = deliveries.c
        q = sa.select(sa.func.count()).where(
            d.subscription.in_(sorted(subscriptions)), _is_open(d.status)
        )
        return int(self.conn.execute(q).scalar() or 0)

    def delivery(self, delivery_id: int) -> Delivery | None:
        """One delivery."""
        row = self.conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row else None

    def reopen(self, delivery_id: int, now: str) -> None:
        """Queue a dead delivery again, attempts reset."""
        self.conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
            )
        )

    def delivery_stats(self, subscriptions: Mapping[str, str]) -> list[SubscriptionStats]:
        """Queue depths, lag and latency per subscription (id -> domain)."""
        d = deliveries.c
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        oldest: dict[str, str] = {}
        q = sa.select(
            d.subscription, d.status, sa.func.count(), sa.func.min(d.occurred_at)
        ).group_by(d.subscription, d.status)
        for sub, status, n, first in self.conn.execute(q):
            counts[sub][status] = n
            if status in _OPEN and (sub not in oldest or first < oldest[sub]):
                oldest[sub] = first
        out = []
        for sub in sorted(set(subscriptions) | set(counts)):
            c = counts.get(sub, {})
            recent = [
                float(x)
                for x in self.conn.execute(
                    sa.select(d.latency_ms)
                    .where(d.subscription == sub, d.latency_ms.is_not(None))
                    .order_by(d.id.desc())
                    .limit(_RECENT)
                ).scalars()
            ]
            cursor = self.cursor(f"sub:{sub}")
            domain = subscriptions.get(sub)
            lag = 0
            if domain is not None:
                behind = (
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.position > cursor, outbox.c.domain == domain)
                )
                lag = int(self.conn.execute(behind).scalar() or 0)
            out.append(
                SubscriptionStats(
                    sub,
                    c.get("pending", 0),
                    c.get("retrying", 0),
                    c.get("delivered", 0),
                    c.get("dead", 0),
                    c.get("skipped", 0),
                    lag,
                    oldest.get(sub),
                    _percentile(recent, 0.5),
                    _percentile(recent, 0.99),
                )
            )
        return out

    def replay_events(
        self, selection: ReplaySelection, domain: str
    ) -> list[tuple[int, ChangeEvent]]:
        """The events a replay would send again, in log order."""
        q = sa.select(outbox).where(outbox.c.domain == domain)
        if selection.since:
            q = q.where(outbox.c.occurred_at >= selection.since)
        if selection.until:
            q = q.where(outbox.c.occurred_at < selection.until)
        if selection.master_id:
            q = q.where(outbox.c.master_id == selection.master_id)
        if selection.event_id:
            q = q.where(outbox.c.event_id == selection.event_id)
        if selection.signature:
            # Dead-letter entries are filed under "subscription#delivery id".
            key = deliveries.c.subscription + "#" + sa.cast(deliveries.c.id, sa.Text)
            dead = (
                sa.select(deliveries.c.event_id)
                .join(exceptions, exceptions.c.source_key == key)
                .where(
                    exceptions.c.signature == selection.signature,
                    deliveries.c.subscription == selection.subscription,
                )
            )
            q = q.where(outbox.c.event_id.in_(dead))
        q = q.order_by(outbox.c.position)
        return [(r["position"], rows.event(r)) for r in self.conn.execute(q).mappings()]
