"""Reconciling a source system: deletions no incremental read can see land in the inbox,
records the hub missed or holds older are reported (and ingested with repair)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sql.client import SqlConnector
from mastersync.connectors.sql.spec import SqlSettings
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.problems import ConfigError
from mastersync.domain.reconciliation import Bucket, Role
from mastersync.domain.records import ExceptionStatus
from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.reconcile import ReconcileOptions, plan, reconcile_source
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import ExceptionFilter, Store


def landscape() -> CompiledLandscape:
    return compile_landscape(
        Landscape.model_validate(
            {
                "name": "sources",
                "systems": {
                    "legacy": {
                        "kind": "erp",
                        "inbound": {
                            "item": {
                                "key": "item_no",
                                "version": {"from": "seq", "kind": "counter"},
                                "fields": {
                                    "sku": "item_no",
                                    "name": "name",
                                    "list_price": {"from": "price", "number": True},
                                },
                            }
                        },
                    },
                    "pim": {
                        "kind": "pim",
                        "inbound": {"item": {"key": "sku", "fields": {"sku": "sku", "name": "n"}}},
                    },
                },
                "domains": {"item": {"natural_keys": [["sku"]], "ownership": {"name": ["legacy"]}}},
            }
        )
    )


class Source:
    """A legacy ERP table, read by the SQL connector, ingested into the store."""

    def __init__(self, store: Store, folder: Path, listing_key: str = "item_no") -> None:
        self.store = store
        self.landscape = landscape()
        self.ingestor = Ingestor(store, self.landscape)
        url = f"sqlite:///{folder / 'legacy.db'}"
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        # The listing's key: the mapping's (item_no), or a surrogate id column the connector
        # orders by, as many tables have.
        surrogate = "id INTEGER PRIMARY KEY, " if listing_key == "id" else ""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE items ({surrogate}seq INTEGER, item_no TEXT UNIQUE, name TEXT, "
                "price TEXT)"
            )
        settings = SqlSettings.model_validate(
            {
                "type": "sql",
                "url": url,
                "read": {"item": {"table": "items", "cursor": "seq", "key": listing_key}},
            }
        )
        self.connector = SqlConnector(settings, ConnectorContext("legacy", folder))

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def poll(self) -> None:
        """What the hub's incremental reader does: read everything, ingest it."""
        page = self.connector.read("item", None, 10_000)
        self.ingestor.ingest("legacy", "item", page.records)

    def reconcile(self, **options: Any) -> Any:
        def ingest(records: list[SourceRecord]) -> object:
            return self.ingestor.ingest("legacy", "item", records, source="reconcile")

        return reconcile_source(
            self.store,
            self.landscape,
            self.connector,
            "legacy",
            "item",
            ReconcileOptions(**options),
            ingest,
        )

    def master(self, key: str) -> str:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.find_master("item", "legacy", key)
        assert found is not None
        return found

    def drift_entries(self, status: ExceptionStatus | None = ExceptionStatus.OPEN) -> list[Any]:
        with self.store.unit_of_work(write=False) as uow:
            return uow.exceptions(ExceptionFilter(status=status, kind="drift", system="legacy"))

    def close(self) -> None:
        self.connector.engine.dispose()


def test_a_deleted_source_record_lands_in_the_inbox_once_and_leaves_when_it_is_back(
    store: Store, tmp_path: Path
) -> None:
    source = Source(store, tmp_path)
    for i in range(5):
        source.sql(
            "INSERT INTO items VALUES (:s, :k, :n, '12.50')", s=i + 1, k=f"L{i}", n=f"Item {i}"
        )
    source.poll()
    assert source.reconcile(chunk=2).report.clean
    gone = source.master("L3")

    source.sql("DELETE FROM items WHERE item_no = 'L3'")
    source.poll()  # the incremental read sees nothing: nothing that exists changed
    result = source.reconcile(chunk=2)
    assert result.report.keys(Bucket.MISSING) == ["L3"]
    assert result.report.counts[Bucket.MATCHED] == 4
    assert result.run.role is Role.SOURCE and result.run.repair["inbox"] == 1
    [entry] = source.drift_entries()
    assert (entry.rule, entry.domain, entry.source_key, entry.master_id) == (
        "source_record_missing",
        "item",
        "L3",
        gone,
    )
    assert entry.payload["last_seen"]["name"] == "Item 3"
    assert entry.payload["reconciliation"] == result.run.run_id
    # Found again: the same entry, one more attempt.
    source.reconcile()
    [again] = source.drift_entries()
    assert (again.id, again.attempts) == (entry.id, 2)
    # `exceptions retry` cannot bring a deleted record back: it says so and leaves it open.
    inbox = ExceptionsInbox(store, source.ingestor)
    assert "reconciliation" in inbox.retry([again]).skipped[again.id or 0]

    source.sql("INSERT INTO items VALUES (9, 'L3', 'Item 3', '12.50')")
    back = source.reconcile()
    assert back.report.clean and back.run.repair["resolved"] == 1
    assert source.drift_entries() == []
    [resolved] = source.drift_entries(status=ExceptionStatus.RESOLVED)
    assert resolved.resolution is not None and resolved.resolution["by"] == "reconcile"
    source.close()


@pytest.mark.parametrize("listing_key", ["item_no", "id"])
def test_a_listed_record_that_cannot_be_read_is_an_error_not_a_deletion(
    store: Store, tmp_path: Path, listing_key: str
) -> None:
    # Review: listed by a surrogate id, the unreadable record was also reported gone (and
    # filed in the inbox as deleted): the listing's key is not the hub's.
    source = Source(store, tmp_path, listing_key)
    source.sql("INSERT INTO items (seq, item_no, name, price) VALUES (1, 'L1', 'Item 1', '12.50')")
    source.poll()
    source.sql("UPDATE items SET seq = 'later' WHERE item_no = 'L1'")  # not a counter
    result = source.reconcile()
    assert result.report.keys(Bucket.MISSING) == []
    listed_as = "L1" if listing_key == "item_no" else "1"
    assert [(e.key, e.field) for e in result.report.errors] == [(listed_as, "version")]
    assert source.drift_entries() == []
    source.close()


def test_missed_and_changed_records_are_reported_and_ingested_with_repair(
    store: Store, tmp_path: Path
) -> None:
    source = Source(store, tmp_path)
    for i in range(4):
        source.sql(
            "INSERT INTO items VALUES (:s, :k, :n, '12.5')", s=i + 1, k=f"L{i}", n=f"Item {i}"
        )
    source.poll()
    # Behind the reader's back (a cursor that did not move): a rename, a price written with
    # other formatting (the same amount: no drift), a price no mapping reads, a new row.
    source.sql("UPDATE items SET name = 'Renamed' WHERE item_no = 'L0'")
    source.sql("UPDATE items SET price = '12.50' WHERE item_no = 'L1'")
    source.sql("UPDATE items SET price = 'twelve' WHERE item_no = 'L2'")
    source.sql("INSERT INTO items VALUES (2, 'L9', 'New one', '3')")
    result = source.reconcile()
    report = result.report
    assert report.count_dict() == {
        "matched": 2,
        "missing": 0,
        "extra": 1,
        "mismatched": 1,
        "retired": 0,
        "sourced": 0,
        "errors": 1,
    }
    [changed] = report.examples[Bucket.MISMATCHED]
    assert changed.key == "L0" and changed.master_id == source.master("L0")
    [(field, hub, now)] = [(d.field, d.expected, d.actual) for d in changed.diffs]
    assert (field, hub, now) == ("name", "Item 0", "Renamed")
    assert report.keys(Bucket.EXTRA) == ["L9"]
    [error] = report.errors
    assert (error.key, error.field, error.rule) == ("L2", "list_price", "number")

    # Repair: ingested under the usual rules. The rename has the version the hub already
    # applied with other content, so ingest calls it stale; the new row is accepted.
    repaired = source.reconcile(repair=True)
    assert repaired.run.repair["ingested"] == 2
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("item", "legacy", "L9") is not None
        stale = uow.exceptions(ExceptionFilter(kind="stale_update", system="legacy"))
    assert [e.source_key for e in stale] == ["L0"]
    source.sql("UPDATE items SET seq = 10 WHERE item_no = 'L0'")
    source.reconcile(repair=True)
    after = source.reconcile().report
    assert after.counts[Bucket.MISMATCHED] == after.counts[Bucket.EXTRA] == 0
    assert after.error_count == 1  # L2 still does not map: its source must fix it
    source.close()


def test_plans_name_what_a_system_is_to_a_domain() -> None:
    compiled = landscape()
    assert [p.role for p in plan(compiled, "legacy", "item")] == [Role.SOURCE]
    with pytest.raises(ConfigError, match="legacy has no subscription for item"):
        plan(compiled, "legacy", "item", Role.TARGET)
    with pytest.raises(ConfigError, match="unknown system 'nobody'"):
        plan(compiled, "nobody", "item")
