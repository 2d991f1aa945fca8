"""Reconciling a consumer that is also a source of the domain: what it changed in fields it
may write is its own change, reported as such and never pushed over by a repair."""

from __future__ import annotations

import asyncio
import sqlite3
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
from mastersync.pipeline.reconcile import ReconcileOptions, Reconciliation, reconcile_target
from mastersync.ports.connector import SourceRecord
from mastersync.ports.reconciliation import source_of_record
from mastersync.ports.store import Store

FAST = {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "100ms"}, "batch_size": 50}

# The ERP owns names; the PIM owns descriptions, and is sent items (names included) back.
# Brands have no owner: the ERP's wins, the PIM's is read all the same.
LANDSCAPE = {
    "name": "pim-owns-descriptions",
    "systems": {
        "erp": {
            "kind": "erp",
            "inbound": {
                "item": {
                    "key": "sku",
                    "version": {"from": "v", "kind": "counter"},
                    "fields": {
                        "sku": "sku",
                        "name": "name",
                        "brand": {"from": "brand", "optional": True},
                    },
                }
            },
        },
        "pim": {
            "kind": "pim",
            "delivery": FAST,
            "inbound": {
                "item": {
                    "key": "code",
                    "version": {"from": "rev", "kind": "counter"},
                    "fields": {
                        "sku": "code",
                        "description": {"from": "descr", "optional": True},
                        "brand": {"from": "vendor", "optional": True},
                    },
                }
            },
            "outbound": {
                "items": {
                    "domain": "item",
                    "mapping": {
                        "fields": {
                            "code": "sku",
                            "name": "name",
                            "descr": "description",
                            "vendor": "brand",
                        }
                    },
                }
            },
        },
    },
    "domains": {
        "item": {
            "natural_keys": [["sku"]],
            "ownership": {"name": ["erp"], "description": ["pim"]},
            "survivorship": {"brand": {"rule": "source_priority", "systems": ["erp", "pim"]}},
        }
    },
}


class Estate:
    """A store fed by the ERP and the PIM (an SQL database), delivering items to the PIM."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.landscape = compile_landscape(Landscape.model_validate(LANDSCAPE))
        self.ingestor = Ingestor(store, self.landscape)
        self.db = folder / "pim.db"
        with sqlite3.connect(self.db) as db:
            db.execute(
                "CREATE TABLE products (code TEXT PRIMARY KEY, name TEXT, descr TEXT, "
                "vendor TEXT, rev INTEGER NOT NULL DEFAULT 1)"
            )
        settings = SqlSettings.model_validate(
            {
                "type": "sql",
                "url": f"sqlite:///{self.db}",
                "read": {"item": {"table": "products", "cursor": "rev", "key": "code"}},
                "write": {"items": {"table": "products", "key": "code"}},
            }
        )
        self.pim = SqlConnector(settings, ConnectorContext("pim", folder))

    def erp(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def poll_pim(self) -> None:
        """The hub reads the PIM (every row: the cursor is not what is tested here)."""
        self.ingestor.ingest("pim", "item", self.pim.read("item", None, 1000).records)

    def edit(self, code: str, **values: Any) -> None:
        """A PIM user's edit: the row's revision goes up, as the PIM does it."""
        sets = ", ".join(f"{k} = ?" for k in values)
        with sqlite3.connect(self.db) as db:
            db.execute(
                f"UPDATE products SET {sets}, rev = rev + 1 WHERE code = ?",
                (*values.values(), code),
            )

    def restore(self, row: dict[str, Any]) -> None:
        """The PIM's row put back as a backup holds it (revision and all)."""
        sets = ", ".join(f"{k} = ?" for k in row if k != "code")
        with sqlite3.connect(self.db) as db:
            db.execute(
                f"UPDATE products SET {sets} WHERE code = ?",
                (*(v for k, v in row.items() if k != "code"), row["code"]),
            )

    def row(self, code: str) -> dict[str, Any]:
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            found = db.execute("SELECT * FROM products WHERE code = ?", (code,)).fetchone()
        return dict(found)

    def deliver(self) -> None:
        hub = DistributionHub(
            self.store,
            list(self.landscape.subscriptions.values()),
            OutboxFeed(self.store, utc_now),
            {"pim": self.pim},
            poll_interval=0.02,
        )
        assert asyncio.run(hub.run_until_idle(timeout=30, settle=0.3)).dead == 0

    def reconcile(self, repair: bool = False) -> Reconciliation:
        sub = self.landscape.subscriptions["pim.items"]
        return reconcile_target(
            self.store, self.landscape, self.pim, sub, ReconcileOptions(repair=repair)
        )

    def close(self) -> None:
        self.pim.engine.dispose()


def described(store: Store, folder: Path) -> Estate:
    """Two items at the PIM, A1 described there and read back by the hub."""
    estate = Estate(store, folder)
    estate.erp(
        {"sku": "A1", "v": 1, "name": "Bolt", "brand": "Acme"},
        {"sku": "A2", "v": 1, "name": "Nut", "brand": "Acme"},
    )
    estate.deliver()
    estate.edit("A1", descr="M8 bolt")
    estate.poll_pim()
    estate.deliver()
    assert estate.row("A1")["descr"] == "M8 bolt"
    assert estate.reconcile().report.clean
    return estate


def test_an_unread_change_to_a_field_the_consumer_owns_is_reported_and_never_pushed_over(
    store: Store, tmp_path: Path
) -> None:
    """Review: the PIM's new description was `mismatched`, and `--repair` put the hub's old
    one back before the hub ever read it: the user's edit was lost."""
    estate = described(store, tmp_path)
    estate.edit("A1", descr="M8 zinc bolt, 40mm")  # not read by the hub yet
    estate.edit("A2", name="Nutty")  # the ERP owns names: drift, which a repair undoes

    result = estate.reconcile(repair=True)
    report = result.report
    assert report.counts[Bucket.CHANGED_AT_SOURCE] == 1
    assert report.keys(Bucket.MISMATCHED) == ["A2"]
    [own] = report.examples[Bucket.CHANGED_AT_SOURCE]
    assert own.key == "A1"
    assert [(d.field, d.expected, d.actual) for d in own.diffs] == [
        ("descr", "M8 bolt", "M8 zinc bolt, 40mm")
    ]
    assert own.note == (
        "changed at pim, not read yet: descr (description); field ownership lets pim write "
        "description (owned by pim), and the hub takes it when it next reads pim: never "
        "pushed over"
    )
    # Not drift: a run without the A2 edit would be clean.
    assert not Bucket.CHANGED_AT_SOURCE.drift and report.drift == 1
    assert result.run.repair["queued"] == 1 and result.unrepaired == 0
    assert any("--role source --repair" in note for note in result.notes)

    estate.deliver()
    assert estate.row("A1")["descr"] == "M8 zinc bolt, 40mm"
    assert estate.row("A2")["name"] == "Nut"
    # Read by the hub, the description is the golden record's and nothing differs.
    estate.poll_pim()
    estate.deliver()
    assert estate.reconcile().report.clean
    estate.close()


def test_drift_beside_an_unread_own_change_is_held_back_from_repair(
    store: Store, tmp_path: Path
) -> None:
    estate = described(store, tmp_path)
    # One edit at the PIM of its description and of the name, which the ERP owns.
    estate.edit("A1", descr="M8 zinc bolt", name="Bolty")

    result = estate.reconcile(repair=True)
    [entry] = result.report.examples[Bucket.MISMATCHED]
    assert entry.key == "A1"
    assert {d.field for d in entry.diffs} == {"descr", "name"}
    assert entry.note == (
        "not repaired: name differs too, but re-sending the whole record would write over "
        "pim's own descr (description), changed there and not read yet (field ownership lets "
        "pim write description (owned by pim)); the hub sends the record again once it has "
        "read pim"
    )
    # A re-delivery sends the whole record: it would have undone the description too.
    assert result.run.repair["queued"] == 0 and result.run.repair["held_back"] == 1
    # Drift that --repair leaves: `reconcile --repair` still exits non-zero for it.
    assert result.unrepaired == 1
    estate.deliver()
    assert estate.row("A1")["descr"] == "M8 zinc bolt"

    # Once the hub reads the PIM, the version it makes goes back there, names and all.
    estate.poll_pim()
    estate.deliver()
    assert (estate.row("A1")["name"], estate.row("A1")["descr"]) == ("Bolt", "M8 zinc bolt")
    assert estate.reconcile().report.clean
    estate.close()


def test_a_value_the_hub_read_and_did_not_take_says_so_and_is_not_pushed_over(
    store: Store, tmp_path: Path
) -> None:
    estate = described(store, tmp_path)
    # Brands have no owner and the ERP's comes first: the PIM's is read, not taken.
    estate.edit("A1", vendor="Other")
    estate.poll_pim()
    estate.deliver()

    result = estate.reconcile(repair=True)
    [entry] = result.report.examples[Bucket.CHANGED_AT_SOURCE]
    assert [(d.field, d.expected, d.actual) for d in entry.diffs] == [("vendor", "Acme", "Other")]
    assert entry.note is not None
    assert entry.note.startswith("pim's own value, read by the hub as it is: vendor (brand)")
    assert "brand (no owner)" in entry.note
    assert result.run.repair["queued"] == 0 and result.report.drift == 0
    estate.close()


def test_a_newer_version_on_its_way_is_not_taken_for_the_consumers_change(
    store: Store, tmp_path: Path
) -> None:
    estate = described(store, tmp_path)
    # The ERP's new brand wins (it comes first) and is not delivered yet: the PIM still
    # shows the brand it was sent, in a field it may write, and changed nothing.
    estate.erp({"sku": "A1", "v": 2, "name": "Bolt", "brand": "Acme Tools"})

    result = estate.reconcile(repair=True)
    [entry] = result.report.examples[Bucket.MISMATCHED]
    assert [(d.field, d.expected, d.actual) for d in entry.diffs] == [
        ("vendor", "Acme Tools", "Acme")
    ]
    assert entry.note is not None and entry.note.startswith("the hub has delivered version")
    assert result.report.counts[Bucket.CHANGED_AT_SOURCE] == 0
    # Sent again (the version on its way sets the same values).
    assert result.run.repair["queued"] == 1
    estate.deliver()
    assert estate.row("A1")["vendor"] == "Acme Tools"
    assert estate.reconcile().report.clean
    estate.close()


def test_a_listing_of_only_what_the_hub_delivered_holds_no_changes_of_the_source(
    store: Store, tmp_path: Path
) -> None:
    """The sandbox shop is a source of items too, but through other channels (files): what
    its database holds is what the hub delivered, and an edit there is drift."""
    from tests.pipeline.test_reconcile_target import Estate as ShopEstate
    from tests.pipeline.test_reconcile_target import item

    estate = ShopEstate(store, tmp_path)
    sub = estate.landscape.subscriptions["shop.items"]
    assert sub.source_too and not source_of_record(estate.shop)
    estate.send(item("A1"))
    estate.deliver()
    # Titles are where the shop's inbound mapping reads names from, which nobody owns.
    estate.shop_sql("UPDATE records SET payload = json_set(payload, '$.title', 'Sale!')")
    result = estate.reconcile("shop", repair=True)
    assert result.report.counts[Bucket.CHANGED_AT_SOURCE] == 0
    assert result.report.keys(Bucket.MISMATCHED) == [estate.shop_key("A1")]
    assert result.run.repair["queued"] == 1
    estate.close()


def test_a_lost_delivery_over_a_value_the_hub_read_is_drift_and_sent_again(
    store: Store, tmp_path: Path
) -> None:
    """Review: the PIM, restored from a backup, held the brand the hub had read from it
    before the ERP's newer brand was delivered there. Reconcile called it the PIM's own
    value (changed_at_source) and `--repair` never sent the ERP's brand again."""
    estate = described(store, tmp_path)
    # Brands have no owner and the ERP's comes first: the PIM's is read, not taken.
    estate.edit("A1", vendor="Other")
    estate.poll_pim()
    estate.deliver()
    backup = estate.row("A1")
    # The ERP's new brand wins and reaches the PIM ...
    estate.erp({"sku": "A1", "v": 2, "name": "Bolt", "brand": "Acme Tools"})
    estate.deliver()
    assert estate.row("A1")["vendor"] == "Acme Tools"
    # ... which is then restored from the backup: the row exactly as the hub last read it.
    estate.restore(backup)

    result = estate.reconcile(repair=True)
    report = result.report
    assert report.counts[Bucket.CHANGED_AT_SOURCE] == 0
    [entry] = report.examples[Bucket.MISMATCHED]
    assert entry.key == "A1"
    assert [(d.field, d.expected, d.actual) for d in entry.diffs] == [
        ("vendor", "Acme Tools", "Other")
    ]
    assert entry.note is not None
    assert entry.note.startswith("delivery lost: vendor (brand) is as the hub read it from pim")
    assert "pim's own only while the hub has delivered nothing since it read it" in entry.note
    assert result.run.repair["queued"] == 1 and result.unrepaired == 0
    estate.deliver()
    assert estate.row("A1")["vendor"] == "Acme Tools"
    assert estate.reconcile().report.clean
    estate.close()


def test_a_lost_delivery_beside_other_drift_is_sent_again_not_held_back(
    store: Store, tmp_path: Path
) -> None:
    """The restored row differs in a field the ERP owns too: nothing in it is the PIM's own
    change since the hub's delivery, so the whole record is sent again."""
    estate = described(store, tmp_path)
    estate.edit("A1", vendor="Other")
    estate.poll_pim()
    estate.deliver()
    backup = estate.row("A1")
    estate.erp({"sku": "A1", "v": 2, "name": "Bolt M8", "brand": "Acme Tools"})
    estate.deliver()
    estate.restore(backup)

    result = estate.reconcile(repair=True)
    [entry] = result.report.examples[Bucket.MISMATCHED]
    assert {d.field for d in entry.diffs} == {"name", "vendor"}
    assert entry.note is not None and entry.note.startswith("delivery lost: vendor (brand)")
    assert result.run.repair["queued"] == 1 and result.run.repair.get("held_back", 0) == 0
    estate.deliver()
    assert (estate.row("A1")["name"], estate.row("A1")["vendor"]) == ("Bolt M8", "Acme Tools")
    assert estate.reconcile().report.clean
    estate.close()
