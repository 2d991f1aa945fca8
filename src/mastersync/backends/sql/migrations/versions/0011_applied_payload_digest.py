"""what each consumer last received of a record, as a digest (unchanged versions are skipped)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("applied", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload_digest", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("applied", schema=None) as batch_op:
        batch_op.drop_column("payload_digest")
