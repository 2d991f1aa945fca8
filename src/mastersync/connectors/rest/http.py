"""HTTP plumbing of the REST connector: authentication, the client-side rate cap, and how a
response's status is judged (done, worth another try, or not)."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import math
import threading
import time
from collections.abc import Generator

import httpx

from mastersync.connectors.rest.spec import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    OAuth2Auth,
    RateLimit,
)
from mastersync.ports.connector import TerminalError, TransientError


class OAuth2Flow(httpx.Auth):
    """Fetches a token from the token endpoint, keeps it until shortly before it expires,
    and fetches a new one when the API answers 401 to a token it had accepted."""

    requires_response_body = True

    def __init__(self, settings: OAuth2Auth, base_url: str) -> None:
        self.settings = settings
        self.token_url = str(httpx.URL(base_url).join(settings.token_url))
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0  # tokens fetched so far (a figure for `check` and tests)

    def _valid(self) -> str | None:
        with self._lock:
            margin = self.settings.refresh_margin
            if self._token is not None and time.monotonic() < self._expires - margin:
                return self._token
            return None

    def _token_request(self) -> httpx.Request:
        s = self.settings
        form: dict[str, str] = {"grant_type": s.grant}
        if s.grant == "password":
            form["username"], form["password"] = s.username or "", s.password or ""
        if s.scope:
            form["scope"] = s.scope
        headers = {"Accept": "application/json"}
        if s.client_auth == "basic":
            pair = f"{s.client_id}:{s.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form["client_id"], form["client_secret"] = s.client_id, s.client_secret
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _store(self, response: httpx.Response) -> str:
        if transient_status(response.status_code):
            # The token endpoint busy or down is as passing as any other call's 5xx or 429:
            # a read is tried again, a delivery retried (it was dead-lettered at once).
            raise TransientError(
                f"token endpoint {self.token_url} answered {response.status_code}: "
                f"{response.text[:300]}",
                status=response.status_code,
                retry_after=retry_after(response),
            )
        if response.status_code >= 400:
            raise TerminalError(
                f"token endpoint {self.token_url} answered {response.status_code}: "
                f"{response.text[:300]}",
                status=response.status_code,
            )
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise TerminalError(f"token endpoint {self.token_url} gave no access_token") from None
        lifetime = float(body.get("expires_in") or 3600)
        with self._lock:
            self._token, self._expires = token, time.monotonic() + lifetime
            self.fetched += 1
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send the request with a valid token; on 401 fetch a new token and try once more."""
        token = self._valid()
        if token is None:
            token = self._store((yield self._token_request()))
        header, prefix = self.settings.header, self.settings.prefix
        request.headers[header] = prefix + token
        response = yield request
        if response.status_code == 401:
            with self._lock:
                self._token = None
            token = self._store((yield self._token_request()))
            request.headers[header] = prefix + token
            yield request


class HeaderAuth(httpx.Auth):
    """A fixed header (an API key, a bearer token) on every request."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header."""
        request.headers[self.name] = self.value
        yield request


class QueryAuth(httpx.Auth):
    """A fixed query parameter (an API key some APIs want in the URL) on every request."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the parameter."""
        request.url = request.url.copy_merge_params({self.name: self.value})
        yield request


def make_auth(settings: Auth | None, base_url: str) -> httpx.Auth | None:
    """The httpx authentication a connector's settings describe."""
    if settings is None:
        return None
    if isinstance(settings, ApiKeyAuth):
        if settings.query_param:
            return QueryAuth(settings.query_param, settings.value)
        return HeaderAuth(settings.header, settings.value)
    if isinstance(settings, BearerAuth):
        return HeaderAuth("Authorization", f"Bearer {settings.token}")
    if isinstance(settings, BasicAuth):
        return httpx.BasicAuth(settings.username, settings.password)
    return OAuth2Flow(settings, base_url)


class Limiter:
    """A token bucket shared by every request of a connector (threads and event loop), a
    pause for all of them after the API said 429, and slots kept for deliveries that are
    retried when their turn comes rather than waiting for it in place."""

    def __init__(self, settings: RateLimit | None) -> None:
        self.rate = settings.per_second if settings else None
        self.burst = settings.burst if settings else 1
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        # ticket -> when (monotonic) the slot kept for it comes.
        self._kept: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, ticket: str | None = None) -> tuple[float, float | None]:
        """A slot: how long to wait before using it, and when the cap's slot comes (None
        without a cap). A slot kept for ``ticket`` is used before a new one is taken."""
        with self._lock:
            now = time.monotonic()
            pause = max(0.0, self._paused_until - now)
            if self.rate is None:
                return pause, None
            at = self._kept.pop(ticket, None) if ticket is not None else None
            if at is None:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                self._tokens -= 1
                # Below zero: queued behind earlier reservations.
                at = now + max(0.0, -self._tokens / self.rate)
            return max(pause, at - now), at

    def reserve(self) -> float:
        """Take a slot; returns how long to wait before using it."""
        return self.take()[0]

    def keep(self, ticket: str, at: float) -> None:
        """Keep the slot taken for ``ticket`` (coming at ``at``) for its next ``take``: a
        delivery that fails its attempt at once and is retried then neither loses its turn
        nor takes a second slot (which would push every later request further back)."""
        if self.rate is None:
            return
        with self._lock:
            now = time.monotonic()
            # Slots long past whose delivery never came back (superseded, the hub stopped).
            for stale in [t for t, when in self._kept.items() if when < now - KEPT_FOR]:
                del self._kept[stale]
            self._kept[ticket] = at

    def give_back(self) -> None:
        """Return a slot that will not be used (its wait was cancelled): otherwise every
        cancelled wait would leave the bucket a token short, and the queue ever longer."""
        if self.rate is None:
            return
        with self._lock:
            self._tokens = min(float(self.burst), self._tokens + 1)

    def pause(self, seconds: float) -> None:
        """Hold every request for a while (the API asked for it)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


# Seconds after its time a kept slot is still honoured; a delivery back later takes a new one.
KEPT_FOR = 300.0


# The longest wait a Retry-After gets: a server asking for more (a year, "inf") would
# otherwise stop a subscription or a reader for good.
MAX_RETRY_AFTER = 3600.0


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the Retry-After header asks for (delta-seconds or an HTTP date), at most
    MAX_RETRY_AFTER; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def server_time(response: httpx.Response) -> dt.datetime | None:
    """The server's clock from its Date header."""
    value = response.headers.get("Date")
    return _http_date(value) if value else None


def _http_date(value: str) -> dt.datetime | None:
    """An HTTP date, always in UTC: the asctime form and a "-0000" zone parse without one."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def transient_status(status: int) -> bool:
    """Statuses worth another try: timeouts, too many requests, the server's own errors."""
    return status in (408, 425, 429) or status >= 500


def describe(response: httpx.Response) -> str:
    """A short account of an error response for people (method, URL path, status, body)."""
    text = response.text.strip().replace("\n", " ")
    if len(text) > 500:
        text = text[:500] + "…"
    return (
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: {text}"
    )
