"""Talking to a Tryton server: JSON-RPC with a session, or the REST API with an application
key. Both answer the same few calls; errors are sorted into transient and terminal."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any, Protocol

import httpx
import orjson

from mastersync.connectors.tryton.codec import plain
from mastersync.ports.connector import ConnectorError, TerminalError, TransientError

# Tryton exceptions that say "not now"; every other one (UserError, UserWarning, AccessError,
# the validation errors, an unknown model or field) says the request itself is wrong.
_TRANSIENT = frozenset(
    {
        "ConcurrencyException",
        "DatabaseOperationalError",
        "OperationalError",
        "RateLimitException",
        "TimeoutException",
    }
)
# At most this much of a response is read into an error message.
_SNIPPET = 300


def classify(name: str, message: str) -> ConnectorError:
    """A Tryton error by its exception name: transient (worth retrying) or terminal."""
    text = f"Tryton {name}: {message}".strip()
    if name in _TRANSIENT or "database is locked" in message:
        return TransientError(text)
    return TerminalError(text)


# HTTP statuses worth retrying: a timeout, 423 Locked (how Tryton's REST API answers a
# ConcurrencyException: the records were modified meanwhile), 429 and server errors.
_TRANSIENT_STATUS = frozenset({408, 423, 429})


def _status_error(response: httpx.Response, what: str) -> ConnectorError:
    text = f"{what}: HTTP {response.status_code} {response.text[:_SNIPPET]!r}"
    if response.status_code in _TRANSIENT_STATUS or response.status_code >= 500:
        return TransientError(text, status=response.status_code)
    return TerminalError(text, status=response.status_code)


class Transport(Protocol):
    """The calls the connector makes."""

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        context: dict[str, Any],
        *,
        order: list[tuple[str, str]] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Records matching a domain (plain values)."""
        ...

    def create(self, model: str, values: dict[str, Any], context: dict[str, Any]) -> int:
        """A new record; its id."""
        ...

    def write(
        self, model: str, ids: list[int], values: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """Change records."""
        ...

    def preferences(self) -> dict[str, Any]:
        """The user's context (company, language), as far as the API tells it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class JsonRpc:
    """JSON-RPC at /<database>/rpc/ with a session from common.db.login."""

    def __init__(self, url: str, database: str, user: str, password: str, timeout: float) -> None:
        self.database = database
        self.user = user
        self._password = password
        self._client = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, headers={"Accept": "application/json"}
        )
        self._session: str | None = None
        self._lock = threading.Lock()
        self._ids = 0

    def _post(self, method: str, params: list[Any], session: str | None) -> Any:
        with self._lock:
            self._ids += 1
            request_id = self._ids
        headers = {"Content-Type": "application/json"}
        if session is not None:
            headers["Authorization"] = f"Session {session}"
        body = orjson.dumps({"id": request_id, "method": method, "params": params})
        try:
            response = self._client.post(f"/{self.database}/rpc/", content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransientError(f"{method}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 401:
            return _Unauthorized
        if response.status_code >= 400:
            raise _status_error(response, method)
        try:
            document = response.json()
        except ValueError:
            raise TerminalError(f"{method}: the answer is not JSON") from None
        error = document.get("error") if isinstance(document, dict) else None
        if error is not None:
            name, message = _error_parts(error)
            raise classify(name, message)
        return document.get("result") if isinstance(document, dict) else None

    def _login(self) -> str:
        result = self._post(
            "common.db.login", [self.user, {"password": self._password}, "en"], None
        )
        if result is _Unauthorized or not isinstance(result, list) or len(result) < 2:
            raise TerminalError(
                f"Tryton refused the login of user {self.user!r} to database {self.database!r}"
            )
        uid, token = result[0], result[1]
        return base64.b64encode(f"{self.user}:{uid}:{token}".encode()).decode()

    def call(self, method: str, *params: Any) -> Any:
        """Call a method with the session, logging in (again) when the server asks."""
        for _ in range(2):
            session = self._session
            if session is None:
                session = self._session = self._login()
            result = self._post(method, list(params), session)
            if result is not _Unauthorized:
                return result
            self._session = None  # expired: log in once more
        raise TerminalError(f"{method}: Tryton refused the session (HTTP 401)", status=401)

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        context: dict[str, Any],
        *,
        order: list[tuple[str, str]] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """model.<name>.search_read(domain, offset, limit, order, fields, context)."""
        rows = self.call(
            f"model.{model}.search_read",
            domain,
            0,
            limit,
            [list(o) for o in order] if order else None,
            fields,
            context,
        )
        return [plain(r) for r in rows or []]

    def create(self, model: str, values: dict[str, Any], context: dict[str, Any]) -> int:
        """model.<name>.create([values], context)."""
        ids = self.call(f"model.{model}.create", [values], context)
        return int(ids[0])

    def write(
        self, model: str, ids: list[int], values: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """model.<name>.write(ids, values, context)."""
        self.call(f"model.{model}.write", ids, values, context)

    def preferences(self) -> dict[str, Any]:
        """model.res.user.get_preferences(True): company, companies, language."""
        prefs = self.call("model.res.user.get_preferences", True, {}) or {}
        return {k: prefs[k] for k in ("company", "companies", "language") if k in prefs}

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class _UnauthorizedType:
    pass


_Unauthorized = _UnauthorizedType()


def _error_parts(error: Any) -> tuple[str, str]:
    """Tryton's JSON-RPC error: [name, args]; a UserError's args are [message, ...]."""
    if isinstance(error, list) and error:
        name = str(error[0])
        args = error[1] if len(error) > 1 else ""
        if isinstance(args, list):
            args = args[0] if args else ""
        return name, str(args)
    return "Error", str(error)


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode()


class Rest:
    """The REST API at /<database>/rest/ with a user application key (bearer)."""

    def __init__(self, url: str, database: str, key: str, timeout: float) -> None:
        self._client = httpx.Client(
            base_url=f"{url.rstrip('/')}/{database}/rest",
            timeout=timeout,
            headers={"Accept": "application/json", "Authorization": f"bearer {key}"},
        )

    def _send(
        self, method: str, path: str, context: dict[str, Any], **kwargs: Any
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if context:
            headers["X-Tryton-Context"] = _b64(context)
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 400:  # Tryton's UserError, as {"message": ...}
            try:
                message = str(response.json().get("message"))
            except ValueError:
                message = response.text[:_SNIPPET]
            raise TerminalError(f"Tryton UserError: {message}", status=400)
        if response.status_code >= 400:
            raise _status_error(response, f"{method} {path}")
        return response

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        context: dict[str, Any],
        *,
        order: list[tuple[str, str]] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """GET /model/<name>?d=...&f=...&o=...&s=..."""
        params: list[tuple[str, str]] = [("d", _b64(domain))]
        params += [("f", f) for f in fields]
        if order:
            params.append(("o", _b64([list(o) for o in order])))
        if limit is not None:
            params.append(("s", str(limit)))
        rows = self._send("GET", f"/model/{model}", context, params=params).json()
        return [_unname(plain(r)) for r in rows]

    def create(self, model: str, values: dict[str, Any], context: dict[str, Any]) -> int:
        """POST /model/<name>."""
        response = self._send("POST", f"/model/{model}", context, content=orjson.dumps(values))
        return int(response.json()["id"])

    def write(
        self, model: str, ids: list[int], values: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """PUT /model/<name>/<id>, for each id."""
        for record_id in ids:
            self._send("PUT", f"/model/{model}/{record_id}", context, content=orjson.dumps(values))

    def preferences(self) -> dict[str, Any]:
        """The REST API has no preferences call: the settings' context is the context."""
        return {}

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _unname(value: Any) -> Any:
    """Drop the REST API's "__name__" keys, so both transports give the same records."""
    if isinstance(value, list):
        return [_unname(v) for v in value]
    if isinstance(value, dict):
        return {k: _unname(v) for k, v in value.items() if k != "__name__"}
    return value


def with_retries(retries: int, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a read, retrying transient failures with a short exponential pause."""
    attempt = 0
    while True:
        try:
            return call(*args, **kwargs)
        except TransientError:
            attempt += 1
            if attempt > retries:
                raise
            time.sleep(min(5.0, 0.2 * 2**attempt))
