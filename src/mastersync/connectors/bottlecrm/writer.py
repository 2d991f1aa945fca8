"""Writing accounts to BottleCRM: found (by the key it gave, else by the match fields) and
updated with only the fields that differ, or created; archived to deactivate."""

from __future__ import annotations

import contextlib
import logging
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from mastersync.connectors.bottlecrm.client import Api, NotFound, Refused
from mastersync.connectors.bottlecrm.spec import BottleCrmWrite
from mastersync.ports.connector import TerminalError

# What an account write may carry (BottleCRM's account write serializer); anything else
# would be dropped by the API without a word, so it is refused here, naming it.
WRITABLE = frozenset(
    {
        "name",
        "email",
        "phone",
        "website",
        "industry",
        "number_of_employees",
        "annual_revenue",
        "currency",
        "address_line",
        "city",
        "state",
        "postcode",
        "country",
        "description",
        "is_active",
        "custom_fields",
    }
)
_NUMBERS = frozenset({"annual_revenue", "number_of_employees"})
_CUSTOM = "custom_fields."

log = logging.getLogger("mastersync.bottlecrm")


def _blank(value: Any) -> bool:
    return value is None or value == ""


def same(current: Any, wanted: Any, name: str = "") -> bool:
    """Whether BottleCRM already holds a value (blank and null are the same to it; numbers
    compare as numbers, "1000.00" and 1000 alike)."""
    if _blank(current) or _blank(wanted):
        return _blank(current) and _blank(wanted)
    if name in _NUMBERS:
        try:
            return Decimal(str(current)) == Decimal(str(wanted))
        except InvalidOperation:
            return False
    return bool(current == wanted)


def delta(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The part of a write that changes the account: differing fields, and of the custom
    fields only the differing keys (BottleCRM keeps the keys a write leaves out). An
    unchanged field is not written: every save of an account records an activity and
    fires its webhooks and automations. A name differing only in case is left out."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == "custom_fields":
            have = current.get("custom_fields") or {}
            custom = {k: v for k, v in (value or {}).items() if not same(have.get(k), v)}
            if custom:
                out["custom_fields"] = custom
        elif not same(current.get(name), value, name):
            out[name] = value
    have = current.get("name")
    wanted = out.get("name")
    if isinstance(have, str) and isinstance(wanted, str) and have.casefold() == wanted.casefold():
        # BottleCRM cannot change a name's case: its check that names are unique without
        # case (name__iexact) finds the account itself and refuses the whole PATCH, which
        # would lose every other change with it.
        del out["name"]
        log.warning(
            "BottleCRM account %s: name %r left as %r (BottleCRM cannot change only its case)",
            current.get("id"),
            wanted,
            have,
        )
    return out


def match_value(body: dict[str, Any], name: str) -> Any:
    """A match field's value in the body ("custom_fields.<key>" reads a custom field)."""
    if name.startswith(_CUSTOM):
        return (body.get("custom_fields") or {}).get(name[len(_CUSTOM) :])
    return body.get(name)


def match_query(name: str, value: Any) -> dict[str, str]:
    """BottleCRM's own list filter narrowing a look-up (its filters are loose: name is a
    substring match; the rows are compared exactly afterwards)."""
    if name.startswith(_CUSTOM):
        return {f"cf_{name[len(_CUSTOM) :]}": str(value)}
    if name == "name":
        return {"name": str(value)}
    return {}


def matches(row: dict[str, Any], name: str, value: Any) -> bool:
    """Whether a listed account has the value (names compared without case: BottleCRM keeps
    account names unique per organisation that way)."""
    have = match_value(row, name)
    if name == "name" and isinstance(have, str) and isinstance(value, str):
        return have.casefold() == value.casefold()
    return bool(have == value) and not _blank(have)


class AccountWriter:
    """Turns mapped records into account writes."""

    def __init__(self, api: Api, page_size: int) -> None:
        self.api = api
        self.page_size = page_size
        self._custom: set[str] | None = None
        self._lock = threading.Lock()

    def _custom_keys(self) -> set[str] | None:
        """The organisation's account custom fields, when the token may read them."""
        with self._lock:
            if self._custom is None:
                try:
                    self._custom = self.api.custom_field_keys("Account")
                except TerminalError:
                    return None  # no custom-fields:read scope: BottleCRM checks nothing
            return self._custom

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A mapped record as an account write, refused whole if a field is unknown."""
        unknown = sorted(set(payload) - WRITABLE)
        if unknown:
            raise TerminalError(f"a BottleCRM account has no field(s) {', '.join(unknown)}")
        custom = payload.get("custom_fields")
        if custom is not None and not isinstance(custom, dict):
            raise TerminalError("custom_fields: an object of custom field keys and values")
        if custom:
            known = self._custom_keys()
            missing = sorted(set(custom) - known) if known is not None else []
            if missing:
                raise TerminalError(
                    f"the organisation has no account custom field(s) {', '.join(missing)}"
                )
        return dict(payload)

    def find(self, spec: BottleCrmWrite, body: dict[str, Any]) -> dict[str, Any] | None:
        """The account the match fields find, tried in order (None: none of them does)."""
        for name in spec.match:
            value = match_value(body, name)
            if _blank(value):
                continue
            rows = self.api.list_all("accounts", match_query(name, value), self.page_size)
            found = [r for r in rows if matches(r, name, value)]
            if len(found) > 1:
                raise TerminalError(
                    f"more than one BottleCRM account with {name} = {value!r}: "
                    + ", ".join(sorted(str(r["id"]) for r in found))
                )
            if found:
                return found[0]
        return None

    def _update(self, key: str, current: dict[str, Any], body: dict[str, Any]) -> str:
        change = delta(current, body)
        if change:
            self.api.patch("accounts", key, change)
        return key

    def upsert(self, spec: BottleCrmWrite, payload: dict[str, Any], target_key: str | None) -> str:
        """Create or update one account (only what differs); its id."""
        body = self.body(payload)
        if target_key:
            try:
                return self._update(target_key, self.api.detail("accounts", target_key), body)
            except NotFound:
                pass  # deleted in BottleCRM: found by the match fields, or made again
        found = self.find(spec, body)
        if found is not None:
            return self._update(str(found["id"]), found, body)
        try:
            return self.api.create("accounts", {**spec.on_create, **body})
        except Refused as exc:
            taken = isinstance(exc.errors, dict) and "name" in exc.errors
            if not taken:
                raise
            if "name" in spec.match:
                # Made meanwhile (another writer, or a person): the look-up finds it now.
                found = self.find(spec, body)
                if found is not None:
                    return self._update(str(found["id"]), found, body)
            raise TerminalError(
                f"BottleCRM already has an account named {body.get('name')!r} that the "
                f"match fields ({', '.join(spec.match) or 'none'}) did not find; link the "
                "two by hand, or add 'name' to match"
            ) from None

    def deactivate(self, target_key: str) -> None:
        """Archive an account (nothing to do when it is gone)."""
        with contextlib.suppress(NotFound):
            self.api.patch("accounts", target_key, {"is_active": False})
