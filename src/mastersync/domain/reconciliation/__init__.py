"""Reconciliation: what the hub expects a system to hold versus what it holds (pure)."""

from mastersync.domain.reconciliation.compare import (
    FieldDiff,
    Normalisation,
    comparable,
    field_diffs,
)
from mastersync.domain.reconciliation.owned import OwnFields
from mastersync.domain.reconciliation.report import (
    DRIFT,
    Bucket,
    DriftEntry,
    DriftReport,
    RecordError,
    classify,
    diff,
)
from mastersync.domain.reconciliation.runs import (
    SOURCE_RECORD_MISSING,
    ReconciliationRun,
    Role,
    source_missing_entry,
    source_missing_problem,
)

__all__ = [
    "DRIFT",
    "SOURCE_RECORD_MISSING",
    "Bucket",
    "DriftEntry",
    "DriftReport",
    "FieldDiff",
    "Normalisation",
    "OwnFields",
    "ReconciliationRun",
    "RecordError",
    "Role",
    "classify",
    "comparable",
    "diff",
    "field_diffs",
    "source_missing_entry",
    "source_missing_problem",
]
