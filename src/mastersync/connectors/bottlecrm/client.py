"""Talking to BottleCRM's REST API with a personal access token: complete listings that hold
still while they are read, and writes; errors sorted into transient and terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from mastersync.connectors.rest.http import describe, retry_after, transient_status
from mastersync.ports.connector import ConnectorError, TerminalError, TransientError

T = TypeVar("T")

# Where each resource's records and their total are in a list answer. An account list
# answers in two halves, active and archived, each paged with the same limit and offset;
# asked for one of them (is_active=...) the other is empty.
_ROWS: dict[str, dict[bool, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "accounts": {
        True: (("active_accounts", "open_accounts"), ("active_accounts", "open_accounts_count")),
        False: (
            ("closed_accounts", "close_accounts"),
            ("closed_accounts", "close_accounts_count"),
        ),
    },
    "contacts": {True: (("results",), ("count",)), False: (("results",), ("count",))},
}
# A listing that changed while it was read (offset pages shift) is read again this often.
_LISTING_TRIES = 3
# The longest Retry-After waited for in place.
_MAX_WAIT = 30.0


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


class NotFound(TerminalError):
    """The record is not there (deleted, or never visible to the token)."""


class Refused(TerminalError):
    """BottleCRM refused a write as invalid (400), with its field errors."""

    def __init__(self, message: str, errors: Any) -> None:
        super().__init__(message, status=400)
        self.errors = errors


def classify(response: httpx.Response) -> ConnectorError:
    """An error answer: 401 (the token), 403 (its scopes), 404, 400 (field errors) are
    terminal; 408, 425, 429 and 5xx transient."""
    text = describe(response)
    status = response.status_code
    if transient_status(status):
        return TransientError(text, status=status, retry_after=retry_after(response))
    if status == 401:
        return TerminalError(f"BottleCRM refused the token: {text}", status=status)
    if status == 403:
        return TerminalError(
            f"BottleCRM refused the token's access (its scopes?): {text}", status=status
        )
    if status == 404:
        return NotFound(text, status=status)
    if status == 400:
        try:
            errors = response.json().get("errors")
        except (ValueError, AttributeError):
            errors = None
        return Refused(text, errors)
    return TerminalError(text, status=status)


def with_retries(retries: int, call: Callable[[], T]) -> T:
    """Run an idempotent call, retrying transient failures with a short exponential pause
    (or what Retry-After asks for, if that is not long)."""
    attempt = 0
    while True:
        try:
            return call()
        except TransientError as exc:
            attempt += 1
            if attempt > retries or (exc.retry_after or 0) > _MAX_WAIT:
                raise
            time.sleep(exc.retry_after or min(5.0, 0.2 * 2**attempt))


class Api:
    """The calls the connector makes, under /api/."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float,
        retries: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._client = httpx.Client(
            base_url=f"{url.rstrip('/')}/api",
            timeout=timeout,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
            transport=transport,
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise classify(response)
        try:
            return response.json()
        except ValueError:
            raise TerminalError(f"{method} {path}: the answer is not JSON") from None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET, retried when it fails for a while."""
        return with_retries(self.retries, lambda: self._send("GET", path, params=params))

    def _listing(
        self, resource: str, active: bool, params: dict[str, str], page_size: int
    ) -> list[dict[str, Any]] | None:
        rows_at, count_at = _ROWS[resource][active]
        rows: dict[str, dict[str, Any]] = {}
        counts: set[int] = set()
        offset = 0
        while True:
            query = {
                **params,
                "is_active": "true" if active else "false",
                "limit": page_size,
                "offset": offset,
            }
            document = self.get(f"/{resource}/", query)
            page = _at(document, rows_at) or []
            counts.add(int(_at(document, count_at) or 0))
            for row in page:
                rows[str(row["id"])] = row
            offset += page_size
            if len(page) < page_size or offset >= max(counts):
                break
        # Pages are offsets into a list ordered by id (accounts) or creation (contacts): a
        # record added or removed while they were read shifts the rest, so one could be
        # missed. A listing is complete when the total held still and every row was seen.
        if len(counts) == 1 and len(rows) == counts.pop():
            return list(rows.values())
        return None

    def list_all(
        self, resource: str, params: dict[str, str], page_size: int, *, inactive: bool = True
    ) -> list[dict[str, Any]]:
        """Every record of a resource (active, and archived ones when ``inactive``) that
        the filters admit, read again while the list changes under the reading."""
        out: list[dict[str, Any]] = []
        for active in (True, False) if inactive else (True,):
            for _ in range(_LISTING_TRIES):
                rows = self._listing(resource, active, params, page_size)
                if rows is not None:
                    out.extend(rows)
                    break
            else:
                raise TransientError(
                    f"BottleCRM's {resource} list kept changing while it was read; "
                    "trying again at the next poll"
                )
        return out

    def detail(self, resource: str, key: str) -> dict[str, Any]:
        """One account as its detail answer holds it (``account_obj``)."""
        document = self.get(f"/{resource}/{key}/")
        record: dict[str, Any] = document.get("account_obj") or {}
        return record

    def create(self, resource: str, body: dict[str, Any]) -> str:
        """POST a new record (never retried in place: an answer lost after the record was
        made would make a second one; the hub retries the delivery, which looks first)."""
        document = self._send("POST", f"/{resource}/", json=body)
        key = document.get("id") if isinstance(document, dict) else None
        if not key:
            raise TerminalError(f"BottleCRM created a record in {resource} but named no id")
        return str(key)

    def patch(self, resource: str, key: str, body: dict[str, Any]) -> None:
        """PATCH fields of a record (idempotent: retried)."""
        with_retries(self.retries, lambda: self._send("PATCH", f"/{resource}/{key}/", json=body))

    def custom_field_types(self, target: str) -> dict[str, str]:
        """The active custom fields of a model (Account, Contact): key -> field type
        (text, textarea, number, checkbox, date, dropdown)."""
        document = self.get("/custom-fields/", {"target_model": target})
        rows = _at(document, ("definitions",)) or []
        return {
            str(r["key"]): str(r.get("field_type") or "text")
            for r in rows
            if r.get("target_model") == target and r.get("is_active", True)
        }

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
