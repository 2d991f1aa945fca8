"""Batch writes of a change set: executemany upserts, overridable per dialect (COPY)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.backends.sql.governance_writer import write_governance
from mastersync.ports.store import ChangeSet

Row = tuple[Any, ...]


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def on_conflict_update(
    columns: Sequence[str], key: Sequence[str], updates: str | None, only_if: str
) -> str:
    """The DO UPDATE clause of an upsert: every non-key column unless ``updates`` says
    otherwise, and only where ``only_if`` holds."""
    if updates is None:
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    return f"DO UPDATE SET {updates}" + (f" WHERE {only_if}" if only_if else "")


class BatchWriter:
    """Writes a change set with executemany; ``mark`` is the driver's placeholder."""

    mark = "?"

    def _marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def upsert_sql(
        self,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        where: str = "",
        *,
        updates: str | None = None,
        only_if: str = "",
    ) -> str:
        """INSERT ... ON CONFLICT (key) DO UPDATE of every non-key column (or ``updates``;
        and only where ``only_if`` holds)."""
        update = on_conflict_update(columns, key, updates, only_if)
        return (
            f"INSERT INTO {table} ({_columns(columns)}) VALUES ({self._marks(len(columns))}) "
            f"ON CONFLICT ({_columns(key)}){where} {update}"
        )

    def insert_sql(self, table: str, columns: Sequence[str]) -> str:
        """A plain INSERT."""
        return f"INSERT INTO {table} ({_columns(columns)}) VALUES ({self._marks(len(columns))})"

    def many(self, conn: sa.Connection, sql: str, params: list[Row]) -> None:
        """executemany, skipped when there is nothing to write."""
        if params:
            conn.exec_driver_sql(sql, params)

    def upsert(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        params: list[Row],
        *,
        updates: str | None = None,
        only_if: str = "",
    ) -> None:
        """Insert or update rows by key (see ``upsert_sql``)."""
        sql = self.upsert_sql(table, columns, key, updates=updates, only_if=only_if)
        self.many(conn, sql, params)

    def insert(
        self, conn: sa.Connection, table: str, columns: Sequence[str], params: list[Row]
    ) -> None:
        """Append rows."""
        self.many(conn, self.insert_sql(table, columns), params)

    def write(self, conn: sa.Connection, changes: ChangeSet) -> None:
        """Write everything in a change set on ``conn`` (inside the caller's transaction)."""
        m = self.mark
        removed = [(k.domain, k.name, k.value, k.master_id) for k in changes.keys if not k.added]
        self.many(
            conn,
            f"DELETE FROM natural_key WHERE domain = {m} AND name = {m} "
            f"AND value = {m} AND master_id = {m}",
            removed,
        )
        self.insert(
            conn,
            "natural_key",
            ("domain", "name", "value", "master_id"),
            [(k.domain, k.name, k.value, k.master_id) for k in changes.keys if k.added],
        )
        self.upsert(
            conn,
            "xref",
            rows.XREF_COLUMNS,
            ("domain", "system", "source_key"),
            [rows.xref_row(c) for c in changes.contributions],
        )
        self.upsert(
            conn,
            "golden",
            rows.GOLDEN_COLUMNS,
            ("master_id",),
            [rows.golden_row(g) for g in changes.golden],
        )
        self.insert(
            conn, "outbox", rows.OUTBOX_COLUMNS, [rows.outbox_row(e) for e in changes.events]
        )
        self.insert(
            conn, "lineage", rows.LINEAGE_COLUMNS, [rows.lineage_row(e) for e in changes.lineage]
        )
        # Audit log, four-eyes holds and decisions: after the outbox rows (see there).
        write_governance(conn, changes, self.insert)
        self.write_exceptions(conn, changes)

    def write_exceptions(self, conn: sa.Connection, changes: ChangeSet) -> None:
        """New inbox entries (a repeat failure counts an attempt) and settled ones."""
        cols = rows.EXCEPTION_COLUMNS
        m = self.mark
        sql = (
            f"INSERT INTO exceptions ({_columns(cols)}) VALUES ({self._marks(len(cols))}) "
            "ON CONFLICT (system, domain, source_key, signature) WHERE status = 'open' "
            "DO UPDATE SET attempts = exceptions.attempts + 1, "
            "updated_at = excluded.updated_at, message = excluded.message, "
            "payload = excluded.payload, locator = excluded.locator, "
            "trace_id = excluded.trace_id, batch_id = excluded.batch_id, "
            "master_id = excluded.master_id, actor = excluded.actor, "
            "channel = excluded.channel"
        )
        self.many(conn, sql, [rows.exception_row(e) for e in changes.exceptions])
        self.many(
            conn,
            f"UPDATE exceptions SET status = {m}, resolution = {m}, updated_at = {m} "
            f"WHERE id = {m} AND status = 'open'",
            [
                (status.value, rows.dumps(res), res.get("at"), ex_id)
                for ex_id, status, res in changes.resolutions
            ],
        )
