"""When a full listing of Akeneo's products is due, and its cursor."""

from __future__ import annotations

import datetime as dt

from mastersync.connectors.akeneo.listing import Cursor, due

T0 = dt.datetime(2026, 3, 4, 16, 0, tzinfo=dt.UTC)


def test_the_cursor_round_trips_and_knows_a_pass_under_way() -> None:
    assert Cursor.parse(None) == Cursor()
    cursor = Cursor(listed=T0.isoformat(), next="http://pim/api/rest/v1/products?search_after=B")
    assert Cursor.parse(cursor.dump()) == cursor
    assert cursor.in_pass
    assert not Cursor(listed=T0.isoformat()).in_pass
    assert Cursor().dump() == "{}"


def test_without_events_every_poll_lists() -> None:
    listed = Cursor(listed=T0.isoformat())
    assert due(listed, events=False, listed_here=True, reconcile_every=3600, now=T0)


def test_with_events_a_run_lists_once_at_its_start_and_then_when_reconciliation_is_due() -> None:
    listed = Cursor(listed=T0.isoformat())
    later = T0 + dt.timedelta(minutes=5)
    # A new run (this process has not listed yet): events sent while it was down are lost.
    assert due(listed, events=True, listed_here=False, reconcile_every=3600, now=later)
    assert not due(listed, events=True, listed_here=True, reconcile_every=3600, now=later)
    hour = T0 + dt.timedelta(hours=1)
    assert due(listed, events=True, listed_here=True, reconcile_every=3600, now=hour)
    assert due(Cursor(), events=True, listed_here=True, reconcile_every=3600, now=later)
