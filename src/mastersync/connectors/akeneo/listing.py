"""When the product listing runs, and where a listing under way is.

Akeneo's ``updated`` search filter cannot be relied on (akeneo-mock-server ignores it), so
there is no "changed since" read: a pass lists every product and ingest skips what it has
applied. Without events every poll is a pass. With events a pass runs once when the hub
starts (events sent while it was down are lost) and then every ``reconcile_every`` seconds
(events the receiver never got, a subscription that was suspended).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import orjson


@dataclass
class Cursor:
    """The last finished pass (when it began), and the next page of the pass under way."""

    listed: str | None = None
    next: str | None = None
    started: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The saved cursor (None: never listed)."""
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(data.get("listed"), data.get("next"), data.get("started"))

    def dump(self) -> str:
        """The cursor to save."""
        data = {"listed": self.listed, "next": self.next, "started": self.started}
        return orjson.dumps({k: v for k, v in data.items() if v is not None}).decode()

    @property
    def in_pass(self) -> bool:
        """A pass is under way (its next page is known)."""
        return self.next is not None


def due(
    cursor: Cursor,
    *,
    events: bool,
    listed_here: bool,
    reconcile_every: float,
    now: dt.datetime,
) -> bool:
    """Whether a new pass starts now."""
    if not events or not listed_here or cursor.listed is None:
        return True
    last = dt.datetime.fromisoformat(cursor.listed)
    return (now - last).total_seconds() >= reconcile_every
