"""Akeneo's standard format, both ways: a product's ``values`` (a list of {locale, scope,
data} per attribute) flattened to one value per attribute for the inbound mapping, and plain
values from the outbound mapping built back into that format."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mastersync.ports.outbound import without_nulls

# Listing metadata, not product data: left out so that it does not change a record's digest.
_NOT_DATA = ("_links",)
# Product properties holding a list: Akeneo refuses null for them, an empty list clears them.
_LISTS = frozenset({"categories", "groups"})


class ValueProblem(Exception):
    """A value that cannot be written as Akeneo wants it; the message names the attribute."""


@dataclass(frozen=True)
class Attribute:
    """What decides the shape of an attribute's values."""

    code: str
    localizable: bool = False
    scopable: bool = False

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Attribute:
        """An attribute as GET /attributes/{code} answers."""
        return cls(
            str(document.get("code")),
            bool(document.get("localizable")),
            bool(document.get("scopable")),
        )


def _scope(entry: Mapping[str, Any]) -> Any:
    # Some endpoints (and older exports) say "channel" for the scope.
    return entry.get("scope", entry.get("channel"))


def pick(entries: Any, locale: str, scope: str | None) -> tuple[bool, Any]:
    """(found, data) of the entry for the locale and scope: an exact match first, then one
    not localised, then one not scoped, then one neither. Entries of other locales and
    channels never count."""
    best: tuple[int, Any] | None = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        where, channel = entry.get("locale"), _scope(entry)
        if where not in (None, locale) or channel not in (None, scope):
            continue
        rank = (2 if where is not None else 0) + (1 if channel is not None else 0)
        if best is None or rank > best[0]:
            best = (rank, entry.get("data"))
    return (False, None) if best is None else (True, best[1])


def flatten(product: Mapping[str, Any], locale: str, scope: str | None) -> dict[str, Any]:
    """A product as a record: its properties as Akeneo gives them, and ``values`` as
    attribute -> data for the locale and scope (attributes with no such value left out)."""
    record = {k: v for k, v in product.items() if k != "values" and k not in _NOT_DATA}
    values = product.get("values")
    flat: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for code in sorted(values):
            found, data = pick(values[code], locale, scope)
            if found:
                flat[str(code)] = data
    record["values"] = flat
    return record


def _standard(value: Any) -> bool:
    """Already in the standard format: a list of {locale, scope, data} entries."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, Mapping) and "data" in v for v in value)
    )


def build_values(
    values: Mapping[str, Any],
    attribute: Callable[[str], Attribute],
    locale: str,
    scope: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """Plain attribute -> data as the standard format, one entry each: the locale if the
    attribute is localizable, the scope if scopable. Lists of entries pass as they are."""
    out: dict[str, list[dict[str, Any]]] = {}
    for code, data in values.items():
        if _standard(data):
            out[code] = [dict(v) for v in data]
            continue
        meta = attribute(code)
        if meta.scopable and scope is None:
            raise ValueProblem(
                f"attribute {code!r} has a value per channel: set the connector's 'scope'"
            )
        out[code] = [
            {
                "locale": locale if meta.localizable else None,
                "scope": scope if meta.scopable else None,
                "data": data,
            }
        ]
    return out


def product_body(
    payload: Mapping[str, Any],
    attribute: Callable[[str], Attribute],
    locale: str,
    scope: str | None,
    family: str | None = None,
) -> dict[str, Any]:
    """The PATCH body of a mapped record: its properties (identifier, family, enabled,
    categories ...) as they are, ``values`` built into the standard format."""
    identifier = payload.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise ValueProblem("the outbound mapping gives no 'identifier'")
    body = {k: v for k, v in payload.items() if k != "values"}
    if family is not None and body.get("family") is None:
        body["family"] = family
    values = payload.get("values") or {}
    if not isinstance(values, Mapping):
        raise ValueProblem("'values' is not an object of attribute -> data")
    body["values"] = build_values(values, attribute, locale, scope)
    return body


def for_update(body: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body for a product the PIM has, with what the hub cleared (sent as null)
    cleared: a value's data null erases the value, a list property is emptied (Akeneo
    refuses null there). Another null goes as it is: family and parent take it, an object
    property (associations) has none, and Akeneo's refusal names it."""
    return {k: [] if v is None and k in _LISTS else v for k, v in body.items()}


def for_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body that creates the product, without a null (a property, or a value's
    data): the PIM's defaults apply."""
    out = without_nulls(body)
    values = out.get("values")
    if isinstance(values, Mapping):
        kept = {
            code: [e for e in entries if not (isinstance(e, Mapping) and e.get("data") is None)]
            for code, entries in values.items()
        }
        out["values"] = {code: entries for code, entries in kept.items() if entries}
    return out
