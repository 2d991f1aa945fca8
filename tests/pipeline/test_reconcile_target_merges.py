"""Reconciling a consumer that is also a source after a merge: both of its records' source
cross-references name the survivor, yet the hub writes the survivor at one of them only and
deactivated the other. The row the hub writes is the one compared, whichever comes first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.reconciliation import Bucket
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.merging import merge_records
from mastersync.pipeline.reconcile import ReconcileOptions, Reconciliation, reconcile_target
from mastersync.ports.connector import SourceRecord, StateReader
from mastersync.ports.store import Store

FAST = {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "100ms"}, "batch_size": 50}

# The ERP owns names; the PIM describes items, and is sent them back (deactivated by a flag).
LANDSCAPE = {
    "name": "pim-merges",
    "systems": {
        "erp": {
            "kind": "erp",
            "inbound": {"item": {"key": "sku", "fields": {"sku": "sku", "name": "name"}}},
        },
        "pim": {
            "kind": "pim",
            "delivery": FAST,
            "inbound": {
                "item": {
                    "key": "code",
                    "version": {"from": "rev", "kind": "counter"},
                    "fields": {"sku": "code", "description": {"from": "descr", "optional": True}},
                }
            },
            "outbound": {
                "items": {
                    "domain": "item",
                    # Items of the PIM's own, which the ERP never named, are not sent back.
                    "filter": "name != null",
                    "mapping": {"fields": {"code": "sku", "name": "name", "descr": "description"}},
                }
            },
        },
    },
    "domains": {
        "item": {
            "natural_keys": [["sku"]],
            "ownership": {"name": ["erp"], "description": ["pim"]},
        }
    },
}


class ActiveOnly:
    """The PIM's listing as a reader that lists active rows only (and says so)."""

    lists_inactive = False
    source_of_record = True

    def __init__(self, pim: SqlConnector) -> None:
        self.pim = pim

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The PIM's rows whose flag is set."""
        return ((k, row) for k, row in self.pim.read_state(domain) if row["active"])


class Reversed:
    """The PIM's listing, last key first: which of two keys comes first must not matter."""

    def __init__(self, pim: SqlConnector) -> None:
        self.pim = pim

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The PIM's rows in reverse key order."""
        return iter(sorted(self.pim.read_state(domain), reverse=True))


class Estate:
    """The ERP and the PIM (SQL, with an `active` flag) feed items; the PIM gets them back."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.landscape = compile_landscape(Landscape.model_validate(LANDSCAPE))
        self.ingestor = Ingestor(store, self.landscape)
        self.db = folder / "pim.db"
        with sqlite3.connect(self.db) as db:
            db.execute(
                "CREATE TABLE products (code TEXT PRIMARY KEY, name TEXT, descr TEXT, "
                "rev INTEGER NOT NULL DEFAULT 1, active INTEGER NOT NULL DEFAULT 1)"
            )
        settings = SqlSettings.model_validate(
            {
                "type": "sql",
                "url": f"sqlite:///{self.db}",
                "read": {"item": {"table": "products", "cursor": "rev", "key": "code"}},
                "write": {
                    "items": {
                        "table": "products",
                        "key": "code",
                        "deactivate_column": "active",
                        "deactivate_value": 0,
                    }
                },
            }
        )
        self.pim = SqlConnector(settings, ConnectorContext("pim", folder))

    def erp(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def poll_pim(self) -> None:
        self.ingestor.ingest("pim", "item", self.pim.read("item", None, 1000).records)

    def sql(self, statement: str, *params: Any) -> None:
        with sqlite3.connect(self.db) as db:
            db.execute(statement, params)

    def row(self, code: str) -> tuple[Any, ...]:
        with sqlite3.connect(self.db) as db:
            found = db.execute(
                "SELECT name, descr, active FROM products WHERE code = ?", (code,)
            ).fetchone()
        assert found is not None
        return tuple(found)

    def master(self, key: str) -> str:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.find_master("item", "pim", key)
        assert found is not None
        return found

    def deliver(self) -> None:
        hub = DistributionHub(
            self.store,
            list(self.landscape.subscriptions.values()),
            OutboxFeed(self.store, utc_now),
            {"pim": self.pim},
            poll_interval=0.02,
        )
        assert asyncio.run(hub.run_until_idle(timeout=30, settle=0.3)).dead == 0

    def reconcile(
        self, reader: StateReader | None = None, repair: bool = False, chunk: int = 500
    ) -> Reconciliation:
        sub = self.landscape.subscriptions["pim.items"]
        return reconcile_target(
            self.store,
            self.landscape,
            reader or self.pim,
            sub,
            ReconcileOptions(repair=repair, chunk=chunk),
        )

    def close(self) -> None:
        self.pim.engine.dispose()


def merged(store: Store, folder: Path, deliver: bool = True) -> tuple[Estate, str, str]:
    """X1 and X2 at the PIM, described there and read back, then X1's record merged into
    X2's (survivor, loser)."""
    estate = Estate(store, folder)
    estate.erp({"sku": "X1", "name": "Bolt"}, {"sku": "X2", "name": "Bolt M8"})
    estate.deliver()
    estate.sql("UPDATE products SET descr = 'd-' || code, rev = 2")
    estate.poll_pim()
    estate.deliver()
    assert estate.reconcile().report.counts[Bucket.MATCHED] == 2
    survivor, loser = estate.master("X2"), estate.master("X1")
    merge_records(store, estate.landscape, survivor, loser, actor="steward")
    if deliver:
        estate.deliver()
        assert estate.row("X1")[2] == 0  # deactivated by its flag
    # Both of the PIM's source records name the survivor now.
    assert estate.master("X1") == estate.master("X2") == survivor
    return estate, survivor, loser


def test_the_row_the_hub_writes_is_compared_and_the_merged_away_row_is_retired(
    store: Store, tmp_path: Path
) -> None:
    """Review: X1 (the deactivated row of the merged-away record, listed first) was compared
    with the survivor and X2, the row the hub writes, was `sourced` whatever it held."""
    estate, survivor, loser = merged(store, tmp_path)
    result = estate.reconcile()
    report = result.report
    assert report.clean, report.count_dict()
    assert report.keys(Bucket.MATCHED) == ["X2"]
    assert report.keys(Bucket.RETIRED) == ["X1"]
    [retired] = report.examples[Bucket.RETIRED]
    assert retired.master_id == loser
    assert report.counts[Bucket.SOURCED] == 0

    # Drift in the survivor's row, in a field the ERP owns: found and repaired.
    estate.sql("UPDATE products SET name = 'WRONG' WHERE code = 'X2'")
    repaired = estate.reconcile(repair=True)
    [entry] = repaired.report.examples[Bucket.MISMATCHED]
    assert (entry.key, entry.master_id) == ("X2", survivor)
    assert [(d.field, d.expected, d.actual) for d in entry.diffs] == [("name", "Bolt M8", "WRONG")]
    assert repaired.run.repair["queued"] == 1 and repaired.unrepaired == 0
    assert repaired.report.keys(Bucket.RETIRED) == ["X1"]
    estate.deliver()
    assert estate.row("X2") == ("Bolt M8", "d-X2", 1)
    assert estate.reconcile().report.clean
    estate.close()


def test_which_key_the_listing_names_first_does_not_decide_what_is_compared(
    store: Store, tmp_path: Path
) -> None:
    estate, survivor, _ = merged(store, tmp_path)
    estate.sql("UPDATE products SET name = 'WRONG' WHERE code = 'X2'")
    # One record per chunk, X2 before X1: the same buckets.
    report = estate.reconcile(Reversed(estate.pim), chunk=1).report
    assert report.keys(Bucket.MISMATCHED) == ["X2"]
    assert report.keys(Bucket.RETIRED) == ["X1"]
    assert report.counts[Bucket.SOURCED] == 0 and report.counts[Bucket.MATCHED] == 0
    # And with the survivor's row gone, the survivor is missing (the merged-away row does
    # not stand in for it).
    estate.sql("DELETE FROM products WHERE code = 'X2'")
    gone = estate.reconcile().report
    assert [e.master_id for e in gone.examples[Bucket.MISSING]] == [survivor]
    assert gone.keys(Bucket.RETIRED) == ["X1"]
    estate.close()


def test_a_merged_away_row_active_again_in_an_active_only_listing_is_deactivated_again(
    store: Store, tmp_path: Path
) -> None:
    estate, _, loser = merged(store, tmp_path)
    estate.sql("UPDATE products SET active = 1 WHERE code = 'X1'")
    result = estate.reconcile(ActiveOnly(estate.pim), repair=True)
    [entry] = result.report.examples[Bucket.MISMATCHED]
    assert (entry.key, entry.master_id) == ("X1", loser)
    assert entry.note is not None and f"merged into {estate.master('X2')}" in entry.note
    assert result.report.keys(Bucket.MATCHED) == ["X2"]
    assert result.run.repair["queued"] == 1
    estate.deliver()
    assert estate.row("X1")[2] == 0
    assert estate.reconcile(ActiveOnly(estate.pim)).report.clean
    estate.close()


def test_a_merged_away_row_awaiting_its_deactivation_is_extra_not_the_consumers_own(
    store: Store, tmp_path: Path
) -> None:
    """The hub wrote X1 for the merged-away record: until its deactivation arrives it is
    an extra record of the hub's, not one of the PIM's own the hub merely reads."""
    estate, survivor, loser = merged(store, tmp_path, deliver=False)
    report = estate.reconcile().report
    [extra] = report.examples[Bucket.EXTRA]
    assert (extra.key, extra.master_id, extra.note) == ("X1", loser, f"merged into {survivor}")
    assert report.counts[Bucket.SOURCED] == 0
    # The survivor's row holds what its merged version sends (its delivery not made yet).
    assert report.keys(Bucket.MATCHED) == ["X2"]
    # Delivered, the deactivation retires it.
    estate.deliver()
    assert estate.reconcile().report.keys(Bucket.RETIRED) == ["X1"]
    estate.close()


def test_a_consumers_own_record_merged_into_one_it_is_sent_is_sourced_whatever_the_order(
    store: Store, tmp_path: Path
) -> None:
    """X9, an item of the PIM's own that it is never sent, merged into the survivor too:
    a second record of the survivor at the PIM, and not the row the hub writes (X2), even
    when the listing names it first."""
    estate, survivor, _ = merged(store, tmp_path)
    estate.sql("INSERT INTO products (code, descr, rev) VALUES ('X9', 'pim only', 3)")
    estate.poll_pim()
    own = estate.master("X9")
    assert estate.reconcile().report.keys(Bucket.SOURCED) == ["X9"]
    merge_records(store, estate.landscape, survivor, own, actor="steward")
    estate.deliver()
    assert estate.master("X9") == survivor

    report = estate.reconcile(Reversed(estate.pim), chunk=1).report
    assert report.clean, report.count_dict()
    assert report.keys(Bucket.MATCHED) == ["X2"]
    assert report.keys(Bucket.RETIRED) == ["X1"]
    [entry] = report.examples[Bucket.SOURCED]
    assert (entry.key, entry.master_id) == ("X9", survivor)
    assert entry.note == "a second record of the same master, which the hub writes at X2"
    # Drift in the survivor's row is found, whichever key comes first.
    estate.sql("UPDATE products SET name = 'WRONG' WHERE code = 'X2'")
    drifted = estate.reconcile(Reversed(estate.pim), chunk=1).report
    assert drifted.keys(Bucket.MISMATCHED) == ["X2"]
    assert drifted.keys(Bucket.SOURCED) == ["X9"]
    estate.close()
