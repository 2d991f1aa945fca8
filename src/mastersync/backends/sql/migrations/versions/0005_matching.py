"""matching: candidate index, match decisions and the steward's review, merge history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen copies of the column types in tables.py at this revision.
INSTANT = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "match_keys",
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", "master_id"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("match_keys", schema=None) as batch_op:
        batch_op.create_index("ix_match_keys_master", ["master_id"], unique=False)

    op.create_table(
        "match_decisions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("left_id", sa.Text(), nullable=False),
        sa.Column("right_id", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("explanation", JSON, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("decided_at", INSTANT, nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain", "left_id", "right_id", name="uq_match_decisions_pair"),
    )
    with op.batch_alter_table("match_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_match_decisions_status", ["status", "id"], unique=False)
        batch_op.create_index("ix_match_decisions_right", ["right_id"], unique=False)

    op.create_table(
        "match_models",
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("report", JSON, nullable=False),
        sa.Column("fitted_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("domain"),
    )

    op.create_table(
        "merges",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("survivor_id", sa.Text(), nullable=False),
        sa.Column("loser_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("merged_at", INSTANT, nullable=False),
        sa.Column("unmerged_at", INSTANT, nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.create_index("ix_merges_loser", ["loser_id", "status"], unique=False)
        batch_op.create_index("ix_merges_survivor", ["survivor_id", "status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.drop_index("ix_merges_survivor")
        batch_op.drop_index("ix_merges_loser")
    op.drop_table("merges")
    op.drop_table("match_models")
    with op.batch_alter_table("match_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_match_decisions_right")
        batch_op.drop_index("ix_match_decisions_status")
    op.drop_table("match_decisions")
    with op.batch_alter_table("match_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_match_keys_master")
    op.drop_table("match_keys")
