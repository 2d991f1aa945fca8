"""Checking and converting writer input values (shared by the X12 and EDIFACT writers)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from mastersync.connectors.edi.errors import EdiWriteError

# What a writer does with a character it cannot write: refuse the input, or replace it.
OnInvalid = Literal["refuse", "replace"]
InputValue = str | int | Decimal | None
InputRecord = Mapping[str, InputValue]

NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")
DATE = re.compile(r"\d{8}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def as_text(value: object, *, record_index: int, field: str) -> str:
    """A writer input value as text: str, int or Decimal (floats are refused: binary rounding)."""
    if value is None:
        return ""
    if isinstance(value, bool | float):
        raise EdiWriteError(
            f"{type(value).__name__} is not accepted; pass str, int or Decimal",
            record_index=record_index,
            field=field,
        )
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    raise EdiWriteError(
        f"unsupported type {type(value).__name__}", record_index=record_index, field=field
    )


def check_keys(record: InputRecord, allowed: frozenset[str], record_index: int) -> None:
    """Refuse keys a writer does not know, so a typo never silently drops data."""
    unknown = sorted(set(record) - allowed)
    if unknown:
        raise EdiWriteError(
            f"unknown field(s) {unknown}; allowed: {sorted(allowed)}",
            record_index=record_index,
            field=unknown[0],
        )


def clean(
    value: str,
    forbidden: str,
    on_invalid: OnInvalid,
    *,
    record_index: int | None,
    field: str,
    replacement: str = " ",
) -> str:
    """Refuse (or replace by `replacement`) delimiter characters and control characters."""
    bad = {c for c in value if c in forbidden or _CONTROL.match(c)}
    if not bad:
        return value
    if on_invalid == "refuse":
        raise EdiWriteError(
            f"value {value[:40]!r} contains {sorted(bad)!r}, which cannot be written",
            record_index=record_index,
            field=field,
        )
    return "".join(replacement if c in bad else c for c in value)


def check_number(value: str, *, record_index: int, field: str) -> str:
    """A plain decimal number with a dot (or "" for absent)."""
    if value and not NUMBER.match(value):
        raise EdiWriteError(
            f"{value!r} is not a decimal number", record_index=record_index, field=field
        )
    return value


def check_date(value: str, *, record_index: int, field: str) -> str:
    """A CCYYMMDD date (or "" for absent)."""
    if value and not DATE.match(value):
        raise EdiWriteError(
            f"{value!r} is not a CCYYMMDD date", record_index=record_index, field=field
        )
    return value


def gtin_is_valid(gtin: str) -> bool:
    """True for an 8, 12, 13 or 14 digit GTIN whose GS1 check digit is right."""
    if not (gtin.isascii() and gtin.isdigit()) or len(gtin) not in (8, 12, 13, 14):
        return False
    digits = [int(c) for c in gtin]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def check_gtin(value: str, *, record_index: int, field: str = "gtin") -> str:
    """A GTIN with a valid check digit (or "" for absent)."""
    if value and not gtin_is_valid(value):
        raise EdiWriteError(
            f"{value!r} is not a GTIN-8/12/13/14 with a valid check digit",
            record_index=record_index,
            field=field,
        )
    return value
