"""The store's side of reconciliation, on SQLite and PostgreSQL alike: a system's xrefs in key
order (paged), and run summaries."""

from __future__ import annotations

from mastersync.domain.golden import Contribution
from mastersync.domain.reconciliation import ReconciliationRun, Role
from mastersync.ports.store import ChangeSet, Store

NOW = "2026-11-28T10:00:00.000000Z"


def xref(system: str, key: str, domain: str = "item") -> Contribution:
    return Contribution(domain, system, key, f"itm_{key}", 1, None, {"sku": key}, "d", NOW)


def test_a_systems_xrefs_are_scanned_in_key_order_a_page_at_a_time(store: Store) -> None:
    rows = [xref("erp", f"K{i:02d}") for i in (5, 1, 9, 3, 7)]
    rows += [xref("pim", "K02"), xref("erp", "K04", domain="customer")]
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(contributions=rows))
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        scanned = list(uow.scan_xrefs("item", "erp", batch=2))
        assert [c.key for c in scanned] == ["K01", "K03", "K05", "K07", "K09"]
        assert scanned[0] == xref("erp", "K01")
        assert list(uow.scan_xrefs("item", "nobody")) == []


def test_runs_are_kept_updated_and_listed_newest_first(store: Store) -> None:
    first = ReconciliationRun("rcn_1", "shop", "item", Role.TARGET, NOW, "shop.items")
    second = ReconciliationRun("rcn_2", "erp", "item", Role.SOURCE, "2026-11-28T11:00:00.000000Z")
    with store.unit_of_work() as uow:
        uow.save_reconciliation(first)
        uow.save_reconciliation(second)
        uow.commit()
    first.finished_at = "2026-11-28T10:00:05.000000Z"
    first.counts = {"matched": 7, "missing": 1, "extra": 0, "mismatched": 2}
    first.repair = {"replay": "rpr_1", "queued": 3}
    with store.unit_of_work() as uow:
        uow.save_reconciliation(first)
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        assert [r.run_id for r in uow.reconciliations()] == ["rcn_2", "rcn_1"]
        [kept] = uow.reconciliations(system="shop", domain="item")
        assert kept == first
        assert uow.reconciliations(domain="customer") == []
        assert [r.role for r in uow.reconciliations(limit=1)] == [Role.SOURCE]
