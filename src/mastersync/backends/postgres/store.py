"""PostgreSQL store: COPY-staged upserts, row locks and advisory locks for concurrent writers."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from mastersync.backends.sql.reader import ArrayReader
from mastersync.backends.sql.rows import dumps
from mastersync.backends.sql.store import SqlStore
from mastersync.backends.sql.uow import SqlUnitOfWork
from mastersync.backends.sql.writer import BatchWriter, Row

# Below this many rows a round trip for COPY costs more than executemany saves.
_COPY_FROM = 64


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class CopyWriter(BatchWriter):
    """Bulk writes through COPY: straight into append-only tables, via a stage for upserts."""

    mark = "%s"

    def insert(
        self, conn: sa.Connection, table: str, columns: Sequence[str], params: list[Row]
    ) -> None:
        """Append rows with COPY."""
        if len(params) < _COPY_FROM:
            super().insert(conn, table, columns, params)
            return
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({_cols(columns)}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)

    def upsert(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        params: list[Row],
    ) -> None:
        """COPY into a temporary stage, then one INSERT ... ON CONFLICT from it."""
        if len(params) < _COPY_FROM:
            super().upsert(conn, table, columns, key, params)
            return
        raw: Any = conn.connection.driver_connection
        stage = f"_stage_{table}"
        cols = _cols(columns)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
        with raw.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                f"ON CONFLICT ({_cols(key)}) DO UPDATE SET {updates}"
            )
            cur.execute(f"DELETE FROM {stage}")


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresUnitOfWork(SqlUnitOfWork):
    """Adds advisory locks so concurrent ingests of the same records take turns."""

    def lock_keys(self, keys: Collection[str]) -> None:
        """Take transaction-scoped advisory locks, in sorted order so no two writers deadlock."""
        ids = sorted({_lock_id(k) for k in keys})
        if ids:
            self.conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k", (ids,)
            )


class PostgresStore(SqlStore):
    """The store at scale."""

    uow_class = PostgresUnitOfWork


def open_postgres(url: str) -> PostgresStore:
    """Open a PostgreSQL store from ``postgresql://user@host:port/db``."""
    parsed = sa.make_url(url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(
        parsed,
        json_serializer=dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        from psycopg.types.json import set_json_loads

        set_json_loads(orjson.loads, dbapi_conn)

    return PostgresStore(url, engine, CopyWriter(), ArrayReader(), lock_golden=True)
