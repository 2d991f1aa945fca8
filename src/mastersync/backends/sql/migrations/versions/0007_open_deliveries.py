"""open deliveries indexed apart: due() walks only the open ones, in queue order

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Literal, as the queries that use these indexes write it: a planner matches a partial
# index only against the same literal condition.
_OPEN = sa.text("status IN ('pending', 'retrying')")


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_deliveries_open",
        "deliveries",
        ["subscription", "id"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ix_deliveries_open_entity",
        "deliveries",
        ["subscription", "master_id", "version"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_open_entity", table_name="deliveries")
    op.drop_index("ix_deliveries_open", table_name="deliveries")
