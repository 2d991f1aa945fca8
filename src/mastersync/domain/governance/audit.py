"""The audit log: append-only entries chained by SHA-256, so any edit or deletion shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import NoneType
from typing import Any

import orjson

GENESIS = "0" * 64

# Types orjson spells exactly as the standard library's canonical form does (proven over
# every code point in tests/domain/test_audit.py). Floats are not among them (orjson
# writes 1e-05 as 0.00001), nor is anything json.dumps hands to str().
_SAME = frozenset({str, int, bool, NoneType})


def _stdlib_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _orjson_safe(value: Any) -> bool:
    """Whether ``value`` holds only dicts with text keys, lists, text, ints, bools, nulls."""
    t = type(value)
    if t is dict:
        for k, item in value.items():
            if type(k) is not str or (type(item) not in _SAME and not _orjson_safe(item)):
                return False
        return True
    if t is list or t is tuple:
        return all(type(item) in _SAME or _orjson_safe(item) for item in value)
    return t in _SAME


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, non-ASCII kept.

    The spelling is json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    default=str), which existing audit chains were hashed with; orjson writes the same
    bytes for plain values several times faster, and anything else takes the slow path.
    """
    try:
        if _orjson_safe(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, RecursionError):
        pass  # an integer beyond 64 bits, a lone surrogate, nesting deeper than orjson goes
    return _stdlib_json(value)


@dataclass(slots=True)
class AuditEntry:
    """One write to a golden record: who, when, through what, and each field before/after."""

    seq: int
    at: str
    master_id: str
    domain: str
    version: int
    action: str
    actor: str
    channel: str
    request_id: str
    # canonical_json of {field: {"before": ..., "after": ...}}: hashed exactly as stored.
    changes: str
    prev_hash: str
    hash: str = ""

    def content(self) -> str:
        """The text the hash covers (everything but the hash itself)."""
        return canonical_json(
            [
                self.seq,
                self.at,
                self.master_id,
                self.domain,
                self.version,
                self.action,
                self.actor,
                self.channel,
                self.request_id,
                self.changes,
                self.prev_hash,
            ]
        )

    def seal(self) -> AuditEntry:
        """Set the hash from the content and the previous entry's hash."""
        self.hash = hashlib.sha256(self.content().encode()).hexdigest()
        return self

    def field_changes(self) -> dict[str, dict[str, Any]]:
        """The before/after of each changed field."""
        loaded: dict[str, dict[str, Any]] = json.loads(self.changes)
        return loaded


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain does not hold, and why."""

    seq: int
    reason: str


def verify_chain(
    entries: Iterable[AuditEntry], start: tuple[int, str] = (0, GENESIS)
) -> list[ChainBreak]:
    """Every place the chain is broken: an edited entry, a missing or reordered one."""
    breaks: list[ChainBreak] = []
    expected_seq, prev = start
    for entry in entries:
        expected_seq += 1
        if entry.seq != expected_seq:
            breaks.append(
                ChainBreak(entry.seq, f"expected entry {expected_seq}: entries are missing")
            )
            expected_seq = entry.seq
        if entry.prev_hash != prev:
            breaks.append(ChainBreak(entry.seq, "does not follow the previous entry's hash"))
        recomputed = hashlib.sha256(entry.content().encode()).hexdigest()
        if recomputed != entry.hash:
            breaks.append(ChainBreak(entry.seq, "content does not match its hash (edited)"))
        prev = entry.hash
    return breaks
