"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mastersync.backends.sql.tables import metadata
from mastersync.bootstrap import open_store


def test_the_migrated_schema_matches_the_declared_tables(store_url: str) -> None:
    store = open_store(store_url)
    store.upgrade()
    store.close()
    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    # A table, column or index added to tables.py needs a migration, and the reverse.
    assert differences == []


def test_upgrades_of_one_database_at_once_take_turns() -> None:
    """Three `db upgrade` runs on a new database: one failed with a duplicate key creating
    alembic_version (a 350-line traceback), another said 'schema 0009 -> 0009'."""
    from concurrent.futures import ThreadPoolExecutor

    from psycopg import sql

    from mastersync.backends.sql import migrate
    from tests.conftest import PG_URL, _admin_connect

    name = f"mastersync_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{PG_URL.rpartition('/')[0]}/{name}"
    stores = [open_store(url) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            found = list(pool.map(lambda s: s.upgrade(), stores))
        assert sorted(found, key=lambda r: r or "") == [None, migrate.head(), migrate.head()]
        assert stores[0].schema_revision() == (migrate.head(), migrate.head())
    finally:
        for s in stores:
            s.close()
        with _admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
