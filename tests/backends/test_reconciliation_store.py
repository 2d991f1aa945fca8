"""The store's side of reconciliation, on SQLite and PostgreSQL alike: a system's xrefs in key
order (paged), the open dead letters of records, and run summaries."""

from __future__ import annotations

import itertools
from typing import Any

from mastersync.backends.sql.rows import IN_CHUNK
from mastersync.domain.golden import Contribution
from mastersync.domain.reconciliation import ReconciliationRun, Role
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.ports.store import ChangeSet, Store

NOW = "2026-11-28T10:00:00.000000Z"
DELIVERIES = itertools.count(1)


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


def dead_letter(master_id: str, subscription: str = "shop.items", **kw: Any) -> ExceptionEntry:
    delivery = next(DELIVERIES)
    system = subscription.split(".", 1)[0]
    return ExceptionEntry(
        kw.pop("kind", "dead_letter"),
        system,
        kw.pop("domain", "item"),
        "exhausted",
        f"{subscription}: version 1 of {master_id} not delivered",
        f"sig_{system}",
        {"subscription": subscription, "master_id": master_id, "version": 1},
        NOW,
        source_key=f"{subscription}#{delivery}",
        master_id=master_id,
        **kw,
    )


def test_the_open_dead_letters_of_records_are_read_by_master_id_not_the_whole_inbox(
    store: Store,
) -> None:
    """Review: a repair read every open dead letter of the domain (up to 100,000 per batch)
    to settle the few of its records."""
    wanted = [dead_letter("itm_1"), dead_letter("itm_2")]
    others = [
        # Another record, subscription, domain or kind; one closed already.
        dead_letter("itm_3"),
        dead_letter("itm_1", "legacy.items"),
        dead_letter("itm_1", domain="customer"),
        dead_letter("itm_2", kind="validation_error"),
        dead_letter("itm_2", status=ExceptionStatus.RESOLVED),
        *(dead_letter(f"itm_other_{i}") for i in range(50)),
    ]
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(exceptions=[wanted[0], *others, wanted[1]]))
        uow.commit()
    # More ids than one IN-list takes, and more than the IN-lists worth a query each (one
    # pass over the subscription's dead letters then): the same entries, oldest first.
    unknown = [f"itm_unknown_{i:05d}" for i in range(10 * IN_CHUNK)]
    with store.unit_of_work(write=False) as uow:
        for asked in (["itm_1", "itm_2"], ["itm_2", *unknown[:IN_CHUNK], "itm_1"], unknown):
            found = uow.open_dead_letters("item", "shop.items", [*asked, "itm_1", "itm_2"])
            assert [(e.master_id, e.source_key) for e in found] == [
                (e.master_id, e.source_key) for e in wanted
            ]
            assert [e.id for e in found] == sorted(e.id or 0 for e in found)
        assert uow.open_dead_letters("item", "shop.items", []) == []
        assert uow.open_dead_letters("item", "shop.items", ["itm_9"]) == []
        # The subscription is matched as it is spelt, not as a LIKE pattern.
        assert uow.open_dead_letters("item", "shop.item%", ["itm_1"]) == []
