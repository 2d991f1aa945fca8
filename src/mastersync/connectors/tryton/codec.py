"""Tryton's JSON values: typed objects ({"__class__": "Decimal", ...}) to plain JSON and back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any


def plain(value: Any) -> Any:
    """A value as Tryton sent it, made plain: Decimals as strings, datetimes as ISO 8601
    (Tryton keeps naive UTC), and "field." keys (a related record read through a dotted
    path) folded into "field", as Tryton's REST API does."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__class__")
    if kind is not None:
        return _typed(str(kind), value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key.endswith(".") and len(key) > 1:
            out[key[:-1]] = plain(item)
        elif key not in out:
            out[key] = plain(item)
    return out


def _typed(kind: str, value: dict[str, Any]) -> Any:
    if kind == "Decimal":
        return str(value.get("decimal"))
    if kind == "datetime":
        return dt.datetime(
            value["year"],
            value["month"],
            value["day"],
            value.get("hour", 0),
            value.get("minute", 0),
            value.get("second", 0),
            value.get("microsecond", 0),
        ).isoformat()
    if kind == "date":
        return dt.date(value["year"], value["month"], value["day"]).isoformat()
    if kind == "time":
        return dt.time(
            value.get("hour", 0),
            value.get("minute", 0),
            value.get("second", 0),
            value.get("microsecond", 0),
        ).isoformat()
    if kind == "timedelta":
        return value.get("seconds")
    if kind == "bytes":
        return value.get("base64")
    return {k: plain(v) for k, v in value.items()}


def stamp(value: dt.datetime) -> dict[str, Any]:
    """A datetime as Tryton's JSON reads it (for domains: write_date >= ...)."""
    return {
        "__class__": "datetime",
        "year": value.year,
        "month": value.month,
        "day": value.day,
        "hour": value.hour,
        "minute": value.minute,
        "second": value.second,
        "microsecond": value.microsecond,
    }


class ValueProblem(ValueError):
    """A value cannot be written to a field of its type."""


def typed(value: Any, ttype: str, field: str) -> Any:
    """A plain value for a field of the given Tryton type, in Tryton's JSON."""
    if value is None:
        return None
    if ttype == "numeric":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueProblem(f"{field}: {value!r} is not a number") from None
        return {"__class__": "Decimal", "decimal": str(number)}
    if ttype == "date":
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValueProblem(f"{field}: {value!r} is not a date") from None
        return {"__class__": "date", "year": day.year, "month": day.month, "day": day.day}
    if ttype in ("datetime", "timestamp"):
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueProblem(f"{field}: {value!r} is not a date and time") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return stamp(moment)
    if ttype == "binary" and isinstance(value, str):
        return {"__class__": "bytes", "base64": value}
    if ttype in ("integer", "biginteger") and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ValueProblem(f"{field}: {value!r} is not a whole number") from None
    if ttype == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueProblem(f"{field}: {value!r} is not a number") from None
    return value
