"""Reconciling consumer systems against real stores: a sandbox shop and a SQL database that
drift (edited, deleted, added to behind the hub's back) are found out field by field, and
re-publishing repairs them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sandbox.target import SandboxConnector
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.reconciliation import Bucket, Role
from mastersync.domain.subscriptions import Subscription, compile_subscription
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.reconcile import ReconcileOptions, reconcile_target
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import Store

FAST = {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "100ms"}, "batch_size": 50}


def landscape() -> CompiledLandscape:
    return compile_landscape(
        Landscape.model_validate(
            {
                "name": "drift",
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
                                    "list_price": {"from": "price", "number": True},
                                    "brand": {"from": "brand", "optional": True},
                                    "lifecycle_state": {"from": "st", "default": "active"},
                                },
                            }
                        },
                    },
                    "shop": {
                        "kind": "ecommerce",
                        "delivery": FAST,
                        # The shop adds items of its own (drafts the ERP never sees).
                        "inbound": {
                            "item": {
                                "key": "handle",
                                "fields": {
                                    "sku": "handle",
                                    "name": "title",
                                    "lifecycle_state": {"const": "draft"},
                                },
                            }
                        },
                        "outbound": {
                            "items": {
                                "domain": "item",
                                "filter": "lifecycle_state == 'active'",
                                "mapping": {
                                    "fields": {
                                        "handle": "sku",
                                        "title": "name",
                                        "price": "list_price",
                                        "vendor": "brand",
                                    }
                                },
                            }
                        },
                    },
                    "legacy": {
                        "kind": "erp",
                        "delivery": FAST,
                        "outbound": {
                            "items": {
                                "domain": "item",
                                "mapping": {
                                    "fields": {
                                        "mdm_id": "_master_id",
                                        "title": "name",
                                        "price": "list_price",
                                    }
                                },
                            }
                        },
                    },
                },
            }
        )
    )


class Estate:
    """A store fed by the ERP, delivering to the shop (sandbox) and legacy (SQL)."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.landscape = landscape()
        self.ingestor = Ingestor(store, self.landscape)
        self.shop = SandboxConnector(folder / "shop.db")
        self.legacy_db = folder / "legacy.db"
        with sqlite3.connect(self.legacy_db) as db:
            db.execute(
                "CREATE TABLE items_out (mdm_id TEXT PRIMARY KEY, title TEXT, price NUMERIC)"
            )
        settings = SqlSettings.model_validate(
            {
                "type": "sql",
                "url": f"sqlite:///{self.legacy_db}",
                "read": {"item": {"table": "items_out", "cursor": "mdm_id", "key": "mdm_id"}},
                "write": {"items": {"table": "items_out", "key": "mdm_id"}},
            }
        )
        self.legacy = SqlConnector(settings, ConnectorContext("legacy", folder))

    def send(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def deliver(self) -> Any:
        hub = DistributionHub(
            self.store,
            list(self.landscape.subscriptions.values()),
            OutboxFeed(self.store, utc_now),
            {"shop": self.shop, "legacy": self.legacy},
            poll_interval=0.02,
        )
        return asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))

    def master(self, sku: str) -> str:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.find_master("item", "erp", sku)
        assert found is not None
        return found

    def shop_key(self, sku: str) -> str:
        return str(self.shop.target.records("item")[self.master(sku)]["key"])

    def shop_sql(self, sql: str, *args: Any) -> None:
        with sqlite3.connect(self.shop.target.path) as db:
            db.execute(sql, args)

    def reconcile(self, system: str, **options: Any) -> Any:
        reader = self.shop if system == "shop" else self.legacy
        sub = self.landscape.subscriptions[f"{system}.items"]
        return reconcile_target(
            self.store, self.landscape, reader, sub, ReconcileOptions(**options)
        )

    def close(self) -> None:
        self.legacy.engine.dispose()


def refiltered(filter: str) -> tuple[CompiledLandscape, Subscription]:
    """The landscape and its shop subscription with another filter (as edited later)."""
    edited = landscape()
    shop = edited.config.systems["shop"]
    config = shop.outbound["items"].model_copy(update={"filter": filter})
    sub = compile_subscription("shop", "items", config, shop.delivery, DOMAINS["item"].fields)
    return edited, sub


def item(sku: str, v: int = 1, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "v": v, "name": f"Item {sku}", "price": "12.50", **fields}


def test_a_consumer_in_sync_has_no_drift_and_the_run_is_kept(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    estate.send(*(item(f"A{i}") for i in range(7)), item("D1", st="draft"))
    assert estate.deliver().dead == 0
    seen: list[tuple[str, int]] = []
    result = estate.reconcile("shop", chunk=3, progress=lambda phase, n: seen.append((phase, n)))
    assert result.report.clean
    assert result.report.count_dict() == {
        "matched": 7,
        "missing": 0,
        "extra": 0,
        "mismatched": 0,
        "retired": 0,
        "sourced": 0,
        "changed_at_source": 0,
        "errors": 0,
    }
    # Listed in chunks of three; the hub's own records looked through after.
    assert [n for phase, n in seen if phase == "listed"] == [3, 3, 1]
    assert sum(n for phase, n in seen if phase == "hub") == 8
    with store.unit_of_work(write=False) as uow:
        [run] = uow.reconciliations(system="shop")
    assert (run.run_id, run.role, run.subscription) == (
        result.run.run_id,
        Role.TARGET,
        "shop.items",
    )
    assert run.counts["matched"] == 7 and run.finished_at is not None
    estate.close()


def test_drift_at_the_shop_is_found_and_repaired_by_re_publishing(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    estate.send(*(item(f"A{i}", brand="Acme") for i in range(6)))
    estate.deliver()
    a0, a1, a2 = (estate.master(f"A{i}") for i in range(3))
    # Behind the hub's back: a title edited, a vendor cleared, one record deleted, one
    # added, one re-typed with other formatting (no drift), and one more the shop keeps
    # though the hub has since discontinued it (its deactivation not delivered yet).
    edit = orjson.dumps({"handle": "A0", "title": "Sale!", "price": "12.5", "vendor": "Acme"})
    estate.shop_sql("UPDATE records SET payload = ? WHERE master_id = ?", edit.decode(), a0)
    cleared = orjson.dumps({"handle": "A1", "title": "Item A1", "price": "12.5"})
    estate.shop_sql("UPDATE records SET payload = ? WHERE master_id = ?", cleared.decode(), a1)
    estate.shop_sql("DELETE FROM records WHERE master_id = ?", a2)
    estate.shop_sql(
        "INSERT INTO records VALUES ('item', 'T-manual', 'none', 1, 1, ?, 0)",
        orjson.dumps({"handle": "X9", "title": "typed in by hand"}).decode(),
    )
    retyped = {"handle": "A3 ", "title": " Item A3", "price": 12.5, "vendor": "Acme"}
    estate.shop_sql(
        "UPDATE records SET payload = ? WHERE master_id = ?",
        orjson.dumps(retyped).decode(),
        estate.master("A3"),
    )
    estate.send(item("A4", v=2, st="discontinued", brand="Acme"))
    estate.send(item("A5", v=2, name="Renamed", brand="Acme"))  # delivered later: in flight

    result = estate.reconcile("shop")
    report = result.report
    assert report.count_dict() == {
        "matched": 1,
        "missing": 1,
        "extra": 2,
        "mismatched": 3,
        "retired": 0,
        "sourced": 0,
        "changed_at_source": 0,
        "errors": 0,
    }
    mismatched = {e.key: e for e in report.examples[Bucket.MISMATCHED]}
    assert set(mismatched) == {estate.shop_key(s) for s in ("A0", "A1", "A5")}
    [title] = mismatched[estate.shop_key("A0")].diffs
    assert (title.field, title.expected, title.actual) == ("title", "Item A0", "Sale!")
    [vendor] = mismatched[estate.shop_key("A1")].diffs
    assert (vendor.field, vendor.expected, vendor.actual) == ("vendor", "Acme", None)
    assert "delivered version 1 of version 2" in (mismatched[estate.shop_key("A5")].note or "")
    [missing] = report.examples[Bucket.MISSING]
    assert missing.master_id == a2 and "gone from shop" in (missing.note or "")
    extra = {e.key: e.note for e in report.examples[Bucket.EXTRA]}
    assert extra["T-manual"] == "unknown to the hub: no cross-reference"
    assert extra[estate.shop_key("A4")] == "the subscription's filter leaves it out"
    assert result.run.repair == {}

    repaired = estate.reconcile("shop", repair=True)
    assert repaired.run.repair["queued"] == 4  # 3 mismatched + 1 missing
    assert repaired.run.repair["replay"].startswith("rpr_")
    assert estate.deliver().dead == 0
    held = estate.shop.target.records("item")
    assert held[a0]["payload"]["title"] == "Item A0"
    assert held[a1]["payload"]["vendor"] == "Acme"
    assert held[a2]["payload"] == {
        "handle": "A2",
        "title": "Item A2",
        "price": "12.5",
        "vendor": "Acme",
    }
    after = estate.reconcile("shop").report
    # Extras are reported, never deleted; the discontinued one was deactivated meanwhile.
    assert after.count_dict()["extra"] == 1 and after.keys(Bucket.EXTRA) == ["T-manual"]
    assert after.counts[Bucket.MISSING] == after.counts[Bucket.MISMATCHED] == 0
    assert after.counts[Bucket.MATCHED] == 5
    estate.close()


def test_a_sql_consumer_is_compared_in_its_own_shape_and_repaired(
    sqlite_url: str, tmp_path: Path
) -> None:
    from mastersync.bootstrap import open_store

    store = open_store(sqlite_url)
    estate = Estate(store, tmp_path)
    estate.send(*(item(f"B{i}") for i in range(4)))
    estate.deliver()
    b0, b1, b2 = (estate.master(f"B{i}") for i in range(3))
    engine = sa.create_engine(f"sqlite:///{estate.legacy_db}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        # SQLite hands NUMERIC 12.50 back as the float 12.5 (no drift), padded text is no
        # drift either; a changed title and a deleted row are.
        conn.execute(
            sa.text("UPDATE items_out SET title = title || '   ' WHERE mdm_id = :m"), {"m": b0}
        )
        conn.execute(sa.text("UPDATE items_out SET title = 'old' WHERE mdm_id = :m"), {"m": b1})
        conn.execute(sa.text("DELETE FROM items_out WHERE mdm_id = :m"), {"m": b2})
    result = estate.reconcile("legacy")
    assert result.report.count_dict()["matched"] == 2
    assert result.report.keys(Bucket.MISMATCHED) == [b1]
    assert result.report.keys(Bucket.MISSING) == [b2]

    assert estate.reconcile("legacy", repair=True).run.repair["queued"] == 2
    assert estate.deliver().dead == 0
    with engine.connect() as conn:
        titles = dict(conn.execute(sa.text("SELECT mdm_id, title FROM items_out")).all())
    assert (titles[b1], titles[b2]) == ("Item B1", "Item B2")
    assert estate.reconcile("legacy").report.clean
    estate.close()
    store.close()


def test_a_record_the_mapping_cannot_shape_is_an_error_naming_it_and_the_rest_goes_on(
    store: Store, tmp_path: Path
) -> None:
    estate = Estate(store, tmp_path)
    estate.send(item("C1"), item("C2"))
    estate.deliver()
    # A mapping changed since: a field that no longer maps (a value map without C1's name).
    broken = landscape()
    sub = broken.subscriptions["shop.items"]
    shape = sub.shape

    def strict(view: Any) -> dict[str, Any]:
        if view.get("sku") == "C1":
            from mastersync.domain.subscriptions import OutboundMappingFailed

            raise OutboundMappingFailed("title", "map", "'Item C1' is not in the value map")
        return shape(view)

    object.__setattr__(sub, "shape", strict)
    result = reconcile_target(store, broken, estate.shop, sub)
    [error] = result.report.errors
    assert (error.key, error.field, error.rule) == (estate.shop_key("C1"), "title", "map")
    assert error.master_id == estate.master("C1")
    assert result.report.counts[Bucket.MATCHED] == 1 and not result.report.clean
    estate.close()


def test_a_filter_that_cannot_be_evaluated_is_an_error_naming_the_record_not_a_crash(
    store: Store, tmp_path: Path
) -> None:
    """'Item C1' > 1 raised TypeError out of reconcile (a traceback, no report)."""
    estate = Estate(store, tmp_path)
    estate.send(item("C1"), item("C2"))
    estate.deliver()
    estate.send(item("C3"))  # not delivered yet: the hub's side looks for it too
    edited, sub = refiltered("sku == 'C2' || name > `1`")
    result = reconcile_target(store, edited, estate.shop, sub)
    errors = {(e.master_id, e.field, e.rule) for e in result.report.errors}
    assert errors == {(estate.master(s), "filter", "condition") for s in ("C1", "C3")}
    assert result.report.counts[Bucket.MATCHED] == 1
    estate.close()


def test_a_consumers_own_records_are_not_drift(store: Store, tmp_path: Path) -> None:
    estate = Estate(store, tmp_path)
    estate.send(item("A1"))
    estate.deliver()
    own = {"handle": "S1", "title": "Shop special"}
    estate.ingestor.ingest("shop", "item", [SourceRecord(own)])
    with store.unit_of_work(write=False) as uow:
        master = uow.find_master("item", "shop", "S1")
    estate.shop_sql(
        "INSERT INTO records VALUES ('item', 'S1', ?, 1, 1, ?, 0)",
        master,
        orjson.dumps(own).decode(),
    )
    report = estate.reconcile("shop").report
    assert report.clean
    assert (report.counts[Bucket.MATCHED], report.keys(Bucket.SOURCED)) == (1, ["S1"])
    estate.close()


def test_a_missing_record_says_what_became_of_its_version(store: Store, tmp_path: Path) -> None:
    """The note said "(in flight, or dead)" whatever the queue knew: a record the filter
    left out when it was delivered, one dead at the consumer and one not taken yet."""
    from mastersync.connectors.sandbox.faults import Faults

    estate = Estate(store, tmp_path)
    estate.shop = SandboxConnector(tmp_path / "shop.db", Faults(reject_when="handle == 'D2'"))
    estate.send(item("D1", st="draft"), item("D2"), item("D3"))
    estate.deliver()
    estate.send(item("D4"))  # not delivered yet
    # The filter now takes drafts too: D1 was skipped when it was delivered.
    edited, sub = refiltered("lifecycle_state != 'discontinued'")
    report = reconcile_target(store, edited, estate.shop, sub).report
    notes = {e.master_id: e.note or "" for e in report.examples[Bucket.MISSING]}
    assert set(notes) == {estate.master(s) for s in ("D1", "D2", "D4")}
    assert "version 1 was skipped when it was delivered" in notes[estate.master("D1")]
    assert "`reconcile --repair` sends it" in notes[estate.master("D1")]
    assert "version 1 is dead" in notes[estate.master("D2")]
    assert notes[estate.master("D4")] == (
        "not delivered yet: the hub has delivered nothing; version 1 is in its log"
    )
    # Sent again by a repair, the skipped one arrives.
    repaired = reconcile_target(store, edited, estate.shop, sub, ReconcileOptions(repair=True))
    assert repaired.run.repair["queued"] == 3
    hub = DistributionHub(
        store, [sub], OutboxFeed(store, utc_now), {"shop": estate.shop}, poll_interval=0.02
    )
    asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))
    assert estate.master("D1") in estate.shop.target.records("item")
    estate.close()


def test_a_merged_away_record_deactivated_by_a_column_is_retired_not_drift(
    sqlite_url: str, tmp_path: Path
) -> None:
    from mastersync.bootstrap import open_store
    from mastersync.pipeline.matching.merging import merge_records, unmerge_records

    store = open_store(sqlite_url)
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
    merge = merge_records(store, estate.landscape, a1, a2, actor="steward")
    estate.deliver()
    # The consumer keeps the merged-away record's row, deactivated. The consumer's key stays
    # with that record (only source records move to the survivor): it is retired there, not
    # a second row of the survivor that no repair could clear.
    with store.unit_of_work(write=False) as uow:
        keys = uow.load_xrefs("item", [("legacy", a1), ("legacy", a2)])
    assert {c.key: c.master_id for c in keys} == {a1: a1, a2: a2}
    result = estate.reconcile("legacy")
    assert result.report.count_dict()["matched"] == 1
    assert result.report.keys(Bucket.RETIRED) == [a2]
    assert result.report.counts[Bucket.EXTRA] == 0
    # Undone, the record comes back at its own row.
    assert merge.id is not None
    unmerge_records(store, estate.landscape, merge.id, actor="steward")
    estate.deliver()
    assert estate.reconcile("legacy").report.clean
    estate.close()
    store.close()


def test_a_filter_on_the_consumers_keys_finds_missing_records(store: Store, tmp_path: Path) -> None:
    # Stock goes to the shop only for items the shop has (`_keys.item.key`). Delivered in
    # one round with its item, stock was filtered out before the item's key was there (now
    # it waits for it); and looking for missing stock evaluated that filter without the
    # shop's keys, so it selected nothing and deleted stock was never reported.
    compiled = compile_landscape(
        Landscape.model_validate(
            {
                "name": "stock",
                "systems": {
                    "erp": {
                        "kind": "erp",
                        "inbound": {"item": {"key": "sku", "fields": {"sku": "sku"}}},
                    },
                    "wms": {
                        "kind": "wms",
                        "inbound": {
                            "inventory": {
                                "key": "sku",
                                "fields": {
                                    "item": {
                                        "from": "sku",
                                        "ref": {"domain": "item", "system": "erp"},
                                    },
                                    "available": {"from": "qty", "number": True},
                                },
                            }
                        },
                    },
                    "shop": {
                        "kind": "ecommerce",
                        "delivery": FAST,
                        "outbound": {
                            "items": {"domain": "item", "mapping": {"fields": {"handle": "sku"}}},
                            "stock": {
                                "domain": "inventory",
                                "filter": "_keys.item.key != null",
                                "mapping": {
                                    "fields": {"product": "_keys.item.key", "qty": "available"}
                                },
                            },
                        },
                    },
                },
            }
        )
    )
    shop = SandboxConnector(tmp_path / "shop.db")
    ingest = Ingestor(store, compiled)
    ingest.ingest("erp", "item", [SourceRecord({"sku": s}) for s in ("A", "B")])
    ingest.ingest("wms", "inventory", [SourceRecord({"sku": s, "qty": "5"}) for s in ("A", "B")])
    hub = DistributionHub(
        store,
        list(compiled.subscriptions.values()),
        OutboxFeed(store, utc_now),
        {"shop": shop},
        poll_interval=0.02,
    )
    asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))
    with store.unit_of_work(write=False) as uow:
        stock_a = uow.find_master("inventory", "wms", "A")
    assert stock_a is not None
    assert {r["payload"]["qty"] for r in shop.target.records("inventory").values()} == {"5"}
    assert len(shop.target.records("inventory")) == 2
    with sqlite3.connect(shop.target.path) as db:
        db.execute("DELETE FROM records WHERE master_id = ?", (stock_a,))
    sub = compiled.subscriptions["shop.stock"]
    result = reconcile_target(store, compiled, shop, sub, ReconcileOptions())
    assert [e.master_id for e in result.report.examples[Bucket.MISSING]] == [stock_a]
    assert result.report.count_dict()["matched"] == 1


def test_a_price_cleared_at_the_erp_is_cleared_in_the_sql_consumer_and_no_drift(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Review: a value cleared at its source was left out of the consumer's payload, so an
    SQL consumer (an UPDATE of the columns sent) kept the old price for good, and the
    reconciliation called it drift. The hub says null for it once; the row's price is
    NULL, and the consumer is in sync."""
    from mastersync.bootstrap import open_store

    store = open_store(sqlite_url)
    estate = Estate(store, tmp_path)
    estate.send(item("C1", brand="Acme"))
    estate.deliver()
    estate.send(item("C1", v=2, price=None, brand=None))
    assert estate.deliver().dead == 0
    master = estate.master("C1")
    engine = sa.create_engine(f"sqlite:///{estate.legacy_db}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT title, price FROM items_out WHERE mdm_id = :m"), {"m": master}
        ).one()
    assert tuple(row) == ("Item C1", None)
    assert estate.shop.target.records("item")[master]["payload"] == {
        "handle": "C1",
        "title": "Item C1",
        "price": None,
        "vendor": None,
    }
    assert estate.reconcile("legacy").report.clean
    assert estate.reconcile("shop").report.clean
    estate.close()
    store.close()
