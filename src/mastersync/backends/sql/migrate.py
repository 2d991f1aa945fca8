"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "mastersync.backends.sql:migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this version of mastersync knows."""
    script = ScriptDirectory.from_config(_config())
    current = script.get_current_head()
    assert current is not None, "migrations have no head"
    return current


def current(engine: sa.Engine) -> str | None:
    """The revision a database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# Any constant: the advisory lock that makes concurrent upgrades of one database take turns.
_UPGRADE_LOCK = 0x6D7374_7570


def upgrade(engine: sa.Engine) -> str | None:
    """Apply every migration the database lacks, in one transaction where the database can;
    the revision it found. Concurrent upgrades take turns (the later ones find the work
    done): two creating alembic_version at once failed with a duplicate-key error."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        found = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), "head")
    return found


def autogenerate(engine: sa.Engine, message: str) -> None:
    """Write a new revision from the difference between tables.py and the database."""
    with engine.begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
