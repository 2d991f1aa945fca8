"""Writing accounts to BottleCRM: found (by the key it gave, else by the match fields) and
updated with only the fields that differ, or created, and left active; archived to
deactivate."""

from __future__ import annotations

import contextlib
import logging
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from mastersync.connectors.bottlecrm.client import Api, NotFound, Refused
from mastersync.connectors.bottlecrm.spec import BottleCrmWrite
from mastersync.ports.connector import TerminalError
from mastersync.ports.outbound import without_nulls

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
# Custom field types BottleCRM stores as text. Its cf_<key> filter looks for the text it is
# given in the stored JSON, so it finds values of these types only: a number is stored as a
# JSON number (4711.0), a checkbox as a boolean.
_TEXT_KINDS = frozenset({"text", "textarea", "dropdown", "date"})
# What BottleCRM reads as a checkbox value (common/custom_fields.py).
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

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


def _number(value: Any) -> float | None:
    """A value as BottleCRM stores it in a number custom field (None: not a number)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value) if isinstance(value, int | float) else float(str(value))
    except ValueError:
        return None


def _checkbox(value: Any) -> bool | None:
    """A value as BottleCRM stores it in a checkbox custom field (None: not a boolean)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def custom_same(current: Any, wanted: Any) -> bool:
    """Whether a custom field already holds a value, compared as BottleCRM stored it (the
    stored JSON type tells the field's): numbers as numbers (4711.0, 4711 and "4711" alike),
    checkboxes as booleans, the rest as the text BottleCRM makes of a value."""
    if _blank(current) or _blank(wanted):
        return _blank(current) and _blank(wanted)
    if isinstance(current, bool):
        return current == _checkbox(wanted)
    if isinstance(current, int | float):
        return float(current) == _number(wanted)
    return bool(current == (wanted if isinstance(wanted, str) else str(wanted)))


def delta(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The part of a write that changes the account: differing fields, and of the custom
    fields only the differing keys (BottleCRM keeps the keys a write leaves out). An
    unchanged field is not written: every save of an account records an activity and
    fires its webhooks and automations. A name differing only in case is left out."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == "custom_fields":
            have = current.get("custom_fields") or {}
            custom = {k: v for k, v in (value or {}).items() if not custom_same(have.get(k), v)}
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


def match_query(name: str, value: Any, kind: str | None = None) -> dict[str, str]:
    """BottleCRM's own list filter narrowing a look-up (its filters are loose: name is a
    substring match; the rows are compared exactly afterwards). ``kind`` is a custom field's
    type, None when the token may not read them.

    A custom field is narrowed by its cf_ filter only when the value is stored as text: the
    filter never finds a number or a checkbox, and a look-up it narrowed would miss the
    account and make a second one. Those are compared over the whole list instead; without
    the types, so is every value that a number or checkbox field would store otherwise."""
    if name.startswith(_CUSTOM):
        text = kind in _TEXT_KINDS or (
            kind is None
            and isinstance(value, str)
            and _number(value) is None
            and _checkbox(value) is None
        )
        return {f"cf_{name[len(_CUSTOM) :]}": str(value)} if text else {}
    if name == "name":
        return {"name": str(value)}
    return {}


def matches(row: dict[str, Any], name: str, value: Any) -> bool:
    """Whether a listed account has the value (names compared without case: BottleCRM keeps
    account names unique per organisation that way; custom fields as BottleCRM stores them)."""
    have = match_value(row, name)
    if name == "name" and isinstance(have, str) and isinstance(value, str):
        return have.casefold() == value.casefold()
    if name.startswith(_CUSTOM):
        return not _blank(have) and custom_same(have, value)
    return bool(have == value) and not _blank(have)


def _created(on_create: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A create's body: ``on_create`` under the record's values, without the nulls (fields
    cleared at the hub), which would override `on_create`'s value and BottleCRM's default.
    Custom fields are laid over `on_create`'s key by key, as BottleCRM keeps them."""
    given = without_nulls(body)
    custom = given.get("custom_fields")
    if isinstance(custom, dict):
        base = on_create.get("custom_fields")
        given["custom_fields"] = {**(base if isinstance(base, dict) else {}), **custom}
    return {**on_create, **given}


class AccountWriter:
    """Turns mapped records into account writes."""

    def __init__(self, api: Api, page_size: int) -> None:
        self.api = api
        self.page_size = page_size
        self._custom: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _custom_types(self) -> dict[str, str] | None:
        """The organisation's account custom fields (key -> type), when the token may read
        them."""
        with self._lock:
            if self._custom is None:
                try:
                    self._custom = self.api.custom_field_types("Account")
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
            known = self._custom_types()
            missing = sorted(set(custom) - set(known)) if known is not None else []
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
            kind = None
            if name.startswith(_CUSTOM):
                kind = (self._custom_types() or {}).get(name[len(_CUSTOM) :])
            query = match_query(name, value, kind)
            rows = self.api.list_all("accounts", query, self.page_size)
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

    def upsert(
        self,
        spec: BottleCrmWrite,
        payload: dict[str, Any],
        target_key: str | None,
        reactivate: bool = False,
    ) -> str:
        """Create or update one account (only what differs); its id. An account created is
        active, and so is one the hub archived (``reactivate``), unless the mapping gives
        `is_active`; one a person archived stays so."""
        body = self.body(payload)
        flag: dict[str, Any] = {}
        if body.get("is_active") is None:
            # A null from the mapping (the golden record lacks the value) is none:
            # BottleCRM refuses it.
            body.pop("is_active", None)
            flag = {"is_active": True}
        # Compared like the rest, so only an archived account is written.
        wanted = {**body, **flag} if reactivate else body
        if target_key:
            try:
                return self._update(target_key, self.api.detail("accounts", target_key), wanted)
            except NotFound:
                pass  # deleted in BottleCRM: found by the match fields, or made again
        found = self.find(spec, body)
        if found is not None:
            return self._update(str(found["id"]), found, wanted)
        try:
            return self.api.create("accounts", _created(spec.on_create, {**flag, **body}))
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
