"""Identifiers: time-ordered master and event ids, W3C trace ids, UTC timestamps."""

from __future__ import annotations

import datetime as dt
import os
import random
import time

# The random bits' source: seeded from the system's entropy, and again in a forked child,
# so that no two processes share a sequence. Ids are no secrets, and a system call per id
# (os.urandom) was a twentieth of ingesting a changed record. An instance of its own: the
# module's shared one is seeded to fixed values by test tools (hypothesis, say), which
# would repeat ids.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def _time_ordered() -> str:
    """32 hex digits: 48 bits of milliseconds, then 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | _random.getrandbits(80)
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
