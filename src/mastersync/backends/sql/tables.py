"""The store's tables, in SQLAlchemy Core; Alembic migrations create them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class Instant(sa.types.TypeDecorator[str]):
    """A UTC instant: ISO text in SQLite, timestamptz in PostgreSQL; always ISO text in Python."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return value  # type: ignore[no-any-return]


Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

golden = sa.Table(
    "golden",
    metadata,
    sa.Column("master_id", sa.Text, primary_key=True),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("provenance", Json, nullable=False),
    sa.Column("lifecycle_state", sa.Text),
    sa.Column("quality", sa.Float, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Column("trace_id", sa.Text),
    sa.Column("merged_into", sa.Text),
    sa.Index("ix_golden_domain_updated", "domain", "updated_at"),
)

xref = sa.Table(
    "xref",
    metadata,
    sa.Column("domain", sa.Text, primary_key=True),
    sa.Column("system", sa.Text, primary_key=True),
    sa.Column("source_key", sa.Text, primary_key=True),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("source_version", sa.Text, nullable=False),
    sa.Column("source_ts", sa.Text),
    sa.Column("values", Json, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("received_at", Instant, nullable=False),
    sa.Index("ix_xref_master", "master_id"),
)

natural_key = sa.Table(
    "natural_key",
    metadata,
    sa.Column("domain", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, primary_key=True),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Index("ix_natural_key_master", "master_id"),
)

lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Instant, nullable=False),
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("master_id", sa.Text),
    sa.Column("golden_version", sa.Integer),
    sa.Column("system", sa.Text),
    sa.Column("source_key", sa.Text),
    sa.Column("source_version", sa.Text),
    sa.Column("batch_id", sa.Text),
    sa.Column("detail", Json, nullable=False),
    sa.Index("ix_lineage_master", "master_id", "id"),
    sa.Index("ix_lineage_trace", "trace_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("position", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Text, nullable=False),
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Column("causation_id", sa.Text, nullable=False),
    sa.Column("occurred_at", Instant, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.UniqueConstraint("master_id", "version", name="uq_outbox_master_version"),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("system", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("source_key", sa.Text, nullable=False, server_default=""),
    sa.Column("master_id", sa.Text),
    sa.Column("field", sa.Text),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("locator", sa.Text),
    sa.Column("payload", Json),
    sa.Column("trace_id", sa.Text),
    sa.Column("batch_id", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Column("resolution", Json),
    sa.Column("actor", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Index("ix_exceptions_status_signature", "status", "signature"),
    sa.Index("ix_exceptions_record", "domain", "system", "source_key"),
    # One open entry per record and failure class: a record failing again counts an attempt.
    sa.Index(
        "uq_exceptions_open",
        "system",
        "domain",
        "source_key",
        "signature",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_id", sa.Text, primary_key=True),
    sa.Column("system", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("started_at", Instant, nullable=False),
    sa.Column("finished_at", Instant),
    sa.Column("counts", Json, nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    # "relay:nats", "sub:crm.customers": how far a reader of the outbox has got.
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    # A source connector's own cursor ("in:erp.item"), opaque to the hub.
    sa.Column("state", sa.Text),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subscription", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("operation", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Instant, nullable=False),
    # When the change was accepted at the source side: latency is measured from here.
    sa.Column("occurred_at", Instant, nullable=False),
    sa.Column("enqueued_at", Instant, nullable=False),
    sa.Column("delivered_at", Instant),
    sa.Column("latency_ms", sa.Float),
    sa.Column("target_key", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("history", Json, nullable=False),
    # '' for the first delivery of an event; a replay's id for each replay of it.
    sa.Column("replay", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("subscription", "event_id", "replay", name="uq_deliveries_event"),
    # Migration 0007: the open deliveries alone, which is what due() and the hot path walk.
    # (The full indexes of 0002 went in 0009: delivered rows paid for them, nothing read them.)
    sa.Index(
        "ix_deliveries_open",
        "subscription",
        "id",
        sqlite_where=sa.text("status IN ('pending', 'retrying')"),
        postgresql_where=sa.text("status IN ('pending', 'retrying')"),
    ),
    # Migration 0015: a record's deliveries, which are its delivery receipts (lineage).
    sa.Index("ix_deliveries_master", "master_id"),
    sa.Index(
        "ix_deliveries_open_entity",
        "subscription",
        "master_id",
        "version",
        sqlite_where=sa.text("status IN ('pending', 'retrying')"),
        postgresql_where=sa.text("status IN ('pending', 'retrying')"),
    ),
)

applied = sa.Table(
    "applied",
    metadata,
    # Per consumer and record: the newest version it has applied, and its key for it.
    sa.Column("subscription", sa.Text, primary_key=True),
    sa.Column("master_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("target_key", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("applied_at", Instant, nullable=False),
    # Other keys the consumer gave for the record ({"inventory_item": "808950810"}), JSON.
    sa.Column("target_refs", sa.Text),
    # A digest of the payload it last received: a version that would send the same one is
    # skipped. Null for a deactivation, and for what was applied before this column.
    sa.Column("payload_digest", sa.Text),
)

match_keys = sa.Table(
    "match_keys",
    metadata,
    # The candidate index: a golden record's blocking keys, so a new record finds its
    # candidates with one indexed look-up instead of a scan of its domain. Keys are stored as
    # 64-bit hashes of (domain, key): a third of the bytes of the text, and a collision only
    # adds a candidate that scoring then rejects.
    sa.Column("key", sa.BigInteger, primary_key=True),
    sa.Column("master_id", sa.Text, primary_key=True),
    sa.Index("ix_match_keys_master", "master_id"),
    sqlite_with_rowid=False,
)

match_decisions = sa.Table(
    "match_decisions",
    metadata,
    # One row per pair of golden records ever scored (left_id < right_id): the pair is
    # never put to a steward twice.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("left_id", sa.Text, nullable=False),
    sa.Column("right_id", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("explanation", Json, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("decided_at", Instant),
    sa.Column("decided_by", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("trace_id", sa.Text),
    sa.UniqueConstraint("domain", "left_id", "right_id", name="uq_match_decisions_pair"),
    sa.Index("ix_match_decisions_status", "status", "id"),
    sa.Index("ix_match_decisions_right", "right_id"),
)

match_models = sa.Table(
    "match_models",
    metadata,
    # The weights EM fitted on a domain's own records (mastersync dedupe), used by ingest.
    sa.Column("domain", sa.Text, primary_key=True),
    sa.Column("parameters", Json, nullable=False),
    sa.Column("report", Json, nullable=False),
    sa.Column("fitted_at", Instant, nullable=False),
)

merges = sa.Table(
    "merges",
    metadata,
    # Each merge with the state it replaced, so an unmerge restores exactly that.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("survivor_id", sa.Text, nullable=False),
    sa.Column("loser_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("snapshot", Json, nullable=False),
    sa.Column("merged_at", Instant, nullable=False),
    sa.Column("unmerged_at", Instant),
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Index("ix_merges_loser", "loser_id", "status"),
    sa.Index("ix_merges_survivor", "survivor_id", "status"),
)

# --- governed APIs (migration 0006) ----------------------------------------------------------

api_consumers = sa.Table(
    "api_consumers",
    metadata,
    # A program that calls the API: its credential (hashed), scopes and limits.
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("person", sa.Text, nullable=False),
    sa.Column("system", sa.Text),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("partner_channel", sa.Text),
    sa.Column("rate_per_minute", sa.Integer, nullable=False),
    sa.Column("quota_per_day", sa.Integer),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("revoked_at", Instant),
)

api_signing_keys = sa.Table(
    "api_signing_keys",
    metadata,
    # Keys that sign access tokens: the newest active one signs, every active one verifies.
    sa.Column("kid", sa.Text, primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("retired_at", Instant),
)

api_usage = sa.Table(
    "api_usage",
    metadata,
    # Calls per consumer, API version and route per day: version adoption.
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("api_version", sa.Text, primary_key=True),
    sa.Column("route", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("last_at", Instant, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Append-only, each entry chained to the previous one by SHA-256.
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    # Text, as the hashed entry has it (a timestamptz would respell it).
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    # Text, not JSON: hashed exactly as stored.
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Index("ix_audit_log_master", "master_id", "seq"),
)

pending_changes = sa.Table(
    "pending_changes",
    metadata,
    # Four-eyes: a held change of a guarded field until a second person confirms it.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("system", sa.Text, nullable=False),
    sa.Column("source_key", sa.Text, nullable=False),
    sa.Column("proposed", Json),
    sa.Column("current", Json),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("requested_at", Instant, nullable=False),
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", Instant),
    sa.Column("detail", Json, nullable=False),
    sa.Index("ix_pending_changes_master", "master_id", "status"),
    sa.Index("ix_pending_changes_source", "system", "source_key", "status"),
)

processes = sa.Table(
    "processes",
    metadata,
    # Process API instances (customer onboarding, item activation, supplier approval).
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("master_id", sa.Text),
    sa.Column("started_by", sa.Text, nullable=False),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Column("history", Json, nullable=False),
    # Counts the process's changes: each is made over the version it read (compare-and-set).
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_processes_master", "master_id"),
)

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    # One `mastersync reconcile` of a system's domain in one role (target or source).
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("system", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("subscription", sa.Text),
    sa.Column("started_at", Instant, nullable=False),
    sa.Column("finished_at", Instant),
    # Records per bucket: matched, missing, extra, mismatched, retired, errors.
    sa.Column("counts", Json, nullable=False),
    # What was done: deliveries queued, records ingested, inbox entries opened.
    sa.Column("repair", Json, nullable=False),
    sa.Index("ix_reconciliation_runs_system", "system", "domain", "started_at"),
)
