"""Source versions: timestamps to fixed-width UTC text, counters to integers, and order."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastersync.domain.mapping.spec import VersionKind
from mastersync.domain.problems import ConfigError
from mastersync.domain.versions import compare, parse_timestamp, parse_version, zone

BERLIN = zone("Europe/Berlin")


def test_zones_are_looked_up_by_iana_name_and_an_unknown_one_is_a_config_error() -> None:
    assert zone("utc") is dt.UTC
    assert zone("Europe/Berlin").utcoffset(dt.datetime(2026, 7, 1)) == dt.timedelta(hours=2)
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown time zone"):
        zone("../etc/passwd")


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        # A naive local time is read in the source's zone (summer: UTC+2).
        ("2026-07-01 12:00:00", None, "2026-07-01T10:00:00.000000Z"),
        ("2026-07-01T12:00:00Z", None, "2026-07-01T12:00:00.000000Z"),
        ("2026-01-15T08:30:00+05:30", None, "2026-01-15T03:00:00.000000Z"),
        ("15.01.2026 08:30", "%d.%m.%Y %H:%M", "2026-01-15T07:30:00.000000Z"),
        (" 2026-01-15T08:30:00.123456Z ", None, "2026-01-15T08:30:00.123456Z"),
        (1_767_225_600, None, "2026-01-01T00:00:00.000000Z"),
        (1_767_225_600.5, None, "2026-01-01T00:00:00.500000Z"),
        (dt.datetime(2026, 1, 1, 1, 0), None, "2026-01-01T00:00:00.000000Z"),
        (dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC), None, "2026-01-01T01:00:00.000000Z"),
    ],
)
def test_timestamps_become_fixed_width_utc_text(
    raw: object, fmt: str | None, expected: str
) -> None:
    assert parse_timestamp(raw, fmt, BERLIN) == expected


@pytest.mark.parametrize("raw", ["yesterday", "", "2026-13-01", True])
def test_what_is_not_a_timestamp_is_a_value_error(raw: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_timestamp(raw, None, dt.UTC)


@pytest.mark.parametrize(
    ("raw", "expected"), [(7, 7), ("42", 42), (" 42 ", 42), ("-3", -3), (0, 0)]
)
def test_counters_are_whole_numbers(raw: object, expected: int) -> None:
    assert parse_version(VersionKind.COUNTER, raw, None, dt.UTC) == expected


@pytest.mark.parametrize("raw", [True, False, "4.5", "abc", "", "1e3", None])
def test_what_is_not_a_whole_number_is_not_a_counter(raw: object) -> None:
    with pytest.raises(ValueError, match="is not a counter"):
        parse_version(VersionKind.COUNTER, raw, None, dt.UTC)


def test_a_timestamp_version_is_parsed_as_a_timestamp() -> None:
    got = parse_version(VersionKind.TIMESTAMP, "2026-07-01 12:00:00", None, BERLIN)
    assert got == "2026-07-01T10:00:00.000000Z"


def test_order_of_versions() -> None:
    assert compare(3, None) == 1
    assert (compare(3, 2), compare(3, 3), compare(2, 3)) == (1, 0, -1)
    early, late = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000001Z"
    assert (compare(late, early), compare(early, late)) == (1, -1)
    # A source whose version kind changed (the landscape was edited): the new kind wins.
    assert compare(early, 99) == 1 and compare(1, late) == 1


@given(st.datetimes(timezones=st.just(dt.UTC)), st.datetimes(timezones=st.just(dt.UTC)))
def test_timestamp_text_orders_as_the_instants_do(a: dt.datetime, b: dt.datetime) -> None:
    """Stored as text, compared as text: the fixed width keeps text order = time order."""
    ta, tb = parse_timestamp(a, None, dt.UTC), parse_timestamp(b, None, dt.UTC)
    assert compare(ta, tb) == (a > b) - (a < b)


def test_a_year_before_1000_is_padded_so_a_no_date_sentinel_never_looks_newer() -> None:
    """Sources send 0001-01-01 as "no date"; unpadded ('1-01-01…') or as '999-…' it would
    compare as text after real dates and make every later change look stale."""
    sentinel = parse_timestamp("0001-01-01T00:00:00Z", None, dt.UTC)
    assert sentinel == "0001-01-01T00:00:00.000000Z"
    real = parse_timestamp("2026-03-01T00:00:00Z", None, dt.UTC)
    assert compare(real, sentinel) == 1
    assert parse_timestamp(dt.datetime(999, 5, 1, tzinfo=dt.UTC), None, dt.UTC).startswith("0999-")


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+05:00", 1e20, -1e20])
def test_a_timestamp_out_of_range_is_a_value_error(raw: object) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_timestamp(raw, None, dt.UTC)


@pytest.mark.parametrize("raw", ["٤٢", "²", "-٣"])
def test_a_counter_in_other_digits_than_ascii_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a counter"):
        parse_version(VersionKind.COUNTER, raw, None, dt.UTC)
