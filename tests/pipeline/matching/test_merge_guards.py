"""Merge, split and unmerge on real stores: guarded fields wait for a confirmation, natural
keys follow the records as they are now, and an unmerge revives no empty record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mastersync.backends.sql.governance import SqlGovernance
from mastersync.domain.consolidate import MergeRefused
from mastersync.domain.governance.four_eyes import OwnChangeError
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.matching.records import MergeStatus
from mastersync.pipeline.governance.approvals import decide
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.merging import merge_records, split_record, unmerge_records
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import Store
from tests.pipeline.matching.support import ACME, customer, feed, landscape

MATCHING = landscape()


def credit_landscape(credit_owners: list[str]) -> CompiledLandscape:
    """erp and crm send customers with a credit limit (guarded) that ``credit_owners`` own."""
    inbound = {
        "customer": {
            "key": "no",
            "version": {"from": "v", "kind": "counter"},
            "fields": {
                "name": "name",
                "country": {"const": "DE"},
                "credit_limit.amount": {"from": "limit", "number": True, "optional": True},
                "credit_limit.currency": {"const": "EUR"},
                "customer_number": "no",
            },
        }
    }
    doc = {
        "name": "merge-guards",
        "systems": {
            "erp": {"kind": "erp", "inbound": inbound},
            "crm": {"kind": "crm", "inbound": inbound},
        },
        "domains": {
            "customer": {
                "natural_keys": [["customer_number"]],
                "ownership": {"credit_limit": credit_owners},
            }
        },
    }
    return compile_landscape(Landscape.model_validate(doc))


def record(no: str, name: str, limit: str, v: int = 1) -> list[Any]:
    return [SourceRecord({"no": no, "v": v, "name": name, "limit": limit})]


def limit(store: Store, master: str) -> Any:
    with store.unit_of_work(write=False) as uow:
        g = uow.golden(master)
        assert g is not None
        return g.attributes.get("credit_limit", {}).get("amount")


def keys(store: Store, master: str) -> list[tuple[str, str]]:
    with store.unit_of_work(write=False) as uow:
        return sorted((n, v) for _, n, v, _ in uow.natural_keys_of([master]))


def test_a_merge_holds_a_guarded_change_for_a_confirmation(store: Store) -> None:
    """Review: merging a CRM customer into an ERP one raised the survivor's credit limit from
    1000 to 900000 (the CRM owns it first) with no pending change."""
    both = credit_landscape(["crm", "erp"])
    ingestor = Ingestor(store, both)
    (a,) = ingestor.ingest("erp", "customer", record("E1", "Acme Handel", "1000")).master_ids
    (b,) = ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "900000")).master_ids
    merge = merge_records(store, both, a, b, actor="alice")
    assert limit(store, a) == "1000"
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [held] = governance.pending()
    assert (held.master_id, held.field, held.system, held.source_key) == (
        a,
        "credit_limit",
        "crm",
        "K9",
    )
    assert held.proposed == {"amount": "900000", "currency": "EUR"}
    assert held.current == {"amount": "1000", "currency": "EUR"}
    assert held.requested_by == "alice"
    with store.unit_of_work(write=False) as uow:
        survivor_event = uow.events(a)[-1]
        assert survivor_event.kind == "merged"
        assert "credit_limit" not in survivor_event.changes
        assert held.trace_id == survivor_event.trace_id
        [entry] = [e for e in uow.lineage(master_id=a) if e.stage == "merge"]
        assert entry.detail["held"] == ["credit_limit"]
        assert entry.detail["merge"] == merge.id
    # The audit entry of the merge names the merge's actor.
    [audited] = [e for e in governance.audit(a) if e.version == survivor_event.version]
    assert audited.actor == "alice"
    assert "credit_limit" not in json.loads(audited.changes)
    # Four-eyes as for any change: not by the one who merged, then by another person.
    with pytest.raises(OwnChangeError):
        decide(store, both, governance, held.id or 0, "alice", approve=True, channel="test")
    decide(store, both, governance, held.id or 0, "rita", approve=True, channel="test")
    assert limit(store, a) == "900000"


def test_a_merge_changes_no_guarded_value_that_stays_as_it_was(store: Store) -> None:
    # The ERP owns the limit first: its value stands, and nothing waits.
    erp_first = credit_landscape(["erp", "crm"])
    ingestor = Ingestor(store, erp_first)
    (a,) = ingestor.ingest("erp", "customer", record("E1", "Acme Handel", "1000")).master_ids
    (b,) = ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "900000")).master_ids
    merge_records(store, erp_first, a, b, actor="alice")
    assert limit(store, a) == "1000"
    assert SqlGovernance(store.engine).pending() == []  # type: ignore[attr-defined]


def test_a_split_keeps_the_kept_records_confirmed_limit(store: Store) -> None:
    """Review: splitting the ERP's record off dropped the kept record's confirmed limit (the
    CRM's held value was never kept, so no source of the kept record has one)."""
    erp_first = credit_landscape(["erp", "crm"])
    ingestor = Ingestor(store, erp_first)
    (a,) = ingestor.ingest("erp", "customer", record("C1", "Acme", "1000")).master_ids
    ingestor.ingest("crm", "customer", record("C1", "Acme", "2000"))
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [crm_asks] = governance.pending()
    new = split_record(store, erp_first, "customer", "erp", "C1", actor="alice")
    assert limit(store, a) == "1000"
    assert limit(store, new) == "1000"  # a new record's first values are not held
    # No source may confirm clearing it: nothing new waits; the CRM's request still does.
    assert [p.id for p in governance.pending()] == [crm_asks.id]


def test_a_split_holds_the_value_a_remaining_source_would_set(store: Store) -> None:
    # Merged, the CRM's limit lost to the ERP's; with the ERP's record split off it would win.
    erp_first = credit_landscape(["erp", "crm"])
    ingestor = Ingestor(store, erp_first)
    (a,) = ingestor.ingest("erp", "customer", record("E1", "Acme Handel", "1000")).master_ids
    (b,) = ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "900000")).master_ids
    merge_records(store, erp_first, a, b, actor="alice")
    split_record(store, erp_first, "customer", "erp", "E1", actor="bob")
    assert limit(store, a) == "1000"
    [held] = SqlGovernance(store.engine).pending()  # type: ignore[attr-defined]
    assert (held.master_id, held.system, held.source_key, held.requested_by) == (
        a,
        "crm",
        "K9",
        "bob",
    )
    assert held.proposed == {"amount": "900000", "currency": "EUR"}


def test_unmerge_indexes_the_revived_records_current_key(store: Store) -> None:
    """Review: the CRM corrected its record's VAT number while it was merged; unmerged, its
    record kept the old number's key and was not found by the new one."""
    ingestor = Ingestor(store, MATCHING)
    (a,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", vat="DE136695976", **ACME))
    ).master_ids
    (b,) = ingestor.ingest(
        "crm",
        "customer",
        feed(customer("C1", "Acme Berlin", vat="ATU13585627", country="AT")),
    ).master_ids
    merge = merge_records(store, MATCHING, a, b, actor="alice")
    ingestor.ingest(
        "crm", "customer", feed(customer("C1", "Acme Berlin", v=2, vat="DE811569869", country="DE"))
    )
    unmerge_records(store, MATCHING, merge.id or 0, actor="bob")
    assert keys(store, a) == [("tax_id", "DE136695976")]
    # The old number is given up (no record has it); the new one identifies b.
    assert keys(store, b) == [("tax_id", "DE811569869")]
    (c,) = ingestor.ingest(
        "erp", "customer", feed(customer("E2", "Zeta Ltd", vat="DE811569869", country="DE"))
    ).master_ids
    assert c == b
    (d,) = ingestor.ingest(
        "erp", "customer", feed(customer("E3", "Other AG", vat="ATU13585627", country="AT"))
    ).master_ids
    assert d not in (a, b)


def test_unmerge_refuses_once_the_losers_source_records_were_split_off(store: Store) -> None:
    """Review: after the loser's only source record was split off the survivor, unmerge
    revived the loser as a live record with no values and no source record."""
    ingestor = Ingestor(store, MATCHING)
    (a,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", vat="DE136695976", **ACME))
    ).master_ids
    (b,) = ingestor.ingest(
        "crm",
        "customer",
        feed(customer("C1", "Acme Berlin", vat="ATU13585627", country="AT")),
    ).master_ids
    merge = merge_records(store, MATCHING, a, b, actor="alice")
    split_record(store, MATCHING, "customer", "crm", "C1", actor="alice")
    with pytest.raises(MergeRefused, match=rf"{b} has no source record left in {a}.*split off"):
        unmerge_records(store, MATCHING, merge.id or 0, actor="bob")
    with store.unit_of_work(write=False) as uow:
        loser = uow.golden(b)
        assert loser is not None and loser.merged_into == a
        assert [g.master_id for g in uow.list_golden("customer")].count(b) == 0
        undone = uow.merge_record(merge.id or 0)
        assert undone is not None and undone.status is MergeStatus.MERGED


def test_an_unmerge_holds_a_guarded_value_it_would_take_back(store: Store) -> None:
    """A limit the loser's source brought, confirmed while merged, went back to the
    survivor's own value at the unmerge with no confirmation."""
    both = credit_landscape(["crm", "erp"])
    ingestor = Ingestor(store, both)
    (a,) = ingestor.ingest("erp", "customer", record("E1", "Acme Handel", "1000")).master_ids
    (b,) = ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "900000")).master_ids
    merge = merge_records(store, both, a, b, actor="alice")
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [held] = governance.pending()
    decide(store, both, governance, held.id or 0, "rita", approve=True, channel="test")
    assert limit(store, a) == "900000"
    assert merge.id is not None
    unmerge_records(store, both, merge.id, actor="bob")
    # The survivor keeps the confirmed limit until a second person confirms the way back;
    # the revived record has its own source's value, as it had before the merge.
    assert limit(store, a) == "900000"
    assert limit(store, b) == "900000"
    [back] = governance.pending()
    assert (back.master_id, back.field, back.requested_by) == (a, "credit_limit", "bob")
    assert back.proposed == {"amount": "1000", "currency": "EUR"}
    with pytest.raises(OwnChangeError):
        decide(store, both, governance, back.id or 0, "bob", approve=True, channel="test")
    decide(store, both, governance, back.id or 0, "rita", approve=True, channel="test")
    assert limit(store, a) == "1000"


def test_a_pending_change_follows_its_source_record_into_a_merge(store: Store) -> None:
    """A pending limit of the merged-away record stayed on it: the survivor showed nothing
    waiting (a supplier was not payment-blocked), and confirming it failed."""
    both = credit_landscape(["crm", "erp"])
    ingestor = Ingestor(store, both)
    (b,) = ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "5000")).master_ids
    ingestor.ingest("crm", "customer", record("K9", "Zeta Trading", "9000", v=2))
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [pending] = governance.pending()
    assert pending.master_id == b
    (a,) = ingestor.ingest("erp", "customer", record("E1", "Acme Handel", "1000")).master_ids
    merge = merge_records(store, both, a, b, actor="alice")
    moved = [p for p in governance.pending() if p.id == pending.id]
    assert [p.master_id for p in moved] == [a]
    assert merge.id is not None
    # Unmerged, it goes back with its source record.
    unmerge_records(store, both, merge.id, actor="alice")
    assert [p.master_id for p in governance.pending() if p.id == pending.id] == [b]
    decide(store, both, governance, pending.id or 0, "rita", approve=True, channel="test")
    assert limit(store, b) == "9000"
