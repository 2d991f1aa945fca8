"""A small catalog API for the REST connector's tests: one list of records served with each
pagination style real APIs use, behind each authentication scheme, with injectable faults.

Page and offset paging are the classic ``?page=&per_page=`` and ``?offset=&limit=``; cursor
paging returns a token in the body (Stripe's ``starting_after``, Slack's ``next_cursor``);
next-URL paging returns the next page's URL in the body (Salesforce ``nextRecordsUrl``,
Akeneo ``_links.next.href``); search-after takes the last key seen (Akeneo products).
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


@dataclass
class Catalog:
    """The records and what the API should do."""

    records: list[dict[str, Any]] = field(default_factory=list)
    # "none", "api_key", "api_key_query", "bearer", "basic", "oauth2"
    auth: str = "none"
    token_lifetime: float = 3600.0
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    # Faults: the next n calls get `status` (with Retry-After when given).
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    calls: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    # The most a page holds whatever is asked (servers cap page sizes), and whether paging
    # parameters are ignored (every page is the first).
    page_cap: int | None = None
    ignores_paging: bool = False
    # The token endpoint's next n answers are 503s.
    token_down: int = 0
    # Cursor paging: records the server drops from a page after cutting it (a filter applied
    # server-side), so a page may be empty and still name a next cursor.
    hidden: set[str] = field(default_factory=set)
    # Cursor paging gone wrong: from this position on, an empty page naming the cursor (or,
    # next-URL paging, the URL) it was given; or, past the last record, empty pages naming
    # new cursors without end.
    cursor_stuck_at: int | None = None
    cursor_endless: bool = False

    def add(self, n: int, start: int = 0) -> None:
        """n records R0000…, each updated a minute after the previous."""
        for i in range(start, start + n):
            self.records.append(
                {"id": f"R{i:04d}", "name": f"Record {i}", "updated": self.stamp(i)}
            )

    @staticmethod
    def stamp(minutes: int) -> str:
        """An ISO timestamp `minutes` after the base."""
        return (BASE + dt.timedelta(minutes=minutes)).isoformat()

    def touch(self, key: str, minutes: int, **changes: Any) -> None:
        """Change a record at a moment."""
        for r in self.records:
            if r["id"] == key:
                r.update(changes, updated=self.stamp(minutes))


def _instant(stamp: Any) -> float:
    """A change stamp as epoch seconds: ISO times and epoch seconds both."""
    try:
        return float(stamp)
    except ValueError:
        return dt.datetime.fromisoformat(str(stamp)).timestamp()


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class CatalogApi:
    """The ASGI app."""

    def __init__(self, catalog: Catalog) -> None:
        self.c = catalog
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/page", self.page),
                Route("/offset", self.offset),
                Route("/cursor", self.cursor),
                Route("/next", self.next_url),
                Route("/search", self.search_after),
                Route("/all", self.everything),
            ]
        )

    async def token(self, request: Request) -> Response:
        """OAuth2 token endpoint: client_credentials or password grant, client via basic."""
        if self.c.token_down:
            self.c.token_down -= 1
            return JSONResponse({"error": "temporarily_unavailable"}, 503, {"Retry-After": "1"})
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        auth = request.headers.get("authorization", "")
        client = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
        if client != "app:s3cret":
            return _problem(401, "invalid_client")
        grant = form.get("grant_type")
        if grant == "password" and (form.get("username"), form.get("password")) != ("u", "p"):
            return _problem(400, "invalid_grant")
        if grant not in ("client_credentials", "password"):
            return _problem(400, "unsupported_grant_type")
        self.c.tokens_issued += 1
        token = f"tok{self.c.tokens_issued}"
        self.c.tokens[token] = time.monotonic() + self.c.token_lifetime
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.c.token_lifetime}
        )

    def _gate(self, request: Request) -> Response | None:
        c = self.c
        c.calls.append((time.monotonic(), request.url.path, dict(request.query_params)))
        h, q = request.headers, request.query_params
        ok = {
            "none": True,
            "api_key": h.get("x-api-key") == "k3y",
            "api_key_query": q.get("api_key") == "k3y",
            "bearer": h.get("authorization") == "Bearer t0ken",
            "basic": h.get("authorization") == "Basic " + base64.b64encode(b"user:pw").decode(),
            "oauth2": c.tokens.get(h.get("authorization", "")[7:], 0) > time.monotonic(),
        }[c.auth]
        if not ok:
            return _problem(401, "unauthorized")
        if c.fail_next > 0:
            c.fail_next -= 1
            headers = {"Retry-After": c.retry_after} if c.retry_after else None
            return _problem(c.fail_status, "try later", headers)
        return None

    def _selected(self, request: Request) -> list[dict[str, Any]]:
        since = request.query_params.get("updated_since")
        rows = sorted(self.c.records, key=lambda r: r["id"])
        if since:
            low = _instant(since)
            rows = [r for r in rows if _instant(r["updated"]) >= low]
        return rows

    async def page(self, request: Request) -> Response:
        """?page=1&per_page=n -> {"items": […]}"""
        if (refused := self._gate(request)) is not None:
            return refused
        n = min(int(request.query_params.get("per_page", 10)), self.c.page_cap or 10**9)
        p = 1 if self.c.ignores_paging else int(request.query_params.get("page", 1))
        return JSONResponse({"items": self._selected(request)[(p - 1) * n : p * n]})

    async def offset(self, request: Request) -> Response:
        """?offset=0&limit=n -> […] (a bare list)"""
        if (refused := self._gate(request)) is not None:
            return refused
        n = min(int(request.query_params.get("limit", 10)), self.c.page_cap or 10**9)
        o = 0 if self.c.ignores_paging else int(request.query_params.get("offset", 0))
        return JSONResponse(self._selected(request)[o : o + n])

    async def cursor(self, request: Request) -> Response:
        """?cursor=token&limit=n -> {"data": […], "meta": {"next_cursor": token|null}}"""
        if (refused := self._gate(request)) is not None:
            return refused
        c = self.c
        n = int(request.query_params.get("limit", 10))
        given = request.query_params.get("cursor")
        start = int(base64.b64decode(given or "MA=="))
        if given and c.cursor_stuck_at is not None and start >= c.cursor_stuck_at:
            return JSONResponse({"data": [], "meta": {"next_cursor": given}})
        rows = self._selected(request)
        page = [r for r in rows[start : start + n] if r["id"] not in c.hidden]
        more = start + n < len(rows) or c.cursor_endless
        nxt = base64.b64encode(str(start + n).encode()).decode() if more else None
        return JSONResponse({"data": page, "meta": {"next_cursor": nxt}})

    async def next_url(self, request: Request) -> Response:
        """-> {"records": […], "nextRecordsUrl": "/next?...&start=…" | absent}"""
        if (refused := self._gate(request)) is not None:
            return refused
        n = int(request.query_params.get("limit", 10))
        start = int(request.query_params.get("start", 0))
        rows = self._selected(request)
        body: dict[str, Any] = {"records": rows[start : start + n], "totalSize": len(rows)}
        if self.c.cursor_stuck_at is not None and start >= self.c.cursor_stuck_at:
            # The URL just asked for, named again as the next page's.
            body["records"] = []
            body["nextRecordsUrl"] = f"/next?{request.url.query}"
        elif start + n < len(rows):
            params = {**request.query_params, "start": str(start + n)}
            body["nextRecordsUrl"] = f"/next?{urllib.parse.urlencode(params)}"
        return JSONResponse(body)

    async def search_after(self, request: Request) -> Response:
        """?search_after=key&limit=n -> {"_embedded": {"items": […]}} ordered by key"""
        if (refused := self._gate(request)) is not None:
            return refused
        n = int(request.query_params.get("limit", 10))
        after = request.query_params.get("search_after", "")
        rows = [r for r in self._selected(request) if r["id"] > after]
        return JSONResponse({"_embedded": {"items": rows[:n]}})

    async def everything(self, request: Request) -> Response:
        """Every record in one response."""
        if (refused := self._gate(request)) is not None:
            return refused
        return JSONResponse({"items": self._selected(request)})
