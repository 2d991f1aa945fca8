"""Renderings that must read in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console

from mastersync.cli.render import deliveries_table
from mastersync.domain.delivery import SubscriptionStats


def rendered(renderable: object, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_deliveries_keep_every_figure_in_80_columns_with_open_deliveries() -> None:
    """The oldest open delivery was an eleventh column: in 80 columns it was dropped, and
    p99 was cut to '131,6…'."""
    stats = [
        SubscriptionStats(
            "shop.products", 3, 1, 98_765, 2, 10, 4, "2026-12-06T21:50:06.123456Z", 9_462, 131_642
        ),
        SubscriptionStats("crm.customers", 0, 0, 1_696, 0, 10, 0, None, 5_890, 6_467),
        SubscriptionStats("wms.items", 0, 0, 3_552, 0, 2_242, 0, None, 39, 41, unchanged=2_000),
    ]
    out = rendered(deliveries_table(stats))
    assert "wms.items: 2,000 of the skipped sent it nothing new (unchanged)" in out
    assert "crm.customers: 0" not in out
    assert "131,642" in out and "…" not in out
    assert "shop.products: oldest open delivery from 2026-12-06 21:50:06" in out
    assert "crm.customers: oldest" not in out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())


def test_deliveries_say_the_replays_under_the_table_in_80_columns() -> None:
    """Review: replays were counted into delivered and skipped with the versions they sent
    again; counted apart, they must still show (an eleventh column does not fit in 80)."""
    stats = [
        SubscriptionStats(
            "myrest.items", 129, 0, 4_579, 0, 599, 0, None, 39, 41, replayed=129, replaying=129
        ),
        SubscriptionStats("wms.items", 0, 0, 3_552, 0, 0, 0, None, 39, 41, replayed=1_000),
        SubscriptionStats("crm.customers", 0, 0, 1_696, 0, 10, 0, None, 5_890, 6_467),
    ]
    out = rendered(deliveries_table(stats))
    assert "myrest.items: 129 sent again by replays, 129 of them still open" in out
    assert "wms.items: 1,000 sent again by replays\n" in out
    assert "crm.customers: " not in out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())


def test_deliveries_with_a_long_name_and_slow_latencies_keep_p99_in_80_columns() -> None:
    """Review: a 15-character subscription name with six-digit latencies pushed p99 off an
    80-column terminal (names are never cut): then each subscription is a block."""
    stats = [
        SubscriptionStats(
            "ecommerce.items", 12_345, 1_234, 987_654, 12, 1_234_567, 4, None, 123_456, 654_321
        ),
        SubscriptionStats("crm.customers", 0, 0, 1_696, 0, 10, 0, None, 5_890, 6_467),
    ]
    out = rendered(deliveries_table(stats, width=80), width=80)
    assert "p99 654,321 ms" in out and "p99 6,467 ms" in out and "…" not in out
    assert out.startswith("deliveries per subscription\n") and "ecommerce.items\n" in out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())
    # Where it fits, still the table.
    wide = rendered(deliveries_table(stats, width=120), width=120)
    assert "p99 ms" in wide and "654,321" in wide


def test_an_ingest_report_keeps_its_counts_whole_beside_a_long_file_name() -> None:
    from mastersync.cli.render import report_table
    from mastersync.pipeline.ingest import BatchReport

    report = BatchReport(
        "bat_1", "erp", "item", "erp_item_master_export_2026-12-06_full_refresh.csv"
    )
    report.tally.outcomes.update({"accepted": 4, "rejected": 1})
    out = rendered(report_table([report]))
    assert "system domain source" in out and "received accepted unchanged stale rejected" in out
    assert "…" not in out and "_full_refresh" in out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())


def test_a_trace_shows_holds_quality_warnings_and_a_delivery_without_a_key() -> None:
    """Lineage kept them, the timeline did not: a held credit limit read as 'unchanged', a
    quality warning was nowhere, and a dead delivery's source read 'shop:None'."""
    from mastersync.cli.render import trace_table
    from mastersync.domain.records import LineageEntry
    from mastersync.pipeline.queries import Trace

    at = "2026-12-07T04:00:00.000000Z"
    entries = [
        LineageEntry(
            "t1",
            "ingest",
            "unchanged",
            at,
            "customer",
            "cus_1",
            None,
            "erp",
            "C1",
            "3",
            "b",
            {"held_for_approval": ["credit_limit"]},
        ),
        LineageEntry(
            "t2",
            "ingest",
            "accepted",
            at,
            "customer",
            "cus_1",
            2,
            "erp",
            "C1",
            "4",
            "b",
            {"warnings": ["credit_limit.amount: range"]},
        ),
        LineageEntry(
            "t2",
            "deliver",
            "dead",
            at,
            "customer",
            "cus_1",
            2,
            "shop",
            None,
            None,
            None,
            {"subscription": "shop.customers", "attempts": 6},
        ),
        # Review: a remerge (or merge) came from no system, and read "None".
        LineageEntry("t3", "remerge", "accepted", at, "customer", "cus_1", 3, detail={"by": "ana"}),
    ]
    for width in (200, 60):
        out = rendered(trace_table(Trace("cus_1", entries, []), width), width)
        assert "held for approval: credit_limit" in out
        assert "quality warning: credit_limit.amount: range" in out
        assert "None" not in out and "by ana" in out
