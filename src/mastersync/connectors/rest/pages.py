"""Paging through a list endpoint, and the cursor an incremental read persists.

A cursor is JSON: ``since`` (the value asked for in this pass), ``next`` (how to get the
next page of the pass: a page number, an offset, a token, a URL or a search-after value),
``hw`` (the highest change stamp seen) and ``cap`` (the server's clock when the pass
started). A pass ends at its last page; the next one asks for changes since
min(hw, cap) minus the lookback. The cap matters with page or offset paging: records
changed while a pass runs move between pages and can be missed, but they changed after
the pass began, so the next pass reads them again.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import orjson

from mastersync.connectors.rest.spec import Pagination, ReadSpec


def stamp_order(value: str) -> tuple[int, float, str]:
    """A sort key for change stamps: numbers as numbers, ISO times as instants."""
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        # "nan" and "inf" read as floats too, but order nothing (NaN compares false both
        # ways, and the cursor could go back to it): they are opaque text.
        if math.isfinite(number):
            return (0, number, "")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return (2, 0.0, value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (1, moment.timestamp(), "")


def later(a: str | None, b: str | None) -> str | None:
    """The later of two change stamps."""
    if a is None or b is None:
        return a if b is None else b
    return a if stamp_order(a) >= stamp_order(b) else b


def minus(stamp: str, seconds: float) -> str:
    """A change stamp moved back by a lookback (numbers and ISO times; others unchanged)."""
    if not seconds:
        return stamp
    kind, number, _ = stamp_order(stamp)
    if kind == 0:
        text = stamp.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            # An integer cursor (epoch seconds, a sequence) stays an integer: APIs that
            # take "1700000000" refuse "1699999940.0".
            return str(int(text) - math.ceil(seconds))
        return repr(number - seconds)
    if kind == 1:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (moment - dt.timedelta(seconds=seconds)).isoformat()
    return stamp


def capped(hw: str, cap: str, epoch: str | None) -> str:
    """The earlier of a pass's newest change stamp and the server's clock (an ISO time) at
    its start, in the stamp's own spelling: changes during the pass are read again.

    Numbers are compared only as epoch ``seconds`` or ``milliseconds``; otherwise they may
    be sequences, which no clock bounds.
    """
    a, b = stamp_order(hw), stamp_order(cap)
    if a[0] == b[0] == 1:
        return cap if b < a else hw
    if a[0] == 0 and b[0] == 1 and epoch is not None:
        clock = math.floor(b[1] * (1000 if epoch == "milliseconds" else 1))
        return str(clock) if clock < a[1] else hw
    return hw


# Token and URL paging follow an empty page that names a next one (a server filtering after
# it cut the page answers empty pages mid-list); this many in a row end the pass in an error,
# so that a server naming new cursors without end cannot keep a reader for ever.
MAX_EMPTY_PAGES = 1000


class PagingStuck(Exception):
    """The server's next-page names would read for ever; the message says how."""


@dataclass
class Cursor:
    """Where an incremental read is."""

    since: str | None = None
    next: dict[str, Any] | None = None
    hw: str | None = None
    cap: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """A saved cursor (None: read from the beginning)."""
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(data.get("since"), data.get("next"), data.get("hw"), data.get("cap"))

    def dump(self) -> str:
        """The cursor to persist."""
        data = {"since": self.since, "next": self.next, "hw": self.hw, "cap": self.cap}
        return orjson.dumps({k: v for k, v in data.items() if v is not None}).decode()

    @property
    def in_pass(self) -> bool:
        """A pass is under way (its next page is known)."""
        return self.next is not None


def first_params(spec: ReadSpec, since: str | None, limit: int) -> dict[str, Any]:
    """Query parameters of a pass's first page."""
    p = spec.pagination
    params: dict[str, Any] = dict(spec.params)
    if p.kind != "none" and p.size_param:
        params[p.size_param] = limit
    if p.kind == "page":
        params[p.page_param] = p.first_page
    elif p.kind == "offset":
        params[p.offset_param] = 0
    if spec.since_param and since is not None:
        params[spec.since_param] = since
    return params


def next_request(spec: ReadSpec, cursor: Cursor, limit: int) -> tuple[str | None, dict[str, Any]]:
    """(an absolute URL or None for the spec's path, query parameters) of the next page."""
    p, nxt = spec.pagination, cursor.next or {}
    if "url" in nxt:  # link / next_url: the API built the URL, parameters included
        return str(nxt["url"]), {}
    params = first_params(spec, cursor.since, limit)
    if "page" in nxt:
        params[p.page_param] = nxt["page"]
    elif "offset" in nxt:
        params[p.offset_param] = nxt["offset"]
    elif "token" in nxt:
        params[p.cursor_param] = nxt["token"]
    elif "after" in nxt:
        params[p.search_after_param] = nxt["after"]
    return None, params


def continuation(
    p: Pagination,
    cursor: Cursor,
    count: int,
    limit: int,
    *,
    link_next: str | None,
    body_next: Any,
    last_value: Any,
) -> dict[str, Any] | None:
    """How to get the page after this one (None: this was the pass's last page).

    Page, offset and search-after paging go on to an empty page: a page shorter than
    asked may be the server's own cap (at most 10, say, when 100 were asked), and taking it
    for the last ended the pass early, the cursor past records never read. Token and URL
    paging go on while the server names a next page, an empty page too (see ``named``)."""
    full = count > 0
    nxt = cursor.next or {}
    if p.kind == "page":
        return {"page": nxt.get("page", p.first_page) + 1} if full else None
    if p.kind == "offset":
        return {"offset": nxt.get("offset", 0) + count} if full else None
    if p.kind == "cursor":
        return named(cursor, count, {"token": str(body_next)} if body_next else None)
    if p.kind == "link":
        return named(cursor, count, {"url": link_next} if link_next else None)
    if p.kind == "next_url":
        return named(cursor, count, {"url": str(body_next)} if body_next else None)
    if p.kind == "search_after":
        return {"after": last_value} if full and last_value is not None else None
    return None


def named(cursor: Cursor, count: int, nxt: dict[str, Any] | None) -> dict[str, Any] | None:
    """A next page the server named (a token or a URL), followed even after an empty page;
    PagingStuck when it names the page just read again, or after MAX_EMPTY_PAGES empty
    pages in a row."""
    if nxt is None:
        return None
    asked = cursor.next or {}
    what = "cursor" if "token" in nxt else "next-page URL"
    name = nxt.get("token", nxt.get("url"))
    if name == asked.get("token", asked.get("url")):
        raise PagingStuck(
            f"the API answered the {what} {name!r} with the same {what} again (on a "
            f"{'full' if count else 'empty'} page): following it would read that page for "
            "ever, so the pass stops here and later records are not read; if the API marks "
            "its last page another way, point pagination.next at an expression that is empty "
            "there"
        )
    empty = 0 if count else int(asked.get("empty", 0)) + 1
    if empty >= MAX_EMPTY_PAGES:
        raise PagingStuck(
            f"{empty} empty pages in a row, each naming a next {what} (the last {name!r}): "
            f"the pass stops here rather than follow {what}s without end"
        )
    if empty:
        nxt["empty"] = empty  # counted across reads: the cursor is saved after each page
    return nxt
