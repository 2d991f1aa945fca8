"""consumers' extra keys for records they hold (a variant's inventory item id, a URL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("applied", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_refs", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("applied", schema=None) as batch_op:
        batch_op.drop_column("target_refs")
