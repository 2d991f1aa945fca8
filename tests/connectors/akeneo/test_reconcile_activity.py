"""Reconciling an Akeneo consumer whose listing holds disabled products, end to end against
akeneo-mock-server (the testbed of tests/e2e/real): the hub disables a product it no longer
selects, someone enables it again in the PIM, and reconciliation reports it mismatched (by
the product's `enabled`); `--repair` disables it again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.akeneo.connector import AkeneoConnector
from mastersync.connectors.akeneo.spec import AkeneoSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.reconciliation import Bucket
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.reconcile import ReconcileOptions, Reconciliation, reconcile_target
from mastersync.ports.connector import SourceRecord
from mastersync.ports.reconciliation import lists_inactive
from mastersync.ports.store import Store
from tests.connectors.akeneo.conftest import Pim
from tests.e2e.real.testbed import akeneo as akeneo_bed

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")

FAST = {"max_attempts": 3, "backoff": {"initial": "20ms", "max": "100ms"}, "batch_size": 50}
LANDSCAPE = {
    "name": "pim-activity",
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
                        "lifecycle_state": {"from": "st", "default": "active"},
                    },
                }
            },
        },
        "pim": {
            "kind": "pim",
            "delivery": FAST,
            "outbound": {
                "products": {
                    "domain": "item",
                    # A discontinued item leaves the filter: the hub disables its product.
                    "filter": "lifecycle_state == 'active'",
                    "mapping": {"fields": {"identifier": "sku", "values.name": "name"}},
                }
            },
        },
    },
}


class Estate:
    """A store fed by the ERP, delivering items to the PIM as products."""

    def __init__(self, store: Store, pim: Pim, folder: Path) -> None:
        self.store = store
        self.landscape = compile_landscape(Landscape.model_validate(LANDSCAPE))
        self.ingestor = Ingestor(store, self.landscape)
        self.folder = folder
        self.settings = AkeneoSettings.model_validate(
            {
                "type": "akeneo",
                "url": pim.url,
                "client_id": "c",
                "client_secret": "s",
                "username": "u",
                "password": "p",
                "headers": {akeneo_bed.DB_HEADER: pim.database},
                "retries": 0,
                # No enabled-only search: the listing holds disabled products too.
                "read": {"item": {}},
                "write": {"products": {"family": "mro"}},
            }
        )

    def connector(self) -> AkeneoConnector:
        """A connector of its own for each run: the hub closes those it delivered with."""
        return AkeneoConnector(self.settings, ConnectorContext("pim", self.folder))

    def send(self, *rows: dict[str, Any]) -> None:
        self.ingestor.ingest("erp", "item", [SourceRecord(r) for r in rows])

    def deliver(self) -> Any:
        hub = DistributionHub(
            self.store,
            list(self.landscape.subscriptions.values()),
            OutboxFeed(self.store, utc_now),
            {"pim": self.connector()},
            poll_interval=0.02,
        )
        return asyncio.run(hub.run_until_idle(timeout=30, settle=0.3))

    def master(self, sku: str) -> str:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.find_master("item", "erp", sku)
        assert found is not None
        return found

    def reconcile(self, **options: Any) -> Reconciliation:
        sub = self.landscape.subscriptions["pim.products"]
        reader = self.connector()
        try:
            return reconcile_target(
                self.store, self.landscape, reader, sub, ReconcileOptions(**options)
            )
        finally:
            asyncio.run(reader.close())


def item(sku: str, v: int = 1, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "v": v, "name": f"Item {sku}", "price": "12.50", **fields}


def enabled(pim: Pim, sku: str) -> bool:
    product = pim.product(sku)
    assert product is not None
    return bool(product["enabled"])


def test_a_product_enabled_again_in_the_pim_is_reported_and_disabled_again(
    store: Store, pim: Pim, tmp_path: Path
) -> None:
    estate = Estate(store, pim, tmp_path)
    estate.send(item("A1"), item("A2"))
    assert estate.deliver().dead == 0
    estate.send(item("A2", v=2, st="discontinued"))
    assert estate.deliver().dead == 0
    a2 = estate.master("A2")
    assert (enabled(pim, "A1"), enabled(pim, "A2")) == (True, False)
    reader = estate.connector()
    assert lists_inactive(reader) is True
    asyncio.run(reader.close())
    # Disabled, as the hub left it: retired, no drift.
    report = estate.reconcile().report
    assert report.clean and report.keys(Bucket.RETIRED) == ["A2"]
    assert report.counts[Bucket.MATCHED] == 1

    # Enabled again in the PIM, behind the hub's back.
    response = pim.client.patch("/products/A2", json={"identifier": "A2", "enabled": True})
    assert response.status_code < 400, response.text
    report = estate.reconcile().report
    assert report.counts[Bucket.RETIRED] == 0 and report.drift == 1
    [entry] = report.examples[Bucket.MISMATCHED]
    assert (entry.key, entry.master_id) == ("A2", a2)
    assert entry.note == (
        "deactivated by the hub as version 2 (the subscription's filter leaves it out), "
        "active at pim again"
    )

    repaired = estate.reconcile(repair=True)
    assert repaired.run.repair["queued"] == 1 and repaired.unrepaired == 0
    assert estate.deliver().dead == 0
    assert (enabled(pim, "A1"), enabled(pim, "A2")) == (True, False)
    again = estate.reconcile().report
    assert again.clean and again.keys(Bucket.RETIRED) == ["A2"]
    with store.unit_of_work(write=False) as uow:
        assert uow.applied_for("pim.products", [a2])[a2].active is False
