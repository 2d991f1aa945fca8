"""Field-level comparison of two native records, blind to formatting that means nothing."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# A number written as a number: no leading zeros, no exponent, no grouping. "12.50" and
# "12.5" are the same amount; "00123" is an identifier whose zeros matter.
_NUMBER = re.compile(r"^[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$")
# A point in time with its zone: "2024-01-01T09:00:00Z" and "2024-01-01T09:00:00+00:00"
# (as a PostgreSQL timestamptz reads back) are the same instant. Without a zone, text stays
# text: which instant it means is not written down.
_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
)


def _instant(value: dt.datetime) -> str:
    """An aware time as one spelling of its instant (UTC, microseconds)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Normalisation:
    """What counts as the same value: how the outbound mapping would have written it."""

    # Mappings trim text by default, so surrounding spaces at a target are no difference.
    strip: bool = True
    # Fields whose mapping keeps spaces (``trim: false``): spaces there are a difference.
    keep_spaces: frozenset[str] = frozenset()

    def strips(self, path: str) -> bool:
        """Whether surrounding spaces of the field at ``path`` are ignored."""
        return self.strip and path.split(".", 1)[0] not in self.keep_spaces


# The default: every field trimmed, as mappings trim unless told not to.
TRIMMED = Normalisation()


def comparable(value: Any, strip: bool = True) -> Any:
    """A value in a form where equal meaning compares equal.

    Numbers (and text that is plainly a number) become Decimals, so 12.5, "12.50" and
    Decimal("12.5") agree; times with a zone become one spelling of their instant;
    booleans are 0 and 1, as databases without a boolean type hold them; blank text, empty
    lists and empty objects are null, as mappings make them; keys with null values are
    left out of objects and null entries out of lists, as outbound payloads leave them out.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr gives the shortest text that reads back as the same float: 0.1, not 0.1000…055.
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else value
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, str):
        text = value.strip() if strip else value
        if text == "":
            return None
        if _NUMBER.match(text):
            try:
                return Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                return text
        if _INSTANT.match(text):
            try:
                return _instant(dt.datetime.fromisoformat(text))
            except ValueError:
                return text  # a shape Python does not read (nine fraction digits, say)
        return text
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return _instant(value)
    if isinstance(value, Mapping):
        out = {str(k): comparable(v, strip) for k, v in value.items()}
        out = {k: v for k, v in out.items() if v is not None}
        return out or None
    if isinstance(value, list | tuple):
        # Lists as mappings build them: empty entries dropped.
        items = [c for c in (comparable(v, strip) for v in value) if c is not None]
        return items or None
    return str(value)


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path; lists are leaves (their order is part of their value)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (None where any step is absent)."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field whose value differs: what the hub expects and what the system holds."""

    field: str
    expected: Any
    actual: Any

    def as_dict(self) -> dict[str, Any]:
        """JSON shape (values as text where JSON has no type for them)."""
        return {
            "field": self.field,
            "expected": _plain(self.expected),
            "actual": _plain(self.actual),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def agrees(expected: Any, actual: Any, strip: bool = True) -> bool:
    """Whether a system's value says what the hub's does.

    Objects inside lists are compared on the hub's keys only, as records are: a target
    adds ids and timestamps of its own to the addresses or variants it was sent. A value
    the system reads back as a linked record (its id and one field) is that field.
    """
    want, have = comparable(expected, strip), comparable(actual, strip)
    return _agrees(want, have)


def _agrees(want: Any, have: Any) -> bool:
    if isinstance(want, dict) and isinstance(have, dict):
        return all(_agrees(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list) and isinstance(have, list):
        return len(want) == len(have) and all(
            _agrees(w, h) for w, h in zip(want, have, strict=True)
        )
    if isinstance(have, dict) and want is not None and not isinstance(want, dict | list):
        # A link sent as one of its fields ("DE") and read back through it (Tryton's
        # country.code reads as {"id": 1, "code": "DE"}): compared by that field.
        linked = [v for k, v in have.items() if k != "id"]
        return len(linked) == 1 and bool(want == linked[0])
    return bool(want == have)


def field_diffs(
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    *,
    fields: Iterable[str] = (),
    norm: Normalisation = TRIMMED,
) -> list[FieldDiff]:
    """The fields where ``actual`` says something else than ``expected``.

    Compared are the expected record's own fields plus ``fields`` (what the mapping writes
    even when the hub has no value: a value the system still holds there is drift). Fields
    only the system has are its own business and are not compared, at any depth.
    """
    leaves = flatten(expected)
    paths = list(leaves)
    for name in fields:
        if name not in leaves and not any(p.startswith(f"{name}.") for p in paths):
            paths.append(name)
    diffs = []
    for path in sorted(paths):
        want = leaves.get(path, lookup(expected, path))
        have = lookup(actual, path)
        strip = norm.strips(path)
        if not agrees(want, have, strip):
            diffs.append(FieldDiff(path, want, have))
    return diffs
