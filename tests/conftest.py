"""Shared fixtures: real stores (SQLite files and PostgreSQL databases) and small landscapes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from mastersync.backends.sql.tables import metadata
from mastersync.bootstrap import open_store
from mastersync.ports.store import Store

# Property tests promise nothing about wall-clock time: hypothesis's default 200 ms deadline
# per example failed them on a loaded machine (a shared CI runner, tests in parallel).
settings.register_profile("mastersync", deadline=None)
settings.load_profile("mastersync")

PG_URL = os.environ.get("MASTERSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Every table of the store, so that each test starts from an empty one.
TABLES = tuple(metadata.tables)


def _admin_connect() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc}). The PostgreSQL tests need it: "
            "start it (see README, 'Services') or point MASTERSYNC_TEST_PG at a server.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (per xdist worker), dropped after."""
    name = f"mastersync_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = PG_URL.rpartition("/")
    url = f"{base}/{name}"
    store = open_store(url)
    store.upgrade()
    store.close()
    yield url
    with _admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY")
        # Tables a test made beside the store's (a consumer's items_out): left, the schema
        # check that follows it found them undeclared.
        made = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND NOT (tablename = ANY(%s))",
            ([*TABLES, "alembic_version"],),
        ).fetchall()
        for (name,) in made:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    _truncate(pg_database)
    return pg_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite store file for this test."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn: the contract every backend must meet."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty, migrated store of each backend."""
    s = open_store(store_url)
    s.upgrade()
    yield s
    s.close()
