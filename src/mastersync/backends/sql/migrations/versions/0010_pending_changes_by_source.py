"""pending changes indexed by their source record

A newer version of a source record supersedes the changes it asked for before, wherever its
golden record is now (a split or merge moves records, not their pending changes): ingest
looks them up by system and source key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_pending_changes_source", "pending_changes", ["system", "source_key", "status"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_pending_changes_source", table_name="pending_changes")
