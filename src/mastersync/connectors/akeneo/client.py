"""HTTP to one Akeneo PIM, built from the REST connector's parts: its OAuth 2.0 flow (the
password grant Akeneo uses), its judgement of statuses and Retry-After, its path templates.
Reads are retried on 429, 5xx and network errors; writes are not (the delivery engine
retries deliveries)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson

from mastersync.connectors.akeneo.events import subscription
from mastersync.connectors.akeneo.spec import AkeneoEvents, AkeneoRead, AkeneoSettings
from mastersync.connectors.akeneo.values import Attribute
from mastersync.connectors.rest.http import describe, make_auth, retry_after, transient_status
from mastersync.connectors.rest.spec import OAuth2Auth
from mastersync.connectors.rest.templates import fill
from mastersync.ports.connector import ConnectorError, TerminalError, TransientError

TOKEN_PATH = "/api/oauth/v1/token"
REST = "/api/rest/v1"
PRODUCT = REST + "/products/{identifier}"
PRODUCT_BY_UUID = REST + "/products-uuid/{uuid}"
ATTRIBUTE = REST + "/attributes/{code}"


class AkeneoClient:
    """Requests to the PIM's REST API and its Event Platform, with one OAuth token."""

    def __init__(self, settings: AkeneoSettings, *, keep_alive: bool = True) -> None:
        self.settings = settings
        self.auth = make_auth(
            OAuth2Auth(
                kind="oauth2",
                token_url=TOKEN_PATH,
                grant="password",
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                username=settings.username,
                password=settings.password,
            ),
            settings.url,
        )
        self.http = httpx.Client(
            base_url=settings.url,
            auth=self.auth,
            headers={"Accept": "application/json", **settings.headers},
            timeout=settings.timeout,
            # Without keep-alive no connection outlives its request (for a client nobody
            # closes: the receiver's).
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=20 if keep_alive else 0
            ),
        )
        self._attributes: dict[str, Attribute] = {}
        self._lock = threading.Lock()

    def call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        retries: int = 0,
    ) -> httpx.Response:
        """A response below 400, or 404 (the caller decides what absence means); other
        statuses raise TransientError (429, 5xx; after ``retries`` more tries) or
        TerminalError."""
        attempt = 0
        while True:
            delay: float | None = None
            try:
                # No params at all rather than an empty dict: httpx would drop the query
                # of a next-page link.
                response = self.http.request(
                    method, url, params=params or None, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                failure: ConnectorError = TransientError(
                    f"{method} {url}: {type(exc).__name__}: {exc}"
                )
            else:
                if response.status_code < 400 or response.status_code == 404:
                    return response
                if not transient_status(response.status_code):
                    raise TerminalError(describe(response), status=response.status_code)
                delay = retry_after(response)
                failure = TransientError(
                    describe(response), status=response.status_code, retry_after=delay
                )
            attempt += 1
            if attempt > retries or (delay or 0) > self.settings.max_wait:
                raise failure
            time.sleep(
                delay if delay is not None else min(self.settings.max_wait, 0.25 * 2**attempt)
            )

    def get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON document at a URL (None: 404), reads retried."""
        response = self.call("GET", url, params=params, retries=self.settings.retries)
        if response.status_code == 404:
            return None
        try:
            return response.json()
        except ValueError:
            raise TerminalError(
                f"GET {response.request.url.path}: the response is not JSON"
            ) from None

    # --- products -------------------------------------------------------------------------
    def page(
        self, read: AkeneoRead, limit: int, next_url: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the product listing (search_after pagination) and the URL of the
        next page, as Akeneo links it (None: the last page)."""
        if next_url is None:
            params: dict[str, Any] = {"pagination_type": "search_after", "limit": limit}
            if read.search:
                params["search"] = orjson.dumps(read.search).decode()
            if read.attributes:
                params["attributes"] = ",".join(read.attributes)
            document = self.get(REST + "/products", params)
        else:
            document = self.get(next_url)
        if not isinstance(document, dict):
            raise TerminalError(f"GET {REST}/products: no listing in the response")
        items = (document.get("_embedded") or {}).get("items") or []
        link = ((document.get("_links") or {}).get("next") or {}).get("href")
        rows = [row for row in items if isinstance(row, dict)]
        if not link:
            return rows, None
        # Relative to the API's origin (akeneo-mock-server) or absolute (Akeneo itself).
        return rows, str(self.http.base_url.join(str(link)))

    def listed(
        self, read: AkeneoRead, *, uuid: str | None, identifier: str | None
    ) -> dict[str, Any] | None:
        """The product named by uuid (else identifier) as the domain's listing has it: read
        through the listing with the domain's search and attributes, narrowed to that product
        (None: it is gone, or outside the domain)."""
        field, key = ("uuid", uuid) if uuid else ("identifier", identifier)
        if not key:
            return None
        # Several rules on one property are ANDed: the domain's own rules on it still hold.
        own = read.search.get(field) or []
        rules = [*(own if isinstance(own, list) else [own]), {"operator": "IN", "value": [key]}]
        narrowed = read.model_copy(update={"search": {**read.search, field: rules}})
        rows, _ = self.page(narrowed, 1)
        # Checked, not trusted: a PIM that ignored the narrowing filter (uuid filters came
        # with Akeneo 7) would answer with the domain's first product instead.
        return next((row for row in rows if row.get(field) == key), None)

    def product(self, *, uuid: str | None, identifier: str | None) -> dict[str, Any] | None:
        """A product in the standard format, every value (None: there is none)."""
        if uuid:
            url = fill(PRODUCT_BY_UUID, {"uuid": uuid}, encode=True)
        else:
            url = fill(PRODUCT, {"identifier": identifier}, encode=True)
        document = self.get(url)
        return document if isinstance(document, dict) else None

    def upsert(self, identifier: str, body: dict[str, Any]) -> int:
        """PATCH a product by identifier (Akeneo creates it when missing); the status."""
        url = fill(PRODUCT, {"identifier": identifier}, encode=True)
        return self.call("PATCH", url, json=body).status_code

    def upsert_by_uuid(self, uuid: str, body: dict[str, Any]) -> int:
        """PATCH a product by uuid: its identifier too, when the body gives another; the
        status."""
        url = fill(PRODUCT_BY_UUID, {"uuid": uuid}, encode=True)
        return self.call("PATCH", url, json=body).status_code

    def attribute(self, code: str) -> Attribute:
        """An attribute's shape (localizable, scopable), read once."""
        with self._lock:
            known = self._attributes.get(code)
        if known is not None:
            return known
        document = self.get(fill(ATTRIBUTE, {"code": code}, encode=True))
        if not isinstance(document, dict):
            raise TerminalError(f"Akeneo has no attribute {code!r}")
        found = Attribute.of({**document, "code": code})
        with self._lock:
            self._attributes[code] = found
        return found

    # --- the Event Platform ---------------------------------------------------------------
    def _platform(self, events: AkeneoEvents) -> tuple[str, dict[str, str]]:
        api = (events.api_url or self.settings.url.rstrip("/") + "/api/v1").rstrip("/")
        # Akeneo's hosted Event Platform names the PIM and the connection in headers.
        headers = {"X-PIM-URL": self.settings.url, "X-PIM-CLIENT-ID": self.settings.client_id}
        return api, headers

    def subscribe(self, events: AkeneoEvents) -> None:
        """Make (or restore: reactivated, pointed at ``events.url``) the subscriber and its
        product subscription; PATCH creates what is missing, so it can be done any time."""
        api, headers = self._platform(events)
        subscriber = fill("/subscribers/{id}", {"id": events.subscriber}, encode=True)
        self.call(
            "PATCH",
            api + subscriber,
            json={"id": events.subscriber, "name": events.subscriber},
            headers=headers,
            retries=self.settings.retries,
        )
        path = fill("/subscriptions/{id}", {"id": events.subscription}, encode=True)
        body = subscription(events.url, events.secret, events.previous_secret, events.subscription)
        response = self.call(
            "PATCH",
            api + subscriber + path,
            json=body,
            headers=headers,
            retries=self.settings.retries,
        )
        if response.status_code == 404:
            raise TerminalError(f"PATCH {api}{subscriber}{path}: the Event Platform answered 404")

    def subscription_state(self, events: AkeneoEvents) -> dict[str, Any] | None:
        """The subscription as the Event Platform holds it (None: there is none)."""
        api, headers = self._platform(events)
        path = fill(
            "/subscribers/{s}/subscriptions/{id}",
            {"s": events.subscriber, "id": events.subscription},
            encode=True,
        )
        response = self.call("GET", api + path, headers=headers, retries=self.settings.retries)
        if response.status_code == 404:
            return None
        document = response.json()
        return document if isinstance(document, dict) else None

    def close(self) -> None:
        """Close the connections."""
        self.http.close()
