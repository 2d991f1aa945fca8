"""delivery receipts: the delivered delivery row is the receipt, read by master id

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_deliveries_master", "deliveries", ["master_id"])
    # Each delivered delivery row carries what its receipt said (time, attempts, latency,
    # operation, replay): the lineage reads receipts from them now, so the rows written
    # before would show twice.
    op.execute("DELETE FROM lineage WHERE stage = 'deliver' AND outcome = 'delivered'")


def downgrade() -> None:
    """Revert this revision."""
    # The receipts are not written back: a downgraded hub's lineage shows deliveries made
    # from here on only.
    op.drop_index("ix_deliveries_master", table_name="deliveries")
