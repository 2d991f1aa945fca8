"""Batch reads on the ingest hot path, straight on the driver.

SQLite gets IN-lists of placeholders. PostgreSQL gets one JSON array parameter (orjson
writes it in one call; psycopg dumps a list element by element in Python), unpacked into an
array and joined through ``unnest``. An array built in the query is estimated at ten
elements whatever it holds, so the join plans as index lookups whatever the table
statistics say. With stale statistics a plain ``= ANY(array)`` was seen filtering 100,000
rows through a 2,000-element array for every lookup, 7 s a query; a list parameter, whose
length the planner sees, made a hash join over the whole table from some size on (2,000
keys against 200,000 natural keys: 65 ms, 6 ms as lookups); and the set-returning function
on its own, estimated at 100 rows, did so for a single key. SQLAlchemy's expanding
parameters and result processing cost more than the queries themselves at this volume, so
neither is used here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.versions import Version
from mastersync.ports.store import OpenEntry

XREF = rows.XREF_COLUMNS
GOLDEN = rows.GOLDEN_COLUMNS


def _contribution(r: Sequence[Any]) -> Contribution:
    # Column order: rows.XREF_COLUMNS.
    return Contribution(
        r[0],
        r[1],
        r[2],
        r[3],
        rows.version_from_text(r[4]),
        r[5],
        rows.json_value(r[6]),
        r[7],
        rows.instant(r[8]),
    )


def _golden(r: Sequence[Any]) -> GoldenRecord:
    # Column order: rows.GOLDEN_COLUMNS.
    return GoldenRecord(
        r[0],
        r[1],
        r[2],
        rows.json_value(r[3]),
        rows.unpack_provenance(rows.json_value(r[4])),
        rows.instant(r[7]),
        rows.instant(r[8]),
        r[6],
        r[9],
        r[10],
    )


class BatchReader:
    """Reads many keys per query: ``SELECT ... WHERE fixed AND key IN (?, ?, ...)``."""

    mark = "?"
    chunk = 900  # SQLite allows 32,766 parameters; smaller lists plan as well

    def select(
        self,
        columns: Sequence[str],
        table: str,
        fixed: Sequence[tuple[str, Any]],
        key: str,
        keys: Sequence[Any],
        suffix: str = "",
    ) -> tuple[str, list[Any]]:
        """SQL and parameters selecting ``columns`` of the rows whose ``key`` is in ``keys``."""
        cols = ", ".join(f't."{c}"' for c in columns)
        where = " AND ".join(
            [
                *(f"t.{c} = {self.mark}" for c, _ in fixed),
                f"t.{key} IN ({', '.join([self.mark] * len(keys))})",
            ]
        )
        return (
            f"SELECT {cols} FROM {table} t WHERE {where}{suffix}",
            [*(v for _, v in fixed), *keys],
        )

    def _rows(
        self,
        conn: sa.Connection,
        columns: Sequence[str],
        table: str,
        fixed: Sequence[tuple[str, Any]],
        key: str,
        keys: Collection[Any],
        suffix: str = "",
    ) -> Iterator[Any]:
        raw: Any = conn.connection.driver_connection
        ordered = sorted(set(keys))
        for start in range(0, len(ordered), self.chunk):
            sql, params = self.select(
                columns, table, fixed, key, ordered[start : start + self.chunk], suffix
            )
            cur = raw.cursor()
            try:
                cur.execute(sql, params)
                yield from cur.fetchall()
            finally:
                cur.close()

    def xrefs(
        self, conn: sa.Connection, domain: str, refs: Collection[tuple[str, str]]
    ) -> list[Contribution]:
        """Xref rows for (system, key) pairs of one domain."""
        by_system: dict[str, list[str]] = defaultdict(list)
        for system, key in refs:
            by_system[system].append(key)
        return [
            _contribution(r)
            for system, keys in by_system.items()
            for r in self._rows(
                conn, XREF, "xref", [("domain", domain), ("system", system)], "source_key", keys
            )
        ]

    def source_digests(
        self, conn: sa.Connection, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, tuple[Version, str]]:
        """Source key -> (applied source version, payload digest) for the keys that exist."""
        return {
            key: (rows.version_from_text(version), digest)
            for key, version, digest in self._rows(
                conn,
                ("source_key", "source_version", "digest"),
                "xref",
                [("domain", domain), ("system", system)],
                "source_key",
                keys,
            )
        }

    def natural_keys(
        self, conn: sa.Connection, domain: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(name, value) -> master id for the keys that exist."""
        by_name: dict[str, list[str]] = defaultdict(list)
        for name, value in keys:
            by_name[name].append(value)
        return {
            (name, value): master
            for name, values in by_name.items()
            for value, master in self._rows(
                conn,
                ("value", "master_id"),
                "natural_key",
                [("domain", domain), ("name", name)],
                "value",
                values,
            )
        }

    def golden(
        self, conn: sa.Connection, master_ids: Collection[str], lock: bool
    ) -> tuple[list[GoldenRecord], list[Contribution]]:
        """Golden records and all their member contributions."""
        # Locked in one order (by master id), so that two writers locking overlapping
        # records wait for each other rather than deadlock.
        suffix = " ORDER BY t.master_id FOR UPDATE OF t" if lock else ""
        records = [
            _golden(r)
            for r in self._rows(conn, GOLDEN, "golden", [], "master_id", master_ids, suffix)
        ]
        members = [
            _contribution(r) for r in self._rows(conn, XREF, "xref", [], "master_id", master_ids)
        ]
        return records, members

    def open_exceptions(
        self, conn: sa.Connection, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, list[OpenEntry]]:
        """Source key -> each open inbox entry about that record."""
        found: dict[str, list[OpenEntry]] = defaultdict(list)
        fixed = [("status", "open"), ("domain", domain), ("system", system)]
        columns = ("source_key", "id", "signature", "kind", "field", "rule")
        # In the order raised (by id), whatever order the store's plan reads them in.
        found_rows = self._rows(
            conn, columns, "exceptions", fixed, "source_key", keys, " ORDER BY t.id"
        )
        for key, *entry in found_rows:
            found[key].append(OpenEntry(*entry))
        return dict(found)


class ArrayReader(BatchReader):
    """PostgreSQL: the keys as one JSON array, unpacked and joined through unnest (index
    lookups, any stats)."""

    mark = "%s"
    chunk = 20_000

    def select(
        self,
        columns: Sequence[str],
        table: str,
        fixed: Sequence[tuple[str, Any]],
        key: str,
        keys: Sequence[Any],
        suffix: str = "",
    ) -> tuple[str, list[Any]]:
        """SQL joining the rows of ``table`` to the array of keys."""
        cols = ", ".join(f't."{c}"' for c in columns)
        on = " AND ".join([f"t.{key} = k.v", *(f"t.{c} = %s" for c, _ in fixed)])
        return (
            f"SELECT {cols} FROM unnest(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb))) "
            f"AS k(v) JOIN {table} t ON {on}{suffix}",
            [orjson.dumps(list(keys)).decode(), *(v for _, v in fixed)],
        )
