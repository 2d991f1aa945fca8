"""initial schema

Revision ID: 0001
Revises:
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

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", INSTANT, nullable=False),
        sa.Column("finished_at", INSTANT, nullable=True),
        sa.Column("counts", JSON, nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "exceptions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("source_key", sa.Text(), server_default="", nullable=False),
        sa.Column("master_id", sa.Text(), nullable=True),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("locator", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("resolution", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exceptions_record", ["domain", "system", "source_key"], unique=False
        )
        batch_op.create_index(
            "ix_exceptions_status_signature", ["status", "signature"], unique=False
        )
        batch_op.create_index(
            "uq_exceptions_open",
            ["system", "domain", "source_key", "signature"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "golden",
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("provenance", JSON, nullable=False),
        sa.Column("lifecycle_state", sa.Text(), nullable=True),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("master_id"),
    )
    with op.batch_alter_table("golden", schema=None) as batch_op:
        batch_op.create_index("ix_golden_domain_updated", ["domain", "updated_at"], unique=False)

    op.create_table(
        "lineage",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("master_id", sa.Text(), nullable=True),
        sa.Column("golden_version", sa.Integer(), nullable=True),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("source_key", sa.Text(), nullable=True),
        sa.Column("source_version", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.Text(), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lineage", schema=None) as batch_op:
        batch_op.create_index("ix_lineage_master", ["master_id", "id"], unique=False)
        batch_op.create_index("ix_lineage_trace", ["trace_id"], unique=False)

    op.create_table(
        "natural_key",
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("domain", "name", "value"),
    )
    with op.batch_alter_table("natural_key", schema=None) as batch_op:
        batch_op.create_index("ix_natural_key_master", ["master_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("position", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("causation_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", INSTANT, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("master_id", "version", name="uq_outbox_master_version"),
    )
    op.create_table(
        "xref",
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.Column("source_version", sa.Text(), nullable=False),
        sa.Column("source_ts", sa.Text(), nullable=True),
        sa.Column("values", JSON, nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("domain", "system", "source_key"),
    )
    with op.batch_alter_table("xref", schema=None) as batch_op:
        batch_op.create_index("ix_xref_master", ["master_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("xref", schema=None) as batch_op:
        batch_op.drop_index("ix_xref_master")

    op.drop_table("xref")
    op.drop_table("outbox")
    with op.batch_alter_table("natural_key", schema=None) as batch_op:
        batch_op.drop_index("ix_natural_key_master")

    op.drop_table("natural_key")
    with op.batch_alter_table("lineage", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_trace")
        batch_op.drop_index("ix_lineage_master")

    op.drop_table("lineage")
    with op.batch_alter_table("golden", schema=None) as batch_op:
        batch_op.drop_index("ix_golden_domain_updated")

    op.drop_table("golden")
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_exceptions_open",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_exceptions_status_signature")
        batch_op.drop_index("ix_exceptions_record")

    op.drop_table("exceptions")
    op.drop_table("batches")
