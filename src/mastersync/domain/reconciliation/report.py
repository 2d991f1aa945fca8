"""Drift reports: every record of a reconciliation in exactly one bucket, with examples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mastersync.domain.reconciliation.compare import (
    TRIMMED,
    FieldDiff,
    Normalisation,
    field_diffs,
)


class Bucket(StrEnum):
    """Where one record of a reconciliation stands."""

    # Both sides hold it and agree.
    MATCHED = "matched"
    # The hub expects it; the system does not hold it.
    MISSING = "missing"
    # The system holds it; the hub does not expect it there.
    EXTRA = "extra"
    # Both hold it; fields differ.
    MISMATCHED = "mismatched"
    # Not drift: a target still lists it and the hub deactivated it there (a listing that
    # holds deactivated records); or a source lists it no more and a steward accepted that
    # deletion (its inbox entry ignored).
    RETIRED = "retired"
    # A consumer that is also a source lists a record of its own the subscription does not
    # send it (the hub reads it from there): not drift.
    SOURCED = "sourced"
    # A consumer that is also a source holds values of its own in fields it may write (it
    # changed them and the hub has not read them yet, or read them and kept another value):
    # the hub reads them from there and never pushes its own over them. Not drift.
    CHANGED_AT_SOURCE = "changed_at_source"

    @property
    def drift(self) -> bool:
        """Whether records in this bucket are drift."""
        return self in (Bucket.MISSING, Bucket.EXTRA, Bucket.MISMATCHED)


DRIFT = (Bucket.MISSING, Bucket.EXTRA, Bucket.MISMATCHED)


@dataclass(frozen=True, slots=True)
class DriftEntry:
    """One record's place in a report."""

    key: str
    bucket: Bucket
    master_id: str | None = None
    diffs: tuple[FieldDiff, ...] = ()
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        out: dict[str, Any] = {"key": self.key, "master_id": self.master_id}
        if self.diffs:
            out["fields"] = [d.as_dict() for d in self.diffs]
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that could not be compared: which one, which field, which rule, and why."""

    key: str
    field: str | None
    rule: str
    message: str
    master_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "key": self.key,
            "master_id": self.master_id,
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass
class DriftReport:
    """Counts per bucket (exact) and the first ``limit`` records of each (all if None)."""

    limit: int | None = 20
    counts: Counter[Bucket] = field(default_factory=Counter)
    examples: dict[Bucket, list[DriftEntry]] = field(default_factory=dict)
    error_count: int = 0
    errors: list[RecordError] = field(default_factory=list)

    def add(self, entry: DriftEntry) -> None:
        """Count a record, and keep it while the bucket has room for examples."""
        self.counts[entry.bucket] += 1
        kept = self.examples.setdefault(entry.bucket, [])
        if self.limit is None or len(kept) < self.limit:
            kept.append(entry)

    def fail(self, error: RecordError) -> None:
        """Count a record that could not be compared."""
        self.error_count += 1
        if self.limit is None or len(self.errors) < self.limit:
            self.errors.append(error)

    @property
    def drift(self) -> int:
        """Records that are missing, extra or mismatched."""
        return sum(self.counts[b] for b in DRIFT)

    @property
    def clean(self) -> bool:
        """No drift, and nothing that could not be compared."""
        return self.drift == 0 and self.error_count == 0

    def keys(self, bucket: Bucket) -> list[str]:
        """The kept keys of a bucket."""
        return [e.key for e in self.examples.get(bucket, [])]

    def count_dict(self) -> dict[str, int]:
        """Counts by bucket name, every bucket present, errors included."""
        out = {b.value: self.counts[b] for b in Bucket}
        out["errors"] = self.error_count
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "counts": self.count_dict(),
            "examples": {
                b.value: [e.as_dict() for e in self.examples.get(b, [])]
                for b in Bucket
                if b is not Bucket.MATCHED and self.examples.get(b)
            },
            "errors": [e.as_dict() for e in self.errors],
        }


def classify(
    key: str,
    expected: Mapping[str, Any] | None,
    actual: Mapping[str, Any] | None,
    *,
    master_id: str | None = None,
    fields: Iterable[str] = (),
    norm: Normalisation = TRIMMED,
) -> DriftEntry:
    """The bucket of one record, given what the hub expects and what the system holds."""
    if expected is None and actual is None:
        raise ValueError(f"record {key!r} is on neither side")
    if actual is None:
        return DriftEntry(key, Bucket.MISSING, master_id)
    if expected is None:
        return DriftEntry(key, Bucket.EXTRA, master_id)
    diffs = field_diffs(expected, actual, fields=fields, norm=norm)
    if diffs:
        return DriftEntry(key, Bucket.MISMATCHED, master_id, tuple(diffs))
    return DriftEntry(key, Bucket.MATCHED, master_id)


def diff(
    expected: Mapping[str, Mapping[str, Any]],
    actual: Mapping[str, Mapping[str, Any]],
    *,
    fields: Iterable[str] = (),
    norm: Normalisation = TRIMMED,
    limit: int | None = None,
) -> DriftReport:
    """Compare two keyed sets of records at once (what fits in memory; the pipeline streams
    and classifies record by record with the same rules)."""
    names = tuple(fields)
    report = DriftReport(limit)
    for key in sorted(set(expected) | set(actual)):
        report.add(classify(key, expected.get(key), actual.get(key), fields=names, norm=norm))
    return report
