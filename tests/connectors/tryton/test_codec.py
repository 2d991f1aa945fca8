"""Tryton's typed JSON values, the reader's cursor and the error classification: the parts
of the connector that are plain functions (tests/e2e/real runs the rest against Tryton)."""

from __future__ import annotations

import pytest

from mastersync.connectors.tryton.codec import ValueProblem, plain, typed
from mastersync.connectors.tryton.reader import Cursor
from mastersync.connectors.tryton.rpc import classify
from mastersync.connectors.tryton.writer import changed


def test_typed_values_are_made_plain_and_dotted_reads_folded() -> None:
    row = {
        "id": 7,
        "write_date": {
            "__class__": "datetime",
            "year": 2026,
            "month": 11,
            "day": 27,
            "hour": 18,
            "minute": 36,
            "second": 58,
            "microsecond": 18346,
        },
        "list_price": {"__class__": "Decimal", "decimal": "12.50"},
        "template": 3,
        "template.": {
            "id": 3,
            "valid_from": {"__class__": "date", "year": 2026, "month": 1, "day": 2},
        },
        "addresses.": [{"id": 1, "city": "Berlin"}],
    }
    assert plain(row) == {
        "id": 7,
        "write_date": "2026-11-27T18:36:58.018346",
        "list_price": "12.50",
        "template": {"id": 3, "valid_from": "2026-01-02"},
        "addresses": [{"id": 1, "city": "Berlin"}],
    }


def test_values_are_typed_for_their_fields_and_bad_ones_named() -> None:
    assert typed("12.5", "numeric", "list_price") == {"__class__": "Decimal", "decimal": "12.5"}
    assert typed("2026-03-01", "date", "d") == {
        "__class__": "date",
        "year": 2026,
        "month": 3,
        "day": 1,
    }
    assert typed("2026-03-01T10:00:00+01:00", "datetime", "t")["hour"] == 9  # to naive UTC
    assert typed("12", "integer", "n") == 12
    assert typed("Acme", "char", "name") == "Acme"
    with pytest.raises(ValueProblem, match="list_price: 'twelve' is not a number"):
        typed("twelve", "numeric", "list_price")


def test_only_changed_values_are_written() -> None:
    current = {"name": "Acme", "list_price": "12.50", "active": 1, "country": 5}
    values = {
        "name": "Acme",
        "list_price": {"__class__": "Decimal", "decimal": "12.5"},
        "active": True,
        "country": 6,
    }
    types = {"name": "char", "list_price": "numeric", "active": "boolean", "country": "many2one"}
    assert changed(current, values, types) == {"country": 6}
    assert (
        changed({"categories": [1, 2]}, {"categories": [["add", [2]]]}, {"categories": "many2many"})
        == {}
    )


def test_the_cursor_keeps_what_was_read_within_the_lookback_window() -> None:
    cur = Cursor(hw="2026-11-27T10:00:00", recent={"1": "2026-11-27T09:59:58"})
    cur.in_pass = True
    cur.read = {"2": "2026-11-27T10:00:04", "3": "2026-11-27T09:00:00", "4": "2026-11-27T10:09"}
    cur.mark = "2026-11-27T10:00:04"  # the newest change when the pass searched
    assert Cursor.parse(cur.dump()) == cur
    cur.finish(lookback=5)
    # The mark, not 4's later change (read on a later page, after the search).
    assert cur.hw == "2026-11-27T10:00:04" and cur.mark is None
    # 1 fell out of the window (before 09:59:59), 3 is long past; 2 and 4 are kept.
    assert cur.recent == {"2": "2026-11-27T10:00:04", "4": "2026-11-27T10:09"}
    assert Cursor.parse(cur.dump()) == cur


def test_a_pass_saved_without_a_mark_leaves_the_high_water_mark_where_it_was() -> None:
    # A cursor saved mid-pass before passes had a mark: read from the old mark again.
    cur = Cursor.parse('{"hw": "2026-11-27T10:00:00", "recent": {}, "todo": [], "read": {}}')
    cur.read = {"2": "2026-11-27T10:00:04"}
    cur.finish(lookback=5)
    assert cur.hw == "2026-11-27T10:00:00" and cur.recent == {"2": "2026-11-27T10:00:04"}


def test_tryton_errors_are_transient_or_terminal_by_their_kind() -> None:
    assert classify("UserError", "The VAT number is not valid.").transient is False
    assert classify("AccessError", "You are not allowed").transient is False
    assert classify("ConcurrencyException", "Records were modified").transient is True
    assert classify("DatabaseOperationalError", "").transient is True
    assert classify("OperationalError", "database is locked").transient is True
    assert classify("'nope'", "").transient is False  # an unknown model
