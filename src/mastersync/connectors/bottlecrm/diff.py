"""Change detection by listing in full: what a poll hands over is every record whose content
differs from what the last polls handed over (pure: no I/O).

BottleCRM's lists have no "changed since" filter and its accounts carry no change time, so
the cursor remembers a fingerprint of each record handed over. A record is handed over when
it is new or its fingerprint differs; a record missing from a complete listing was deleted
(``read_state`` is how the hub learns that) and is forgotten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

# Hex digits of SHA-256 kept per record: 64 bits, so two contents of one record collide with
# odds of about 1 in 10^19, and the cursor stays small (a key and 16 characters a record).
_DIGITS = 16


def fingerprint(record: dict[str, Any]) -> str:
    """A short hash of a record's content (keys sorted: the same content, the same hash)."""
    text = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(text).hexdigest()[:_DIGITS]


@dataclass
class Cursor:
    """What has been handed over (key -> fingerprint), and the pass under way, if any."""

    seen: dict[str, str] = field(default_factory=dict)
    # The id of the listing being handed over page by page (held by the connector).
    pass_id: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The cursor saved after the last page (None: nothing handed over yet)."""
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(dict(data.get("seen", {})), data.get("pass"))

    def dump(self) -> str:
        """The cursor to save."""
        data: dict[str, Any] = {"seen": self.seen}
        if self.pass_id is not None:
            data["pass"] = self.pass_id
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class Listed:
    """One record of a listing: its key, content and fingerprint."""

    key: str
    record: dict[str, Any]
    print: str

    @classmethod
    def of(cls, key: str, record: dict[str, Any]) -> Listed:
        """A record with its fingerprint."""
        return cls(key, record, fingerprint(record))


def changed(listing: Iterable[Listed], seen: dict[str, str]) -> list[Listed]:
    """The records that are new or differ from what was handed over, in listing order."""
    return [item for item in listing if seen.get(item.key) != item.print]


def forget_missing(seen: dict[str, str], listed: set[str]) -> dict[str, str]:
    """What was handed over, less the records a complete listing no longer holds."""
    return {k: v for k, v in seen.items() if k in listed}
