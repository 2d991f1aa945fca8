"""where auditing began: every outbox event after it must have an audit entry

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The cursors row holding the outbox position auditing began after.
AUDIT_START = "audit:since"
INSTANT = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    # Events before the first audited one predate the audit log (revision 0006); with no
    # audited event yet, every event so far does. A fresh store starts at 0: all audited.
    op.execute(
        sa.text(
            "INSERT INTO cursors (name, position, updated_at) SELECT :name, COALESCE("
            "(SELECT MIN(o.position) - 1 FROM outbox o JOIN audit_log a "
            "ON a.master_id = o.master_id AND a.version = o.version), "
            "(SELECT MAX(position) FROM outbox), 0), :now"
        ).bindparams(
            sa.bindparam("name", AUDIT_START),
            # ISO text in SQLite (as the hub writes instants), timestamptz in PostgreSQL.
            sa.bindparam("now", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), INSTANT),
        )
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute(sa.text("DELETE FROM cursors WHERE name = :name").bindparams(name=AUDIT_START))
