"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

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
