"""Target repairs: a record turned on again behind the hub's back is deactivated again, and
repairs are queued batch by batch as they are found, with one read of events per batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mastersync.backends.sql.store import SqlStore
from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.reconciliation import Bucket
from mastersync.pipeline.matching.merging import merge_records
from mastersync.pipeline.reconcile import reconcile_target
from mastersync.ports.reconciliation import lists_inactive
from mastersync.ports.store import ReplaySelection, Store
from tests.pipeline.test_reconcile_target import Estate, item


class FullListing:
    """A reader of the sandbox that lists its deactivated records too (a table whose rows
    stay, flagged), saying so or not."""

    def __init__(self, target: SandboxTarget, says: bool) -> None:
        self.target = target
        if says:
            self.lists_inactive = True

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for held in sorted(self.target.records(domain).values(), key=lambda r: r["key"]):
            yield held["key"], held["payload"]


def discontinued(store: Store, tmp_path: Path) -> tuple[Estate, str]:
    """A1 at the shop; A2 delivered, then deactivated there by the hub (it left the
    subscription's filter)."""
    estate = Estate(store, tmp_path)
    estate.send(item("A1"), item("A2"))
    estate.deliver()
    estate.send(item("A2", v=2, st="discontinued"))
    estate.deliver()
    a2 = estate.master("A2")
    assert estate.shop.target.records("item")[a2]["active"] is False
    return estate, a2


def test_a_record_the_hub_deactivated_and_the_consumer_turned_on_again_is_repaired(
    store: Store, tmp_path: Path
) -> None:
    """Review: the sandbox lists active records only, yet a deactivated record listed there
    again was `retired` (no drift), and `--repair` sent nothing."""
    estate, a2 = discontinued(store, tmp_path)
    assert lists_inactive(estate.shop) is False
    assert estate.reconcile("shop").report.clean
    estate.shop_sql("UPDATE records SET active = 1 WHERE master_id = ?", a2)

    report = estate.reconcile("shop").report
    assert report.counts[Bucket.RETIRED] == 0 and report.drift == 1
    [entry] = report.examples[Bucket.MISMATCHED]
    assert (entry.key, entry.master_id) == (estate.shop_key("A2"), a2)
    assert entry.note == (
        "deactivated by the hub as version 2 (the subscription's filter leaves it out), "
        "active at shop again"
    )

    repaired = estate.reconcile("shop", repair=True)
    assert repaired.run.repair["queued"] == 1 and repaired.unrepaired == 0
    assert estate.deliver().dead == 0
    held = estate.shop.target.records("item")[a2]
    assert (held["version"], held["active"]) == (2, False)
    assert [op for m, _, op in estate.shop.target.log() if m == a2] == [
        "upsert",
        "deactivate",
        "deactivate",
    ]
    assert estate.reconcile("shop").report.clean
    with store.unit_of_work(write=False) as uow:
        assert uow.applied_for("shop.items", [a2])[a2].active is False
    estate.close()


@pytest.mark.parametrize("says", [True, False], ids=["says-so", "says-nothing"])
def test_a_listing_with_deactivated_records_in_it_shows_them_retired(
    store: Store, tmp_path: Path, says: bool
) -> None:
    estate, a2 = discontinued(store, tmp_path)
    reader = FullListing(estate.shop.target, says)
    # A reader that does not say is taken to list deactivated records: listed proves nothing.
    assert lists_inactive(reader) is True
    sub = estate.landscape.subscriptions["shop.items"]
    result = reconcile_target(store, estate.landscape, reader, sub)
    [entry] = result.report.examples[Bucket.RETIRED]
    assert (entry.key, entry.master_id) == (estate.shop_key("A2"), a2)
    assert result.report.clean
    estate.close()


def merged_at_legacy(store: Store, tmp_path: Path) -> tuple[Estate, str]:
    """Legacy deactivates by clearing a flag column, and its listing is the whole table
    (deactivated rows too); A2 merged into A1, so the hub deactivated A2's row there."""
    estate = Estate(store, tmp_path)
    with sqlite3.connect(estate.legacy_db) as db:
        db.execute("ALTER TABLE items_out ADD COLUMN active INTEGER DEFAULT 1")
    settings = SqlSettings.model_validate(
        {
            "type": "sql",
            "url": f"sqlite:///{estate.legacy_db}",
            "read": {"item": {"table": "items_out", "cursor": "mdm_id", "key": "mdm_id"}},
            "write": {
                "items": {
                    "table": "items_out",
                    "key": "mdm_id",
                    "deactivate_column": "active",
                    "deactivate_value": 0,
                }
            },
        }
    )
    estate.legacy = SqlConnector(settings, ConnectorContext("legacy", tmp_path))
    estate.send(item("A1"), item("A2"))
    estate.deliver()
    a1, a2 = estate.master("A1"), estate.master("A2")
    merge_records(store, estate.landscape, a1, a2, actor="steward")
    estate.deliver()
    assert legacy_flags(estate) == {a1: 1, a2: 0}
    assert lists_inactive(estate.legacy) is True
    return estate, a2


def legacy_flags(estate: Estate) -> dict[str, int]:
    with sqlite3.connect(estate.legacy_db) as db:
        return dict(db.execute("SELECT mdm_id, active FROM items_out").fetchall())


def legacy_sql(estate: Estate, sql: str, *args: Any) -> None:
    with sqlite3.connect(estate.legacy_db) as db:
        db.execute(sql, args)


def test_a_record_turned_on_again_where_the_listing_holds_deactivated_records_is_repaired(
    store: Store, tmp_path: Path
) -> None:
    """Review: where a consumer's listing holds deactivated records (a SQL table whose rows
    stay, flagged), a record the hub deactivated that someone turned on again there stayed
    `retired` (no drift), and `--repair` left it on."""
    estate, a2 = merged_at_legacy(store, tmp_path)
    assert estate.reconcile("legacy").report.keys(Bucket.RETIRED) == [a2]
    legacy_sql(estate, "UPDATE items_out SET active = 1 WHERE mdm_id = ?", a2)

    report = estate.reconcile("legacy").report
    assert report.counts[Bucket.RETIRED] == 0 and report.drift == 1
    [entry] = report.examples[Bucket.MISMATCHED]
    assert (entry.key, entry.master_id) == (a2, a2)
    assert entry.note == (
        f"deactivated by the hub as version 2 (merged into {estate.master('A1')}), "
        "active at legacy again"
    )

    repaired = estate.reconcile("legacy", repair=True)
    assert repaired.run.repair["queued"] == 1 and repaired.unrepaired == 0
    assert estate.deliver().dead == 0
    assert legacy_flags(estate)[a2] == 0
    again = estate.reconcile("legacy").report
    assert again.clean and again.keys(Bucket.RETIRED) == [a2]
    with store.unit_of_work(write=False) as uow:
        assert uow.applied_for("legacy.items", [a2])[a2].active is False
    estate.close()


def test_a_record_the_hub_deactivated_stays_consistent_while_inactive_or_gone_there(
    store: Store, tmp_path: Path
) -> None:
    estate, a2 = merged_at_legacy(store, tmp_path)
    # Listed with its flag cleared: as the hub left it.
    result = estate.reconcile("legacy", repair=True)
    assert result.report.clean and result.report.keys(Bucket.RETIRED) == [a2]
    assert result.run.repair["queued"] == 0
    # Deleted there: the hub expects it inactive, and nothing is missing.
    legacy_sql(estate, "DELETE FROM items_out WHERE mdm_id = ?", a2)
    result = estate.reconcile("legacy", repair=True)
    assert result.report.clean and result.report.counts[Bucket.MISSING] == 0
    assert result.run.repair["queued"] == 0
    estate.close()


def test_a_row_put_back_in_the_table_the_hub_deletes_deactivated_rows_from_is_repaired(
    store: Store, tmp_path: Path
) -> None:
    """Review: a SQL consumer says nothing of its listing (so it may hold deactivated
    records), and a row the hub deleted that was put back stayed `retired`."""
    estate = Estate(store, tmp_path)
    estate.send(item("A1"), item("A2"))
    estate.deliver()
    a1, a2 = estate.master("A1"), estate.master("A2")
    merge_records(store, estate.landscape, a1, a2, actor="steward")
    estate.deliver()
    assert lists_inactive(estate.legacy) is True
    # Deleted there, as its deactivation does: consistent, nothing missing.
    gone = estate.reconcile("legacy").report
    assert gone.clean and gone.counts[Bucket.RETIRED] == 0 and gone.counts[Bucket.MISSING] == 0
    legacy_sql(estate, "INSERT INTO items_out VALUES (?, 'Item A2', 12.5)", a2)

    report = estate.reconcile("legacy").report
    assert report.counts[Bucket.RETIRED] == 0
    assert report.keys(Bucket.MISMATCHED) == [a2] and report.drift == 1
    repaired = estate.reconcile("legacy", repair=True)
    assert repaired.run.repair["queued"] == 1
    assert estate.deliver().dead == 0
    with sqlite3.connect(estate.legacy_db) as db:
        assert db.execute("SELECT mdm_id FROM items_out").fetchall() == [(a1,)]
    assert estate.reconcile("legacy").report.clean
    estate.close()


def test_repairs_are_queued_batch_by_batch_with_one_read_of_events_per_batch(
    store: Store, tmp_path: Path
) -> None:
    """Review: every repair of a run was held to its end (memory growing with the drift,
    no progress), and each record's events were read in a query of its own."""
    assert isinstance(store, SqlStore)
    estate = Estate(store, tmp_path)
    estate.send(*(item(f"R{i:02d}") for i in range(12)))
    estate.deliver()
    # Two records repriced at the shop (the ERP owns prices), the other ten deleted there.
    kept = [estate.master("R00"), estate.master("R01")]
    marks = ", ".join("?" * len(kept))
    estate.shop_sql(
        f"UPDATE records SET payload = json_set(payload, '$.price', '99') "
        f"WHERE master_id IN ({marks})",
        *kept,
    )
    estate.shop_sql(f"DELETE FROM records WHERE master_id NOT IN ({marks})", *kept)

    progress: list[tuple[str, int, int]] = []

    def advance(phase: str, n: int) -> None:
        # What the hub has queued for the shop by now.
        with store.unit_of_work(write=False) as uow:
            progress.append((phase, n, uow.open_deliveries(["shop.items"])))

    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM outbox" in statement:
            reads.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = estate.reconcile("shop", repair=True, chunk=4, progress=advance)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)

    assert result.report.counts[Bucket.MISMATCHED] == 2
    assert result.report.counts[Bucket.MISSING] == 10
    assert result.run.repair["queued"] == 12
    hub = [queued for phase, _, queued in progress if phase == "hub"]
    # Twelve golden records, four a batch: each batch's repairs are queued before the next
    # batch is read (they were all queued after the last one).
    assert len(hub) == 3
    assert 2 < hub[0] < hub[1] < hub[2] == 12
    repairs = [n for phase, n, _ in progress if phase == "repair"]
    assert sum(repairs) == 12 and len(repairs) >= 3
    # The events a repair sends: read once for the listing's chunk and once per batch of
    # the hub's records (one read per record before: twelve).
    assert len(reads) <= 4
    assert estate.deliver().dead == 0
    assert estate.reconcile("shop").report.clean
    estate.close()


def test_the_newest_events_of_records_are_read_in_one_go(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    estate.send(item("N1"), item("N2"))
    estate.send(item("N1", v=2, name="Second"))
    estate.send(item("N1", v=3, name="Third"))
    n1, n2 = estate.master("N1"), estate.master("N2")
    # More ids than one IN list takes, most of them unknown.
    asked = [n1, n2, *(f"itm_unknown_{i:04d}" for i in range(1000))]
    with store.unit_of_work(write=False) as uow:
        newest = uow.newest_events("item", asked)
        replayed = {
            m: uow.replay_events(ReplaySelection("shop.items", master_id=m), "item")[-1]
            for m in (n1, n2)
        }
        assert uow.newest_events("customer", [n1]) == {}
    assert set(newest) == {n1, n2}
    assert newest[n1][1].version == 3 and newest[n2][1].version == 1
    for m in (n1, n2):
        position, event = newest[m]
        assert (position, event.event_id, event.changes) == (
            replayed[m][0],
            replayed[m][1].event_id,
            replayed[m][1].changes,
        )
    estate.close()
