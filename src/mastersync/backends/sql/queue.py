"""The delivery queue on SQL: the outbox read as a log, per-subscription queues, receipts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mastersync.backends.sql import rows
from mastersync.backends.sql.tables import (
    applied,
    cursors,
    deliveries,
    exceptions,
    outbox,
    xref,
)
from mastersync.backends.sql.writer import BatchWriter
from mastersync.domain.delivery import (
    UNCHANGED,
    Applied,
    Delivery,
    DeliveryStatus,
    SubscriptionStats,
)
from mastersync.domain.golden import ChangeEvent
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import ExceptionStatus
from mastersync.ports.store import ChangeSet, DeliveryResults, ReplaySelection

_OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)
_DELIVERY_COLUMNS = tuple(c.name for c in deliveries.c if c.name != "id")
_APPLIED_COLUMNS = (
    "subscription",
    "master_id",
    "version",
    "target_key",
    "active",
    "applied_at",
    "target_refs",
    "payload_digest",
)
# Latency percentiles are taken over this many most recent deliveries.
_RECENT = 2000


def _digest_at(stored: str | None, version: int) -> str | None:
    """The payload digest kept for ``version`` ("<version>:<digest>"), or None when it was
    kept for another: a hub of an older release moves the version on without it."""
    if not stored:
        return None
    at, _, digest = stored.partition(":")
    return digest if at == str(version) else None


def _sent_version(stored: str | None) -> int | None:
    """The version a kept payload digest was taken of (the last one sent in full)."""
    at = stored.partition(":")[0] if stored else ""
    return int(at) if at.isdigit() else None


def _is_open(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """``status IN ('pending', 'retrying')`` with the values written out: planners match the
    partial indexes of open deliveries only against the same literal condition."""
    return status.in_([sa.literal_column(f"'{s}'") for s in _OPEN])


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _delivery(row: Any) -> Delivery:
    instant = rows.instant
    return Delivery(
        row.subscription,
        row.event_id,
        row.position,
        row.master_id,
        row.domain,
        row.version,
        DeliveryStatus(row.status),
        row.attempts,
        instant(row.next_attempt_at),
        instant(row.occurred_at),
        instant(row.enqueued_at),
        row.operation,
        instant(row.delivered_at),
        row.latency_ms,
        row.target_key,
        row.last_error,
        rows.json_value(row.history),
        row.replay,
        row.id,
    )


def _delivery_values(d: Delivery, *, outcome: bool = True) -> dict[str, Any]:
    """A delivery as column values (without its outcome columns unless ``outcome``)."""
    values = {
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
    if outcome:
        values.update(
            delivered_at=d.delivered_at,
            latency_ms=d.latency_ms,
            target_key=d.target_key,
            last_error=d.last_error,
        )
    return values


_EVENT_COLUMNS = (
    "position, event_id, master_id, domain, version, kind, schema_version, trace_id, "
    "causation_id, {occurred_at}"
)
# PostgreSQL formats its timestamps as the store's UTC text itself: formatting datetimes in
# Python cost a tenth of a delivery round.
_PG_INSTANT = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_OPEN_SQL = "status IN ('pending', 'retrying')"


def _event(row: Any, changes: bool) -> ChangeEvent:
    """An outbox row read in plain SQL (``_EVENT_COLUMNS``, then the payload if asked)."""
    payload = rows.json_value(row[10]) if changes else {}
    return ChangeEvent(
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        payload.get("changes", {}),
        row[6],
        row[7],
        row[8],
        rows.instant(row[9]),
        payload.get("source", {}),
    )


def _percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (the median of two values is the lower, not the upper)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class SqlDeliveryQueue:
    """Distribution reads and writes; mixed into the SQL unit of work.

    The reads a delivery round makes are plain SQL with the ids as one array parameter:
    built with SQLAlchemy, each cost more to compile and bind than to run.
    """

    conn: sa.Connection
    writer: BatchWriter

    def _in(self, column: str) -> str:
        """``column`` is one of a JSON array parameter's strings (see ``_array``)."""
        if self.conn.dialect.name == "postgresql":
            # Unpacked once into an array (an InitPlan), which the index lookups then take.
            unpacked = f"SELECT jsonb_array_elements_text({self.writer.mark}::jsonb)"
            return f"{column} = ANY(ARRAY({unpacked}))"
        return f"{column} IN (SELECT value FROM json_each({self.writer.mark}))"

    @staticmethod
    def _array(values: Collection[str]) -> str:
        """Strings as the one parameter ``_in`` takes: a JSON array, on both stores.

        Not a list for PostgreSQL: psycopg dumps a list element by element in Python, which
        was a twentieth of the hub's time; orjson writes it in one call."""
        return orjson.dumps(list(values)).decode()

    def _events_sql(self) -> str:
        """The outbox columns ``_event`` reads, timestamps as text."""
        return _EVENT_COLUMNS.format(occurred_at=self._instant("occurred_at"))

    def _instant(self, column: str) -> str:
        """A timestamp column selected as the store's UTC text."""
        if self.conn.dialect.name == "postgresql":
            return _PG_INSTANT.format(column)
        return column

    def _rows(self, sql: str, *params: Any) -> Any:
        return self.conn.exec_driver_sql(sql, tuple(params))

    def outbox_after(
        self, position: int, domains: Collection[str], limit: int, *, changes: bool = True
    ) -> list[tuple[int, ChangeEvent]]:
        """Outbox events after ``position``, in order (without their changes and source when
        ``changes`` is false: queueing needs neither, and parsing them is most of the cost)."""
        m = self.writer.mark
        sql = f"SELECT {self._events_sql()}{', payload' if changes else ''} FROM outbox "
        params: list[Any] = [position]
        sql += f"WHERE position > {m}"
        if domains:
            sql += f" AND {self._in('domain')}"
            params.append(self._array(sorted(domains)))
        sql += f" ORDER BY position LIMIT {m}"
        params.append(limit)
        return [(r[0], _event(r, changes)) for r in self._rows(sql, *params)]

    def outbox_head(self) -> int:
        """The newest outbox position (0 when empty)."""
        # Plain SQL here and in set_cursor: the hub's watcher and every round ask, and a
        # Core statement costs more to build than the query takes to run.
        return int(self._rows("SELECT MAX(position) FROM outbox").scalar() or 0)

    def outbox_counts_after(self, position: int) -> dict[str, int]:
        """Domain -> outbox events after ``position``."""
        m = self.writer.mark
        sql = f"SELECT domain, COUNT(*) FROM outbox WHERE position > {m} GROUP BY domain"
        return {domain: int(n) for domain, n in self._rows(sql, position)}

    def cursor(self, name: str) -> int:
        """How far a named reader has got."""
        sql = f"SELECT position FROM cursors WHERE name = {self.writer.mark}"
        return int(self._rows(sql, name).scalar() or 0)

    def set_cursor(self, name: str, position: int, at: str) -> None:
        """Move a named reader on (never back)."""
        m = self.writer.mark
        self._rows(
            f"INSERT INTO cursors (name, position, updated_at) VALUES ({m}, {m}, {m}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at WHERE cursors.position < excluded.position",
            name,
            position,
            at,
        )

    def take_lease(self, name: str, holder: str, now: str, until: str) -> bool:
        """Hold a lease (a cursors row: the holder in ``state``, the expiry in
        ``updated_at``) if it is free, expired or already the holder's."""
        m = self.writer.mark
        taken = self._rows(
            f"UPDATE cursors SET state = {m}, updated_at = {m} "
            f"WHERE name = {m} AND (state = {m} OR updated_at < {m})",
            holder,
            until,
            name,
            holder,
            now,
        ).rowcount
        if taken:
            return True
        stmt = _insert(self.conn, cursors).values(
            name=name, position=0, updated_at=until, state=holder
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["name"]).returning(cursors.c.name)
        return self.conn.execute(stmt).first() is not None

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

    def claim_cursor(self, name: str, expected: int, position: int, at: str) -> bool:
        """Move a named reader from ``expected`` to ``position`` if it still stands there."""
        m = self.writer.mark
        moved = self._rows(
            f"UPDATE cursors SET position = {m}, updated_at = {m} "
            f"WHERE name = {m} AND position = {m}",
            position,
            at,
            name,
            expected,
        ).rowcount
        if moved or expected != 0:
            return bool(moved)
        # A reader's first move: its row does not exist yet (a concurrent first move makes
        # this insert do nothing).
        stmt = _insert(self.conn, cursors).values(name=name, position=position, updated_at=at)
        stmt = stmt.on_conflict_do_nothing(index_elements=["name"]).returning(cursors.c.name)
        return self.conn.execute(stmt).first() is not None

    def insert_deliveries(self, items: Sequence[Delivery], *, ids: bool = False) -> None:
        """Add deliveries as they stand; with ``ids``, set their ids (slower: one
        statement that returns them)."""
        if not items:
            return
        if not ids:
            # The hot path (every delivery a round sends): tuples in _DELIVERY_COLUMNS'
            # order straight on the driver, cheaper than _delivery_values' dicts.
            self.writer.insert(
                self.conn,
                "deliveries",
                _DELIVERY_COLUMNS,
                [
                    (
                        d.subscription,
                        d.event_id,
                        d.position,
                        d.master_id,
                        d.domain,
                        d.version,
                        d.status.value,
                        d.operation,
                        d.attempts,
                        d.next_attempt_at,
                        d.occurred_at,
                        d.enqueued_at,
                        d.delivered_at,
                        d.latency_ms,
                        d.target_key,
                        d.last_error,
                        rows.dumps(d.history),
                        d.replay,
                    )
                    for d in items
                ],
            )
            return
        values = [_delivery_values(d) for d in items]
        stmt = sa.insert(deliveries).returning(deliveries.c.id, sort_by_parameter_order=True)
        for d, (new_id,) in zip(items, self.conn.execute(stmt, values).all(), strict=True):
            d.id = new_id

    def held_records(
        self, subscription: str, master_ids: Collection[str], due_since: str | None = None
    ) -> set[str]:
        """Records among these with a delivery open in the subscription's queue (a replay's
        too: ``due`` holds a new version behind it); with ``due_since``, only those whose
        next attempt is not due before it."""
        if not master_ids:
            return set()
        m = self.writer.mark
        sql = (
            f"SELECT DISTINCT master_id FROM deliveries WHERE subscription = {m} "
            f"AND {self._in('master_id')} AND {_OPEN_SQL}"
        )
        params: list[Any] = [subscription, self._array(master_ids)]
        if due_since is not None:
            sql += f" AND next_attempt_at >= {m}"
            params.append(due_since)
        return set(self._rows(sql, *params).scalars())

    def unqueued_before(self, subscription: str, first: Mapping[str, int]) -> set[str]:
        """Records (master id -> a version) with an earlier version in the outbox that the
        consumer has not applied and the subscription has not queued."""
        if not first:
            return set()
        m = self.writer.mark
        if self.conn.dialect.name == "postgresql":
            pairs = f"unnest({m}::text[], {m}::int[]) AS j(master_id, version)"
            on = "o.master_id = j.master_id AND o.version < j.version"
            params: list[Any] = [list(first), list(first.values())]
        else:
            pairs = f"json_each({m}) AS j"
            on = (
                "o.master_id = json_extract(j.value, '$[0]') "
                "AND o.version < json_extract(j.value, '$[1]')"
            )
            params = [orjson.dumps(list(first.items())).decode()]
        sql = (
            f"SELECT DISTINCT o.master_id FROM {pairs} JOIN outbox o ON {on} "
            "WHERE o.version > COALESCE((SELECT a.version FROM applied a "
            f"WHERE a.subscription = {m} AND a.master_id = o.master_id), 0) "
            f"AND NOT EXISTS (SELECT 1 FROM deliveries q WHERE q.subscription = {m} "
            "AND q.event_id = o.event_id AND q.replay = '')"
        )
        return set(self._rows(sql, *params, subscription, subscription).scalars())

    def queued_events(self, subscription: str, event_ids: Collection[str]) -> set[str]:
        """Events among these already in the subscription's queue (not as a replay)."""
        if not event_ids:
            return set()
        m = self.writer.mark
        sql = (
            f"SELECT event_id FROM deliveries WHERE subscription = {m} "
            f"AND {self._in('event_id')} AND replay = ''"
        )
        return set(self._rows(sql, subscription, self._array(event_ids)).scalars())

    def first_deliveries(
        self, subscription: str, event_ids: Collection[str]
    ) -> dict[str, tuple[DeliveryStatus, str | None]]:
        """event id -> (status, operation) of each event's first delivery (not a replay's)."""
        if not event_ids:
            return {}
        m = self.writer.mark
        sql = (
            f"SELECT event_id, status, operation FROM deliveries WHERE subscription = {m} "
            f"AND {self._in('event_id')} AND replay = ''"
        )
        return {
            event_id: (DeliveryStatus(status), operation)
            for event_id, status, operation in self._rows(sql, subscription, self._array(event_ids))
        }

    def newest_decided(
        self, subscription: str, master_ids: Collection[str]
    ) -> dict[str, tuple[int, DeliveryStatus]]:
        """Master id -> the newest version whose first delivery was delivered or skipped,
        with that outcome (records with none are left out)."""
        if not master_ids:
            return {}
        m = self.writer.mark
        # Through the outbox (by master and version) to each event's first delivery (by
        # subscription and event): narrower than the index by record (every subscription's
        # rows), and a scan of deliveries per replay round grew with the whole history.
        sql = (
            "SELECT o.master_id, o.version, d.status FROM outbox o JOIN deliveries d "
            f"ON d.subscription = {m} AND d.event_id = o.event_id AND d.replay = '' "
            f"WHERE {self._in('o.master_id')} AND d.status IN ({m}, {m})"
        )
        found: dict[str, tuple[int, DeliveryStatus]] = {}
        rows = self._rows(
            sql,
            subscription,
            self._array(master_ids),
            DeliveryStatus.DELIVERED.value,
            DeliveryStatus.SKIPPED.value,
        )
        for master, version, status in rows:
            if master not in found or version > found[master][0]:
                found[master] = (int(version), DeliveryStatus(status))
        return found

    def enqueue(self, items: Sequence[Delivery]) -> int:
        """Add deliveries; ones already queued are kept as they are."""
        if not items:
            return 0
        # Only what a queued delivery has (the outcome columns stay empty).
        values = [_delivery_values(d, outcome=False) for d in items]
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
        # Plain SQL: every round of every subscription asks, and building this as a Core
        # expression (four aliases) cost about 1.3 ms of CPU each time. The subscription is
        # a parameter in every subquery, not a correlation: with it, both planners search
        # the indexes instead of scanning them.
        m = self.writer.mark
        sql = (
            f"SELECT d.* FROM deliveries d WHERE d.subscription = {m} "
            f"AND d.{_OPEN_SQL} AND d.next_attempt_at <= {m} AND NOT EXISTS ("
            f"SELECT 1 FROM deliveries e WHERE e.subscription = {m} "
            f"AND e.master_id = d.master_id AND e.{_OPEN_SQL} "
            "AND (e.version < d.version OR (e.version = d.version AND e.id < d.id))) "
        )
        params: list[Any] = [subscription, now, subscription]
        if not ordered:
            # Versions at or below the one the consumer has applied can hold nothing back
            # (they are superseded), so only the few after it are looked at, not the
            # entity's history.
            sql += (
                "AND (d.replay <> '' OR NOT EXISTS ("
                "SELECT 1 FROM outbox o WHERE o.master_id = d.master_id "
                "AND o.version < d.version "
                "AND o.version > COALESCE((SELECT a.version FROM applied a "
                f"WHERE a.subscription = {m} AND a.master_id = o.master_id), 0) "
                f"AND NOT EXISTS (SELECT 1 FROM deliveries q WHERE q.subscription = {m} "
                "AND q.event_id = o.event_id AND q.replay = ''))) "
            )
            params += [subscription, subscription]
        sql += f"ORDER BY d.id LIMIT {m}"
        return [_delivery(r) for r in self._rows(sql, *params, limit)]

    def events_for(
        self, master_ids: Collection[str], since: Mapping[str, int] | None = None
    ) -> dict[str, list[ChangeEvent]]:
        """Outbox events of the records by master id, oldest first: every one, or from
        version ``since[master id]`` on."""
        found: dict[str, list[ChangeEvent]] = defaultdict(list)
        ids = sorted(set(master_ids))
        if not ids:
            return {}
        m = self.writer.mark
        sql = f"SELECT {self._events_sql()}, payload FROM outbox WHERE {self._in('master_id')}"
        params: list[Any] = [self._array(ids)]
        if since:
            # One bound for them all (the unique (master_id, version) index serves it); the
            # few older rows it lets through are dropped below.
            sql += f" AND version >= {m}"
            params.append(min(since.get(i, 0) for i in ids))
        sql += " ORDER BY master_id, version"
        for r in self._rows(sql, *params):
            if since and r[4] < since.get(r[2], 0):
                continue
            found[r[2]].append(_event(r, True))
        return dict(found)

    def golden_states(
        self, master_ids: Collection[str]
    ) -> dict[str, tuple[int, dict[str, Any], str | None]]:
        """master id -> (version, attributes, trace id) of the current golden records."""
        out: dict[str, tuple[int, dict[str, Any], str | None]] = {}
        if not master_ids:
            return out
        sql = (
            "SELECT master_id, version, attributes, trace_id, merged_into FROM golden "
            f"WHERE {self._in('master_id')}"
        )
        for master, version, attributes, trace, merged_into in self._rows(
            sql, self._array(master_ids)
        ):
            state = rows.json_value(attributes)
            if merged_into is not None:
                # A merged-away record: consumers deactivate it (see Subscription).
                state = {**state, "_merged_into": merged_into}
            out[master] = (version, state, trace)
        return out

    def applied_for(self, subscription: str, master_ids: Collection[str]) -> dict[str, Applied]:
        """What the consumer holds of the records."""
        out: dict[str, Applied] = {}
        if not master_ids:
            return out
        sql = (
            "SELECT master_id, version, target_key, active, applied_at, target_refs, "
            "payload_digest "
            f"FROM applied WHERE subscription = {self.writer.mark} AND {self._in('master_id')}"
        )
        for master, version, key, active, at, refs, digest in self._rows(
            sql, subscription, self._array(master_ids)
        ):
            out[master] = Applied(
                subscription,
                master,
                version,
                key,
                bool(active),
                rows.instant(at),
                rows.json_value(refs) if refs else None,
                _digest_at(digest, version),
                _sent_version(digest),
            )
        return out

    def consumer_keys(
        self,
        system: str,
        domain: str,
        master_ids: Collection[str],
        subscriptions: Collection[str] | None = None,
    ) -> dict[str, dict[str, str]]:
        """The keys a system holds records under: master id -> {"key": …, other names: …}."""
        ids = sorted(set(master_ids))
        out: dict[str, dict[str, str]] = {}
        x, a = xref.c, applied.c
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            # By master id alone (its index), the system and domain checked here: with them
            # in the query SQLite walked the primary key's (domain, system) prefix, every
            # xref of the system for each chunk.
            q = (
                sa.select(x.master_id, x.source_key, x.domain, x.system)
                .where(x.master_id.in_(chunk))
                .order_by(x.master_id, x.received_at.desc())
            )
            for master, key, of_domain, of_system in self.conn.execute(q):
                if of_domain == domain and of_system == system:
                    out.setdefault(master, {"key": key})
            q2 = sa.select(a.master_id, a.target_refs).where(
                # The primary key's (subscription, master id) when the subscriptions are
                # known; LIKE reads every applied row of the table.
                a.subscription.in_(sorted(subscriptions))
                if subscriptions is not None
                else a.subscription.like(f"{system}.%"),
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
            # One row per record: a round may apply several versions of one, and a set-based
            # upsert (COPY through a stage) may not touch a row twice. The newest version
            # wins; the last keys the consumer named stand (as row after row would leave it).
            newest: dict[tuple[str, str], tuple[Any, ...]] = {}
            for x in sorted(results.applied, key=lambda a: a.version):
                key = (x.subscription, x.master_id)
                refs = rows.dumps(x.refs) if x.refs else None
                if refs is None and key in newest:
                    refs = newest[key][6]
                newest[key] = (
                    x.subscription,
                    x.master_id,
                    x.version,
                    x.target_key,
                    x.active,
                    x.applied_at,
                    refs,
                    f"{x.version}:{x.digest}" if x.digest else None,
                )
            self.writer.upsert(
                conn,
                "applied",
                _APPLIED_COLUMNS,
                ("subscription", "master_id"),
                list(newest.values()),
                updates=(
                    "version = excluded.version, target_key = excluded.target_key, "
                    "active = excluded.active, applied_at = excluded.applied_at, "
                    # A consumer that names no other keys this time still has the old ones.
                    "target_refs = COALESCE(excluded.target_refs, applied.target_refs), "
                    # A deactivation sends no payload: the last one sent stays named (the
                    # version a reactivation clears against).
                    "payload_digest = COALESCE(excluded.payload_digest, applied.payload_digest)"
                ),
                # A replay of an old version never moves the consumer's record back.
                only_if="applied.version <= excluded.version",
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
        if results.resent:
            self._settle_dead(results.resent)

    def _settle_dead(self, resent: Sequence[tuple[str, str, str, str]]) -> None:
        """Events a replay settled: their dead first deliveries are skipped, their dead
        letters resolved (one read per subscription, by the unique event key; most replayed
        events have no dead first delivery)."""
        d, x = deliveries.c, exceptions.c
        by_sub: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
        for subscription, event_id, note, at in resent:
            by_sub[subscription][event_id] = (note, at)
        for subscription, events in by_sub.items():
            system = subscription.rsplit(".", 1)[0]
            dead = [
                row
                for part in rows.in_chunks(sorted(events))
                for row in self.conn.execute(
                    sa.select(d.id, d.domain, d.event_id).where(
                        d.subscription == subscription,
                        d.event_id.in_(part),
                        d.replay == "",
                        d.status == DeliveryStatus.DEAD.value,
                    )
                )
            ]
            for row in dead:
                note, at = events[row.event_id]
                self.supersede(row.id, note)
                self.conn.execute(
                    sa.update(exceptions)
                    .where(
                        x.domain == row.domain,
                        x.system == system,
                        x.source_key == f"{subscription}#{row.id}",
                        x.kind == ProblemKind.DEAD_LETTER.value,
                        x.status == ExceptionStatus.OPEN.value,
                    )
                    .values(
                        status=ExceptionStatus.RESOLVED.value,
                        resolution={"by": "replay", "at": at, "note": note},
                        updated_at=at,
                    )
                )

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
        """Queue a dead delivery again, attempts reset (only a dead one: two retries of one
        dead letter at once must not reset a delivery the first sent meanwhile)."""
        self.conn.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.id == delivery_id,
                deliveries.c.status == DeliveryStatus.DEAD.value,
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
            )
        )

    def supersede(self, delivery_id: int, note: str) -> None:
        """Settle a dead delivery as skipped: a newer version decided what the consumer holds."""
        self.conn.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.id == delivery_id,
                deliveries.c.status == DeliveryStatus.DEAD.value,
            )
            .values(status=DeliveryStatus.SKIPPED.value, last_error=note)
        )

    def decided_after(
        self, subscription: str, master_id: str, version: int
    ) -> tuple[int, DeliveryStatus] | None:
        """The newest version above ``version`` of a record whose first delivery was
        delivered or skipped, with that outcome (None: none was)."""
        d, o = deliveries.c, outbox.c
        # Through the outbox, as newest_decided does (by subscription and event).
        row = self.conn.execute(
            sa.select(d.version, d.status)
            .select_from(
                outbox.join(
                    deliveries,
                    sa.and_(
                        d.subscription == subscription,
                        d.event_id == o.event_id,
                        d.replay == "",
                    ),
                )
            )
            .where(
                o.master_id == master_id,
                o.version > version,
                d.status.in_([DeliveryStatus.DELIVERED.value, DeliveryStatus.SKIPPED.value]),
            )
            .order_by(o.version.desc())
            .limit(1)
        ).first()
        return (int(row.version), DeliveryStatus(row.status)) if row else None

    def delivery_stats(self, subscriptions: Mapping[str, str]) -> list[SubscriptionStats]:
        """Queue depths, lag and latency per subscription (id -> domain)."""
        d = deliveries.c
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        oldest: dict[str, str] = {}
        # Skipped as unchanged counted apart, in the same pass over the table.
        kind = sa.case(
            (
                sa.and_(
                    d.status == DeliveryStatus.SKIPPED.value,
                    d.last_error.like(f"{UNCHANGED}%"),
                ),
                "unchanged",
            ),
            else_=d.status,
        )
        # First deliveries and replays apart: each version has one first delivery, and is
        # counted by it unless a replay sent it again (corrected below).
        again = d.replay != ""
        q = sa.select(
            d.subscription, again, kind, sa.func.count(), sa.func.min(d.occurred_at)
        ).group_by(d.subscription, again, kind)
        replayed: dict[str, int] = defaultdict(int)
        replaying: dict[str, int] = defaultdict(int)
        for sub, is_replay, status, n, first in self.conn.execute(q):
            if is_replay:
                replayed[sub] += n
                replaying[sub] += n if status in _OPEN else 0
            else:
                counts[sub][status] = n
            if status in _OPEN and (sub not in oldest or first < oldest[sub]):
                oldest[sub] = first
        for sub, was, now, n in self._replayed_outcomes(kind):
            # A replayed version moves from its first delivery's outcome to its own.
            if was is not None:
                counts[sub][was] = counts[sub].get(was, 0) - n
            counts[sub][now] = counts[sub].get(now, 0) + n
        out = []
        for sub in sorted(set(subscriptions) | set(counts)):
            c = counts.get(sub, {})
            # Latency from acceptance, of first deliveries: a replay's is the age of the
            # events it sent again, and would make last week's replay the p99.
            recent = [
                float(x)
                for x in self.conn.execute(
                    sa.select(d.latency_ms)
                    .where(d.subscription == sub, d.latency_ms.is_not(None), d.replay == "")
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
                    c.get("skipped", 0) + c.get("unchanged", 0),
                    lag,
                    oldest.get(sub),
                    _percentile(recent, 0.5),
                    _percentile(recent, 0.99),
                    c.get("unchanged", 0),
                    replayed.get(sub, 0),
                    replaying.get(sub, 0),
                )
            )
        return out

    def _replayed_outcomes(
        self, kind: sa.ColumnElement[str]
    ) -> list[tuple[str, str | None, str, int]]:
        """Per subscription, the versions a replay sent again, by their first delivery's
        outcome (``kind``; None: none was queued) and the version's own: delivered if any
        of its deliveries was, else retrying or pending while one is open, else its latest."""
        d = deliveries.c
        # Only the versions with a replay (the rest are counted by their first delivery),
        # each with all its deliveries, through the (subscription, event, replay) index.
        sent_again = (
            sa.select(d.subscription, d.event_id).where(d.replay != "").distinct().subquery()
        )
        rank = sa.case(
            (d.status == DeliveryStatus.DELIVERED.value, 3),
            (d.status == DeliveryStatus.RETRYING.value, 2),
            (d.status == DeliveryStatus.PENDING.value, 1),
            else_=0,
        )
        version = (d.subscription, d.event_id)
        ranked = (
            sa.select(
                d.subscription,
                kind.label("now"),
                sa.func.max(sa.case((d.replay == "", kind)))
                .over(partition_by=version)
                .label("was"),
                sa.func.row_number()
                .over(partition_by=version, order_by=(rank.desc(), d.id.desc()))
                .label("n"),
            )
            .select_from(
                deliveries.join(
                    sent_again,
                    sa.and_(
                        d.subscription == sent_again.c.subscription,
                        d.event_id == sent_again.c.event_id,
                    ),
                )
            )
            .subquery()
        )
        r = ranked.c
        q = (
            sa.select(r.subscription, r.was, r.now, sa.func.count())
            .where(r.n == 1)
            .group_by(r.subscription, r.was, r.now)
        )
        return [(sub, was, now, int(n)) for sub, was, now, n in self.conn.execute(q)]

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
                    # Open ones, as `exceptions retry --signature` takes: one settled (sent
                    # again, superseded, ignored) is not a dead letter any more.
                    exceptions.c.status == ExceptionStatus.OPEN.value,
                    deliveries.c.subscription == selection.subscription,
                )
            )
            q = q.where(outbox.c.event_id.in_(dead))
        q = q.order_by(outbox.c.position)
        return [(r["position"], rows.event(r)) for r in self.conn.execute(q).mappings()]
