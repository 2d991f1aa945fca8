"""Source versions: what a source says about order, never the hub's wall clock."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mastersync.domain.mapping.spec import VersionKind
from mastersync.domain.problems import ConfigError

Version = int | str


@cache
def zone(name: str) -> dt.tzinfo:
    """The tzinfo for an IANA zone name, or a config error naming it."""
    if name.upper() == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}") from None


def parse_timestamp(raw: Any, fmt: str | None, tz: dt.tzinfo) -> str:
    """Parse a source timestamp into fixed-width UTC text; ValueError if it is not one."""
    try:
        if isinstance(raw, dt.datetime):
            stamp = raw
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            stamp = dt.datetime.fromtimestamp(raw, dt.UTC)
        else:
            text = str(raw).strip()
            stamp = (
                dt.datetime.strptime(text, fmt)
                if fmt
                else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            )
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=tz)
        u = stamp.astimezone(dt.UTC)
    except (OverflowError, OSError) as exc:  # out of datetime's range (years 1 to 9999)
        raise ValueError(f"{raw!r} is out of range for a timestamp") from exc
    # Fixed width, so that timestamp versions compare correctly as text: strftime's %Y does
    # not pad years before 1000 (sources do send 0001-01-01 as "no date").
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond:06d}Z"
    )


def parse_version(kind: VersionKind, raw: Any, fmt: str | None, tz: dt.tzinfo) -> Version:
    """A source version from its raw value; ValueError when it is not of the kind."""
    if kind is VersionKind.TIMESTAMP:
        return parse_timestamp(raw, fmt, tz)
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a {kind.value}")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{raw!r} is not a {kind.value} (a whole number)")
    return int(text)


def compare(new: Version, applied: Version | None) -> int:
    """-1 older, 0 same, 1 newer than the applied version (none applied: newer)."""
    if applied is None or type(new) is not type(applied):
        return 1
    if new == applied:
        return 0
    return 1 if new > applied else -1  # type: ignore[operator]
