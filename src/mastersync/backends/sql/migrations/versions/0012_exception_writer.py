"""who wrote a record that landed in the inbox (a retry writes as them)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_column("channel")
        batch_op.drop_column("actor")
