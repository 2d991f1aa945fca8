"""Batch reads on the ingest hot path, straight on the driver: IN-lists of placeholders here,
one array parameter on PostgreSQL. SQLAlchemy's expanding parameters and result processing
cost more than the queries themselves at this volume."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.domain.golden import Contribution, GoldenRecord

_XREF = ", ".join(f'"{c}"' for c in rows.XREF_COLUMNS)
_GOLDEN = ", ".join(f'"{c}"' for c in rows.GOLDEN_COLUMNS)


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
        rows.json_value(r[4]),
        rows.instant(r[7]),
        rows.instant(r[8]),
        r[6],
        r[9],
        r[10],
    )


class BatchReader:
    """Reads many keys per query; subclasses choose how a list is passed."""

    mark = "?"
    chunk = 900  # SQLite allows 32,766 parameters; smaller lists plan as well

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join([self.mark] * len(values))})", list(values)

    def _parts(self, values: Collection[Any]) -> Iterator[Sequence[Any]]:
        ordered = sorted(set(values))
        for start in range(0, len(ordered), self.chunk):
            yield ordered[start : start + self.chunk]

    def _query(self, conn: sa.Connection, sql: str, params: list[Any]) -> list[Any]:
        raw: Any = conn.connection.driver_connection
        cur = raw.cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def xrefs(
        self, conn: sa.Connection, domain: str, refs: Collection[tuple[str, str]]
    ) -> list[Contribution]:
        """Xref rows for (system, key) pairs of one domain."""
        by_system: dict[str, list[str]] = defaultdict(list)
        for system, key in refs:
            by_system[system].append(key)
        m = self.mark
        out: list[Contribution] = []
        for system, keys in by_system.items():
            for part in self._parts(keys):
                where, params = self._in("source_key", part)
                sql = f"SELECT {_XREF} FROM xref WHERE domain = {m} AND system = {m} AND {where}"
                out.extend(
                    _contribution(r) for r in self._query(conn, sql, [domain, system, *params])
                )
        return out

    def natural_keys(
        self, conn: sa.Connection, domain: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(name, value) -> master id for the keys that exist."""
        by_name: dict[str, list[str]] = defaultdict(list)
        for name, value in keys:
            by_name[name].append(value)
        m = self.mark
        found: dict[tuple[str, str], str] = {}
        for name, values in by_name.items():
            for part in self._parts(values):
                where, params = self._in("value", part)
                sql = (
                    f"SELECT value, master_id FROM natural_key WHERE domain = {m} "
                    f"AND name = {m} AND {where}"
                )
                for value, master in self._query(conn, sql, [domain, name, *params]):
                    found[(name, value)] = master
        return found

    def golden(
        self, conn: sa.Connection, master_ids: Collection[str], lock: bool
    ) -> tuple[list[GoldenRecord], list[Contribution]]:
        """Golden records and all their member contributions."""
        records: list[GoldenRecord] = []
        members: list[Contribution] = []
        for part in self._parts(master_ids):
            where, params = self._in("master_id", part)
            lock_clause = " FOR UPDATE" if lock else ""
            records.extend(
                _golden(r)
                for r in self._query(
                    conn, f"SELECT {_GOLDEN} FROM golden WHERE {where}{lock_clause}", params
                )
            )
            members.extend(
                _contribution(r)
                for r in self._query(conn, f"SELECT {_XREF} FROM xref WHERE {where}", params)
            )
        return records, members

    def open_exceptions(
        self, conn: sa.Connection, domain: str, system: str, keys: Collection[str]
    ) -> dict[str, list[tuple[int, str]]]:
        """Source key -> (id, signature) of each open inbox entry about that record."""
        m = self.mark
        found: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for part in self._parts(keys):
            where, params = self._in("source_key", part)
            sql = (
                f"SELECT source_key, id, signature FROM exceptions WHERE status = 'open' "
                f"AND domain = {m} AND system = {m} AND {where}"
            )
            for key, ex_id, signature in self._query(conn, sql, [domain, system, *params]):
                found[key].append((ex_id, signature))
        return dict(found)


class ArrayReader(BatchReader):
    """PostgreSQL: one array parameter instead of a list of placeholders."""

    mark = "%s"
    chunk = 20_000

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]
