"""a version per process: its changes are compare-and-set, two requests never both move it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Existing processes start at 0: the next change of each is made over that.
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.drop_column("version")
