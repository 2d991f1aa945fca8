"""Row <-> domain object conversion, shared by both SQL backends and their bulk writers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.records import BatchSummary, ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.domain.versions import Version

_INT = re.compile(r"^-?\d+$")

# Bound IN-lists: SQLite allows 32k parameters (999 before 3.32), but smaller lists plan
# better everywhere.
IN_CHUNK = 900


def in_chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most IN_CHUNK, one IN-list each."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def dumps(value: Any) -> str:
    """JSON text for a JSON column (Decimals and dates already JSON-shaped by the core).

    A raw payload is a connector's: a type JSON has no place for (a Decimal, a set) is
    written as its text rather than failing the batch that holds it.
    """
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def version_from_text(text: str) -> Version:
    """Stored version text back to a version: whole numbers are counters, the rest timestamps."""
    # isdecimal first: the common counter without a regex (read once per known record).
    return int(text) if text.isdecimal() or _INT.match(text) else text


def json_value(value: Any) -> Any:
    """A JSON column's value: raw SQLite cursors give text, PostgreSQL's JSONB is parsed."""
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


def instant(value: Any) -> Any:
    """A timestamp column as fixed-width UTC text (PostgreSQL gives datetimes)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


_json = json_value


# Column orders used by the bulk writers (executemany and COPY).
XREF_COLUMNS = (
    "domain",
    "system",
    "source_key",
    "master_id",
    "source_version",
    "source_ts",
    "values",
    "digest",
    "received_at",
)
GOLDEN_COLUMNS = (
    "master_id",
    "domain",
    "version",
    "attributes",
    "provenance",
    "lifecycle_state",
    "quality",
    "created_at",
    "updated_at",
    "trace_id",
    "merged_into",
)
OUTBOX_COLUMNS = (
    "event_id",
    "master_id",
    "domain",
    "version",
    "kind",
    "schema_version",
    "trace_id",
    "causation_id",
    "occurred_at",
    "payload",
)
LINEAGE_COLUMNS = (
    "at",
    "trace_id",
    "stage",
    "outcome",
    "domain",
    "master_id",
    "golden_version",
    "system",
    "source_key",
    "source_version",
    "batch_id",
    "detail",
)
EXCEPTION_COLUMNS = (
    "kind",
    "status",
    "system",
    "domain",
    "source_key",
    "master_id",
    "field",
    "rule",
    "message",
    "signature",
    "locator",
    "payload",
    "trace_id",
    "batch_id",
    "attempts",
    "created_at",
    "updated_at",
    "resolution",
    "actor",
    "channel",
)


def xref_row(c: Contribution) -> tuple[Any, ...]:
    """A contribution as an xref row."""
    return (
        c.domain,
        c.system,
        c.key,
        c.master_id,
        str(c.version),
        c.timestamp,
        dumps(c.values),
        c.digest,
        c.received_at,
    )


def pack_provenance(provenance: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Provenance stored once per source record, not once per field (a fifth of the bytes).

    ``{"sources": [{system, key, version, at}, ...], "fields": {field: source index}}``
    """
    origins = iter(provenance.values())
    first = next(origins, None)
    if first is not None and all(origin is first for origin in origins):
        # Every field from one source record (each new golden record, and any of one
        # source): what the loop below makes, without a lookup per field.
        return {"sources": [first], "fields": dict.fromkeys(provenance, 0)}
    sources: list[dict[str, str]] = []
    index: dict[tuple[str, ...], int] = {}
    # Fields from one source share one dict (merge makes them so): look it up once.
    seen: dict[int, int] = {}
    fields: dict[str, int] = {}
    for name, origin in provenance.items():
        position = seen.get(id(origin))
        if position is None:
            ident = tuple(origin.values())
            position = index.get(ident)
            if position is None:
                position = index[ident] = len(sources)
                sources.append(origin)
            seen[id(origin)] = position
        fields[name] = position
    return {"sources": sources, "fields": fields}


def unpack_provenance(stored: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Provenance as the core sees it: field -> {system, key, version, at}."""
    sources = stored["sources"]
    return {name: sources[i] for name, i in stored["fields"].items()}


def golden_row(g: GoldenRecord) -> tuple[Any, ...]:
    """A golden record as a row."""
    return (
        g.master_id,
        g.domain,
        g.version,
        dumps(g.attributes),
        dumps(pack_provenance(g.provenance)),
        g.lifecycle_state,
        g.quality,
        g.created_at,
        g.updated_at,
        g.trace_id,
        g.merged_into,
    )


def outbox_row(e: ChangeEvent) -> tuple[Any, ...]:
    """A change event as an outbox row."""
    return (
        e.event_id,
        e.master_id,
        e.domain,
        e.version,
        e.kind,
        e.schema_version,
        e.trace_id,
        e.causation_id,
        e.occurred_at,
        dumps(e.payload()),
    )


def lineage_row(e: LineageEntry) -> tuple[Any, ...]:
    """A lineage entry as a row."""
    return (
        e.at,
        e.trace_id,
        e.stage,
        e.outcome,
        e.domain,
        e.master_id,
        e.golden_version,
        e.system,
        e.source_key,
        e.source_version,
        e.batch_id,
        dumps(e.detail),
    )


def exception_row(e: ExceptionEntry) -> tuple[Any, ...]:
    """An inbox entry as a row."""
    return (
        e.kind,
        e.status.value,
        e.system,
        e.domain,
        e.source_key or "",
        e.master_id,
        e.field,
        e.rule,
        e.message,
        e.signature,
        e.locator,
        dumps(e.payload),
        e.trace_id,
        e.batch_id,
        e.attempts,
        e.created_at,
        e.updated_at or e.created_at,
        dumps(e.resolution) if e.resolution is not None else None,
        e.actor,
        e.channel,
    )


def contribution(row: Mapping[Any, Any]) -> Contribution:
    """An xref row as a contribution."""
    return Contribution(
        row["domain"],
        row["system"],
        row["source_key"],
        row["master_id"],
        version_from_text(row["source_version"]),
        row["source_ts"],
        _json(row["values"]),
        row["digest"],
        row["received_at"],
    )


def golden(row: Mapping[Any, Any]) -> GoldenRecord:
    """A golden row as a record."""
    return GoldenRecord(
        row["master_id"],
        row["domain"],
        row["version"],
        _json(row["attributes"]),
        unpack_provenance(_json(row["provenance"])),
        row["created_at"],
        row["updated_at"],
        row["quality"],
        row["trace_id"],
        row["merged_into"],
    )


def event(row: Mapping[Any, Any]) -> ChangeEvent:
    """An outbox row as a change event."""
    payload = _json(row["payload"]) if "payload" in row else {}
    return ChangeEvent(
        row["event_id"],
        row["master_id"],
        row["domain"],
        row["version"],
        row["kind"],
        payload.get("changes", {}),
        row["schema_version"],
        row["trace_id"],
        row["causation_id"],
        row["occurred_at"],
        payload.get("source", {}),
    )


def receipt(row: Mapping[Any, Any]) -> LineageEntry:
    """A delivered delivery as its receipt: version V of master M reached the system at T,
    after so many attempts, so long after the change was accepted."""
    history = _json(row["history"]) or []
    last = history[-1] if history else {}
    latency = row["latency_ms"]
    return LineageEntry(
        row["trace_id"],
        "deliver",
        "delivered",
        row["delivered_at"],
        row["domain"],
        row["master_id"],
        row["version"],
        # "<system>.<name>": a system's name may hold dots, a subscription's not.
        row["subscription"].rsplit(".", 1)[0],
        row["target_key"],
        None,
        None,
        {
            "subscription": row["subscription"],
            "attempts": row["attempts"],
            "latency_ms": None if latency is None else round(latency, 1),
            "operation": row["operation"],
            "duplicate": last.get("detail") == "duplicate",
            "replay": row["replay"] or None,
        },
    )


def lineage(row: Mapping[Any, Any]) -> LineageEntry:
    """A lineage row as an entry."""
    return LineageEntry(
        row["trace_id"],
        row["stage"],
        row["outcome"],
        row["at"],
        row["domain"],
        row["master_id"],
        row["golden_version"],
        row["system"],
        row["source_key"],
        row["source_version"],
        row["batch_id"],
        _json(row["detail"]),
        row["id"],
    )


def exception(row: Mapping[Any, Any]) -> ExceptionEntry:
    """An exceptions row as an inbox entry."""
    return ExceptionEntry(
        row["kind"],
        row["system"],
        row["domain"],
        row["rule"],
        row["message"],
        row["signature"],
        _json(row["payload"]),
        row["created_at"],
        row["source_key"] or None,
        row["master_id"],
        row["field"],
        row["locator"],
        row["trace_id"],
        row["batch_id"],
        ExceptionStatus(row["status"]),
        row["attempts"],
        row["updated_at"],
        _json(row["resolution"]) if row["resolution"] is not None else None,
        row["id"],
        row["actor"],
        row["channel"],
    )


def batch(row: Mapping[Any, Any]) -> BatchSummary:
    """A batches row as a summary."""
    return BatchSummary(
        row["batch_id"],
        row["system"],
        row["domain"],
        row["source"],
        row["started_at"],
        row["finished_at"],
        _json(row["counts"]),
    )
