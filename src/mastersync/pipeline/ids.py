"""Identifiers: time-ordered master and event ids, W3C trace ids, UTC timestamps."""

from __future__ import annotations

import datetime as dt
import os
import time


def _time_ordered() -> str:
    """32 hex digits: 48 bits of milliseconds, then 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return f"{value:032x}"


def new_id(prefix: str) -> str:
    """``prefix_`` + 32 hex digits: 48 bits of milliseconds, then 80 random bits.

    Time-ordered ids keep B-tree inserts at the right edge of the index, and hex keeps
    their text order equal to their time order.
    """
    return f"{prefix}_{_time_ordered()}"


def new_trace_id() -> str:
    """A W3C trace-context trace id (32 hex digits): 48 bits of milliseconds, then 80 random.

    Time-ordered for the same reason as ``new_id``: lineage is indexed by trace id, and
    random ids scattered each batch's index inserts over the whole index (a page written
    per lineage row at commit). The random part keeps them unique, and its last 7 bytes
    random as the trace-context recommendation asks.
    """
    return _time_ordered()


def utc_now() -> str:
    """Now, as fixed-width UTC text."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
