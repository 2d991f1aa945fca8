"""The REST connector: paged incremental reads, and deliveries as templated requests.

Reads run in the hub's worker threads (a sync client); deliveries on its event loop (an
async client). Both share the authentication (one OAuth token) and the rate cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import httpx
import jmespath
import orjson
from jmespath.parser import ParsedResult

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.rest.http import (
    Limiter,
    OAuth2Flow,
    describe,
    make_auth,
    retry_after,
    server_time,
    transient_status,
)
from mastersync.connectors.rest.pages import (
    Cursor,
    PagingStuck,
    capped,
    continuation,
    first_params,
    later,
    minus,
    next_request,
)
from mastersync.connectors.rest.spec import (
    LookupSpec,
    ReadSpec,
    RequestTemplate,
    RestSettings,
    WriteSpec,
)
from mastersync.connectors.rest.templates import TemplateError, body, body_names, fill, names
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import (
    CheckResult,
    ConnectorError,
    Page,
    ReadFailure,
    SourceRecord,
    TerminalError,
    TransientError,
)
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    NotSent,
    TerminalFailure,
    TransientFailure,
    has_null,
)


@lru_cache(maxsize=512)
def _path(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


def search(expression: str, data: Any) -> Any:
    """A JMESPath's value in a JSON document."""
    return _path(expression).search(data)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _needs_target_key(template: RequestTemplate) -> bool:
    """Whether a request names the consumer's key (in its path, query or body)."""
    used = names(template.path).union(*(names(v) for v in template.params.values()))
    if template.method != "DELETE":  # a DELETE is sent without its body
        used |= body_names(template.body)
    return "target_key" in used


class RestConnector:
    """Reads from and writes to one system's JSON REST API."""

    def __init__(self, settings: RestSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        self.auth = make_auth(settings.auth, settings.base_url)
        self.limiter = Limiter(settings.rate_limit)
        self.headers = {"Accept": "application/json", **settings.headers}
        self._client = httpx.Client(
            base_url=settings.base_url,
            auth=self.auth,
            headers=self.headers,
            timeout=settings.timeout,
        )
        self._async: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def lists_inactive(self) -> bool:
        """Whether a listing may hold records deactivated at the API, as `read:` declares."""
        # Reconciliation asks once per run, not per domain: one domain whose listing holds
        # them is enough (saying false for it would report each one as drift, and every
        # repair deactivate it again). Without reads nothing is known: the port's default.
        reads = self.settings.read.values()
        return not reads or any(spec.lists_inactive for spec in reads)

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a listed record is active at the API, by the `read:` entry's `active`
        JMESPath; None without one, or when it gives no boolean."""
        spec = self.settings.read.get(domain)
        if spec is None or spec.active is None:
            return None
        found = search(spec.active, native)
        return found if isinstance(found, bool) else None

    # --- reading --------------------------------------------------------------------------
    def _spec(self, domain: str) -> ReadSpec:
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        return spec

    def _get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """GET with the rate cap, retrying 429 / 5xx / network errors (Retry-After honoured)."""
        attempt = 0
        while True:
            wait = self.limiter.reserve()
            if wait:
                time.sleep(wait)
            delay: float | None = None
            try:
                # No params at all, not an empty dict: httpx would drop the URL's own
                # query (a next-page link carries its parameters).
                response = self._client.get(url, params=params or None)
            except httpx.TransportError as exc:
                failure: ConnectorError = TransientError(f"GET {url}: {type(exc).__name__}: {exc}")
            else:
                if response.status_code < 400:
                    return response
                if not transient_status(response.status_code):
                    raise TerminalError(describe(response), status=response.status_code)
                delay = retry_after(response)
                if response.status_code == 429 and delay:
                    self.limiter.pause(delay)
                failure = TransientError(
                    describe(response), status=response.status_code, retry_after=delay
                )
            attempt += 1
            if attempt > self.settings.retries or (delay or 0) > self.settings.max_wait:
                raise failure
            time.sleep(
                delay if delay is not None else min(self.settings.max_wait, 0.25 * 2**attempt)
            )

    def _page(
        self, spec: ReadSpec, cursor: Cursor, first: bool, limit: int
    ) -> tuple[list[Any], dict[str, Any] | None, httpx.Response]:
        """One page: its rows, how to get the next (None: last page), the response."""
        if first:
            url, params = spec.path, first_params(spec, cursor.since, limit)
        else:
            absolute, params = next_request(spec, cursor, limit)
            url = absolute or spec.path
        response = self._get(url, params)
        try:
            document = response.json()
        except ValueError:
            raise TerminalError(
                f"GET {response.request.url.path}: the response is not JSON"
            ) from None
        rows = search(spec.records, document) if spec.records else document
        if rows is None:
            rows = []
        if not isinstance(rows, list):
            raise TerminalError(
                f"GET {response.request.url.path}: {spec.records or 'the body'} is not a list"
            )
        p = spec.pagination
        last = rows[-1] if rows and isinstance(rows[-1], dict) else None
        link = response.links.get("next", {}).get("url")
        body_next = search(p.next, document) if p.next else None
        here = response.request.url
        if p.kind == "next_url" and body_next:
            # Relative to the request (RFC 3986), not to the base URL: APIs answer with
            # server-absolute paths such as /services/data/v57.0/query/01g….
            body_next = str(here.join(str(body_next)))
        try:
            nxt = continuation(
                p,
                cursor,
                len(rows),
                limit,
                link_next=str(here.join(link)) if link else None,
                body_next=body_next,
                last_value=search(p.search_after_field or spec.key, last) if last else None,
            )
        except PagingStuck as exc:
            raise TerminalError(f"GET {spec.path}: {p.kind} paging: {exc}") from None
        if nxt is not None and p.kind in ("page", "offset", "search_after") and rows:
            # A server that ignores the page parameter answers the same page again: the
            # pass ends there rather than reading it for ever.
            seen = hashlib.blake2b(orjson.dumps(rows, default=str), digest_size=8).hexdigest()
            if not first and (cursor.next or {}).get("seen") == seen:
                nxt = None
            else:
                nxt["seen"] = seen
        return rows, nxt, response

    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """The next page of records changed since the saved cursor."""
        spec = self._spec(domain)
        cur = Cursor.parse(cursor)
        first = not cur.in_pass
        if first:
            since = minus(cur.hw, spec.lookback) if cur.hw is not None else None
            cur = Cursor(since=since if spec.since_param else None, hw=cur.hw)
        rows, nxt, response = self._page(spec, cur, first, limit)
        if first and spec.since_param:
            clock = server_time(response)
            cur.cap = clock.isoformat() if clock else None
        records: list[SourceRecord | ReadFailure] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                records.append(
                    ReadFailure(f"{spec.path}[{i}]", "record", "a record is not an object", row)
                )
                continue
            records.append(SourceRecord(row, f"{spec.path}:{_text(search(spec.key, row))}"))
            if spec.since_field:
                cur.hw = later(cur.hw, _text(search(spec.since_field, row)))
        if nxt is not None:
            cur.next = nxt
            return Page(records, cur.dump(), True)
        hw = cur.hw
        if hw is not None and cur.cap is not None:
            hw = capped(hw, cur.cap, spec.since_epoch)
        return Page(records, Cursor(hw=hw).dump(), False)

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record the API lists for the domain, by key."""
        spec = self._spec(domain)
        cur, first = Cursor(), True
        while True:
            rows, nxt, _ = self._page(spec, cur, first, self.settings.page_size)
            for row in rows:
                if isinstance(row, dict):
                    yield str(_text(search(spec.key, row))), row
            if nxt is None:
                return
            cur.next, first = nxt, False

    def check(self) -> CheckResult:
        """Authenticate, read the first record of each domain, and show the write requests."""
        details: list[str] = [f"base URL {self.settings.base_url}"]
        ok = True
        for domain, spec in self.settings.read.items():
            try:
                rows, nxt, response = self._page(spec, Cursor(), True, 1)
            except ConnectorError as exc:
                ok = False
                details.append(f"read {domain}: {exc.message}")
                continue
            details.append(
                f"read {domain}: GET {spec.path} -> {response.status_code}, "
                f"{len(rows)} record(s) on a first page of 1" + (", more pages" if nxt else "")
            )
        if isinstance(self.auth, OAuth2Flow) and self.auth.fetched:
            details.append(f"OAuth2 token from {self.auth.token_url}: fetched")
        for name, w in self.settings.write.items():
            calls = [
                f"{kind} {t.method} {t.path}"
                for kind, t in (
                    ("create", w.create),
                    ("update", w.update),
                    ("upsert", w.upsert),
                    ("deactivate", w.deactivate),
                )
                if t is not None
            ]
            details.append(f"write {name}: {'; '.join(calls)}")
        return CheckResult(ok, details)

    # --- writing --------------------------------------------------------------------------
    def _session(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._loop is not loop:
            self._async = httpx.AsyncClient(
                base_url=self.settings.base_url,
                auth=self.auth,
                headers=self.headers,
                timeout=self.settings.timeout,
            )
            self._loop = loop
        return self._async

    async def _call(
        self,
        template: RequestTemplate | LookupSpec,
        context: dict[str, Any],
        idempotency: str | None,
        ticket: str,
        *,
        nulls: bool = True,
    ) -> httpx.Response:
        """Make one request; network errors and 429/5xx raise TransientFailure, and so does
        a turn (rate cap, 429 pause) further off than ``delivery_wait``. ``ticket`` names the
        call across attempts: a slot kept for it is used by the retry. ``nulls``: the body
        carries a payload field sent as null (an update), else leaves it out (a create)."""
        method = template.method if isinstance(template, RequestTemplate) else "GET"
        sends_body = isinstance(template, RequestTemplate) and method != "DELETE"
        try:
            path = fill(template.path, context, encode=True)
            params = {k: fill(v, context, encode=False) for k, v in template.params.items()}
            json = (
                body(template.body, context, nulls=nulls)
                if isinstance(template, RequestTemplate) and sends_body
                else None
            )
        except TemplateError as exc:
            raise TerminalFailure(f"request template {template.path}: {exc}") from None
        content: bytes | None = None
        headers = {}
        if (
            json is None
            and isinstance(template, RequestTemplate)
            and sends_body
            and isinstance(template.body, str)
            and template.body.startswith("$")
        ):
            # A body that is one field's value, cleared: JSON null, where httpx would send
            # no body at all for json=None.
            content = b"null"
            headers["Content-Type"] = "application/json"
        if idempotency and self.settings.idempotency_header:
            headers[self.settings.idempotency_header] = idempotency
        wait, slot = self.limiter.take(ticket)
        if wait > self.settings.delivery_wait:
            # Waited out here, the turn would eat the delivery's timeout and the attempt
            # fail as "no answer" with no hint of when to come back; told, the delivery
            # engine retries when the turn comes, and the kept slot is its turn then.
            if slot is not None:
                self.limiter.keep(ticket, slot)
            # NotSent: the API saw nothing, so the retry spends none of the attempts.
            raise NotSent(
                f"{method} {path}: not sent, its turn (rate_limit, or the API's Retry-After) "
                f"comes in {wait:.2f} s",
                retry_after=wait,
            )
        if wait:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:  # the delivery timed out: the slot goes unused
                if slot is not None:
                    self.limiter.give_back()
                raise
        try:
            response = await self._session().request(
                method, path, params=params, json=json, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise TransientFailure(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        except ConnectorError as exc:  # the token endpoint refused, or is busy or down
            failed = TransientFailure if exc.transient else TerminalFailure
            raise failed(exc.message, status=exc.status, retry_after=exc.retry_after) from None
        if transient_status(response.status_code):
            delay = retry_after(response)
            if response.status_code == 429 and delay:
                self.limiter.pause(delay)
            raise TransientFailure(
                describe(response),
                status=response.status_code,
                response=response.text[:2000],
                retry_after=delay,
            )
        return response

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        """The response's JSON body (None when empty), or TerminalFailure for a 4xx, or a
        redirect: redirects are not followed (a write sent on elsewhere, with the
        credentials, is not this connector's to decide), so nothing was applied."""
        if response.status_code >= 400:
            raise TerminalFailure(
                describe(response), status=response.status_code, response=response.text[:2000]
            )
        if response.status_code >= 300:
            where = response.headers.get("Location", "no Location given")
            raise TerminalFailure(
                f"{describe(response)} (redirected to {where}: point the connector's "
                "base_url or path there)",
                status=response.status_code,
                response=response.text[:2000],
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _ack(self, spec: WriteSpec, document: Any, key: str | None) -> DeliveryAck:
        r = spec.response
        if document is not None and r.key:
            key = _text(search(r.key, document)) or key
        version = _text(search(r.version, document)) if r.version and document else None
        refs = {}
        for name, expression in r.keys.items():
            value = _text(search(expression, document)) if document is not None else None
            if value is not None:
                refs[name] = value
        return DeliveryAck(key, version, response={}, refs=refs)

    async def _lookup(self, spec: LookupSpec, context: dict[str, Any], ticket: str) -> str | None:
        """The consumer's key for the record, or None when it has none."""
        response = await self._call(spec, context, None, ticket)
        if response.status_code == 404:  # a lookup by key: "no such record"
            return None
        document = self._ok(response)
        rows = search(spec.records, document) if spec.records else document
        if isinstance(rows, list):
            rows = rows[0] if rows else None
        return _text(search(spec.key, rows)) if isinstance(rows, dict) else None

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Create, update or deactivate one record."""
        name = request.subscription.split(".", 1)[1]
        spec = self.settings.write.get(name)
        if spec is None:
            raise TerminalFailure(f"{self.system}: no 'write' settings for {request.subscription}")
        context: dict[str, Any] = {
            "target_key": request.target_key,
            "master_id": request.master_id,
            "version": request.version,
            "idempotency_key": request.idempotency_key,
            "payload": request.payload,
        }
        idem = request.idempotency_key
        ticket = f"{request.subscription}:{idem}"
        if request.operation is Operation.DEACTIVATE:
            if request.target_key is None and (
                spec.deactivate is None or _needs_target_key(spec.deactivate)
            ):
                # The consumer never acknowledged a key: it never had the record, or has it
                # under a natural key this request does not address it by.
                return DeliveryAck(None)
            if spec.deactivate is None:
                raise TerminalFailure(f"{self.system}: no 'deactivate' request for {name}")
            response = await self._call(
                spec.deactivate, context, f"{idem}:deactivate", f"{ticket}:deactivate"
            )
            if response.status_code == 404:  # already gone
                return DeliveryAck(request.target_key)
            return self._ack(spec, self._ok(response), request.target_key)
        if spec.upsert is not None:
            # One call that may create: a null goes out only to a record the consumer has
            # (the hub holds its key or says it acknowledged a version of it, or the lookup
            # finds it), never into a new one.
            held = request.target_key is not None or request.held
            if not held and spec.lookup is not None and has_null(request.payload):
                held = await self._lookup(spec.lookup, context, f"{ticket}:lookup") is not None
            response = await self._call(
                spec.upsert, context, f"{idem}:upsert", f"{ticket}:upsert", nulls=held
            )
            return self._ack(spec, self._ok(response), request.target_key)
        assert spec.create is not None
        assert spec.update is not None
        target = request.target_key
        if target is None and spec.lookup is not None:
            target = await self._lookup(spec.lookup, context, f"{ticket}:lookup")
        if target is not None:
            context["target_key"] = target
            response = await self._call(spec.update, context, f"{idem}:update", f"{ticket}:update")
            if response.status_code != 404:
                return self._ack(spec, self._ok(response), target)
            context["target_key"] = None  # deleted at the consumer: create it again
        response = await self._call(
            spec.create, context, f"{idem}:create", f"{ticket}:create", nulls=False
        )
        if response.status_code == 409 and spec.lookup is not None:
            # Created meanwhile (by hand, or by an attempt whose answer was lost).
            found = await self._lookup(spec.lookup, context, f"{ticket}:lookup")
            if found is not None:
                context["target_key"] = found
                response = await self._call(
                    spec.update, context, f"{idem}:update", f"{ticket}:update"
                )
                return self._ack(spec, self._ok(response), found)
        ack = self._ack(spec, self._ok(response), None)
        if ack.target_key is None:
            raise TerminalFailure(
                f"the create response has no key at {spec.response.key!r}: {response.text[:300]}"
            )
        return ack

    async def close(self) -> None:
        """Release connections."""
        if self._async is not None and self._loop is asyncio.get_running_loop():
            await self._async.aclose()
        self._async = None
        self._client.close()
