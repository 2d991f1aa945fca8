"""Four-eyes in the ingest path: no way through ingest sets a guarded field unconfirmed."""

from __future__ import annotations

from typing import Any

import pytest

from mastersync.backends.sql.governance import SqlGovernance
from mastersync.domain.governance.four_eyes import FourEyesError
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.pipeline.governance.approvals import decide
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.queries import get_record
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import Store


def _landscape(credit_owners: list[str]) -> Any:
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
        "name": "four-eyes",
        "systems": {
            "erp": {"kind": "erp", "inbound": inbound},
            "crm": {"kind": "crm", "inbound": inbound},
        },
        "domains": {
            "customer": {
                "natural_keys": [["customer_number"]],
                "ownership": {"credit_limit": credit_owners, "name": ["erp", "crm"]},
            }
        },
    }
    return compile_landscape(Landscape.model_validate(doc))


def _approve(store: Store, owners: list[str], change: int) -> None:
    """A second person confirms a held change, under the landscape's ownership."""
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    decide(store, _landscape(owners), governance, change, "rita", approve=True, channel="test")


def _limit(store: Store, key: str = "C1") -> Any:
    view = get_record(store, "customer", f"erp:{key}")
    return view.golden.attributes["credit_limit"]["amount"]


def test_a_value_ownership_now_lets_through_is_held_not_applied(store: Store) -> None:
    """The CRM's credit limit was dropped (the ERP owned it); ownership moved to the CRM and
    its record re-run (a retry) set the limit at once: the source said what it said
    before, which counted as nothing new to confirm."""
    before = Ingestor(store, _landscape(["erp"]))
    before.ingest(
        "erp", "customer", [SourceRecord({"no": "C1", "v": 1, "name": "Acme", "limit": "250000"})]
    )
    crm = {"no": "C1", "v": 1, "name": "Acme", "limit": "500000"}
    before.ingest("crm", "customer", [SourceRecord(crm)])
    assert _limit(store) == "250000"
    after = Ingestor(store, _landscape(["crm", "erp"]))
    report = after.ingest("crm", "customer", [SourceRecord(crm, reapply=True)])
    assert report.outcomes["rejected"] == 0
    assert report.tally.held == 1  # the ingest command says so (it counts as unchanged)
    assert _limit(store) == "250000"
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [held] = governance.pending()
    assert (held.field, held.system, held.proposed) == (
        "credit_limit",
        "crm",
        {"amount": "500000", "currency": "EUR"},
    )
    # The same record again adds no second pending change; a confirmation applies it.
    after.ingest("crm", "customer", [SourceRecord(crm, reapply=True)])
    assert len(governance.pending()) == 1
    _approve(store, ["crm", "erp"], held.id or 0)
    assert _limit(store) == "500000"
    # Confirmed: the record re-sent is nothing new.
    after.ingest("crm", "customer", [SourceRecord({**crm, "v": 2})])
    assert governance.pending() == []
    assert _limit(store) == "500000"


def test_no_unconfirmed_value_is_kept_to_win_later(store: Store) -> None:
    """Review found the trial merge let a losing CRM limit be stored unconfirmed: ownership
    moved to the CRM (or the ERP's record was split off) and an ERP change made it the
    golden value with no approval. A losing value is held too, and a value the system may
    not write is not kept at all."""
    for first_owners in (["erp", "crm"], ["erp"]):
        key = "C1" if first_owners == ["erp", "crm"] else "C2"  # a customer each
        before = Ingestor(store, _landscape(first_owners))
        erp = {"no": key, "v": 1, "name": "Acme", "limit": "250000"}
        before.ingest("erp", "customer", [SourceRecord(erp)])
        before.ingest("crm", "customer", [SourceRecord({**erp, "limit": "500000"})])
        with store.unit_of_work(write=False) as uow:
            master = uow.find_master("customer", "crm", key)
            assert master is not None
            [crm] = [m for m in uow.members(master) if m.system == "crm"]
        assert "credit_limit" not in crm.values
        after = Ingestor(store, _landscape(["crm", "erp"]))
        after.ingest("erp", "customer", [SourceRecord({**erp, "v": 2, "name": "Acme AG"})])
        view = get_record(store, "customer", f"erp:{key}")
        assert view.golden.attributes["credit_limit"]["amount"] == "250000"
        assert view.golden.attributes["name"] == "Acme AG"


def test_another_sources_value_that_wins_later_waits_for_a_confirmation(store: Store) -> None:
    """Review: the CRM sent the golden limit (nothing to hold), the ERP's change to 300000
    was confirmed, ownership moved to the CRM, and an ERP name change set the limit back to
    the CRM's 250000 unseen. No merge changes a guarded field of an existing record now:
    it keeps its value and the change waits for a confirmation."""
    first = Ingestor(store, _landscape(["erp", "crm"]))
    erp = {"no": "C3", "v": 1, "name": "Acme", "limit": "250000"}
    first.ingest("erp", "customer", [SourceRecord(erp)])
    first.ingest("crm", "customer", [SourceRecord(erp)])
    first.ingest("erp", "customer", [SourceRecord({**erp, "v": 2, "limit": "300000"})])
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [raise_it] = governance.pending()
    _approve(store, ["erp", "crm"], raise_it.id or 0)
    assert _limit(store, "C3") == "300000"
    moved = Ingestor(store, _landscape(["crm", "erp"]))
    report = moved.ingest(
        "erp", "customer", [SourceRecord({**erp, "v": 3, "limit": "300000", "name": "Acme AG"})]
    )
    assert report.tally.held == 1
    view = get_record(store, "customer", "erp:C3")
    assert view.golden.attributes["name"] == "Acme AG"
    assert _limit(store, "C3") == "300000"
    [back] = governance.pending()
    assert (back.system, back.source_key, back.proposed) == (
        "crm",
        "C3",
        {"amount": "250000", "currency": "EUR"},
    )
    _approve(store, ["crm", "erp"], back.id or 0)
    assert _limit(store, "C3") == "250000"


def test_a_request_the_source_no_longer_makes_is_superseded(store: Store) -> None:
    """Approving an older held change installed a value the source no longer sent: the ERP
    asked for 300000, then for 400000, and approving the first gave 300000. A newer version
    of the record supersedes what it asked before, also when it goes back to the golden
    value; within one batch as well as across batches."""
    ingestor = Ingestor(store, _landscape(["erp"]))
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    erp = {"no": "C4", "v": 1, "name": "Acme", "limit": "250000"}
    ingestor.ingest("erp", "customer", [SourceRecord(erp)])
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 2, "limit": "300000"})])
    [first] = governance.pending()
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 3, "limit": "400000"})])
    [second] = governance.pending()
    assert second.proposed == {"amount": "400000", "currency": "EUR"}
    [old] = governance.pending(status="superseded")
    assert old.id == first.id and old.decided_at is not None
    with pytest.raises(FourEyesError, match="superseded"):
        _approve(store, ["erp"], first.id or 0)
    assert _limit(store, "C4") == "250000"
    # The same request again is still one pending change, not superseded by itself.
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 4, "limit": "400000"})])
    assert [p.id for p in governance.pending()] == [second.id]
    # Back to the golden value: nothing is asked any more.
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 5})])
    assert governance.pending() == []
    # Two versions in one batch: only the newer one waits.
    ingestor.ingest(
        "erp",
        "customer",
        [
            SourceRecord({**erp, "v": 6, "limit": "500000"}),
            SourceRecord({**erp, "v": 7, "limit": "600000"}),
        ],
    )
    assert [p.proposed for p in governance.pending()] == [{"amount": "600000", "currency": "EUR"}]
    # A stale version asks nothing and supersedes nothing.
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 6, "limit": "500000"})])
    [waiting] = governance.pending()
    assert waiting.proposed == {"amount": "600000", "currency": "EUR"}
    _approve(store, ["erp"], waiting.id or 0)
    assert _limit(store, "C4") == "600000"


def test_a_moved_records_newer_version_supersedes_what_it_asked_for_before(store: Store) -> None:
    """Review: pending changes were looked up by golden record; split off, a record's newer
    version left its older request pending where it was raised."""
    from mastersync.pipeline.matching.merging import split_record

    landscape = _landscape(["erp", "crm"])
    ingestor = Ingestor(store, landscape)
    erp = {"no": "C5", "v": 1, "name": "Acme", "limit": "1000"}
    ingestor.ingest("erp", "customer", [SourceRecord(erp)])
    ingestor.ingest("crm", "customer", [SourceRecord(erp)])
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 2, "limit": "2000"})])
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    [old] = governance.pending()
    new = split_record(store, landscape, "customer", "erp", "C5", actor="ana")
    ingestor.ingest("erp", "customer", [SourceRecord({**erp, "v": 3, "limit": "3000"})])
    assert [p.master_id for p in governance.pending()] == [new]
    [superseded] = governance.pending(status="superseded")
    assert superseded.id == old.id


def test_a_retried_api_write_is_still_its_requesters(store: Store) -> None:
    # pat asks the CRM, which does not own credit limits, for 9,000,000: an ownership
    # violation. Ownership moves to the CRM and the inbox is retried, as the README says to:
    # the hold names pat, not the system, so pat cannot confirm their own limit.
    from mastersync.domain.governance.four_eyes import OwnChangeError
    from mastersync.pipeline.exceptions import ExceptionsInbox
    from mastersync.pipeline.governance.writes import write_record
    from mastersync.ports.store import ExceptionFilter

    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    erp_only = _landscape(["erp"])
    Ingestor(store, erp_only).ingest(
        "erp", "customer", [SourceRecord({"no": "C1", "v": 1, "name": "Acme", "limit": "1000"})]
    )
    result = write_record(
        Ingestor(store, erp_only),
        governance,
        consumer="portal",
        person="pat",
        system="crm",
        domain="customer",
        key="C1",
        version=None,
        attributes={
            "name": "Acme",
            "country": "DE",
            "customer_number": "C1",
            "credit_limit": {"amount": "9000000", "currency": "EUR"},
        },
        request_id="req-1",
        route="POST /v1/customers",
    )
    assert result.ignored == ["credit_limit"]
    with store.unit_of_work(write=False) as uow:
        entries = uow.exceptions(ExceptionFilter(kind="ownership_violation"))
    assert [(e.actor, e.channel) for e in entries] == [("pat", "api:portal POST /v1/customers")]
    both = _landscape(["crm", "erp"])
    ExceptionsInbox(store, Ingestor(store, both)).retry(entries)
    [held] = governance.pending()
    assert held.proposed == {"amount": "9000000", "currency": "EUR"}
    assert held.requested_by == "pat"
    with pytest.raises(OwnChangeError):
        decide(store, both, governance, held.id, "pat", approve=True, channel="api:portal")
    assert _limit(store) == "1000"
    decide(store, both, governance, held.id, "rita", approve=True, channel="test")
    assert _limit(store) == "9000000"


def test_a_merge_by_matching_holds_a_guarded_change_in_its_transaction(store: Store) -> None:
    """Review: a merge (a review accepted, ``dedupe --merge``: both ``merge_in``) set the
    survivor's credit limit to the loser's with no confirmation. It is held, with the merge:
    a merge rolled back leaves no pending change behind."""
    from mastersync.domain.governance.four_eyes import OwnChangeError
    from mastersync.pipeline.matching.merging import merge_in

    both = _landscape(["crm", "erp"])
    ingestor = Ingestor(store, both)
    (a,) = ingestor.ingest(
        "erp", "customer", [SourceRecord({"no": "C1", "v": 1, "name": "Acme", "limit": "1000"})]
    ).master_ids
    (b,) = ingestor.ingest(
        "crm", "customer", [SourceRecord({"no": "K9", "v": 1, "name": "Acme", "limit": "900000"})]
    ).master_ids
    governance = SqlGovernance(store.engine)  # type: ignore[attr-defined]
    now = "2026-11-27T12:00:00.000000Z"
    with store.unit_of_work() as uow:
        merge_in(uow, both, a, b, actor="steward", reason=None, now=now)
        # Not committed: neither the merge nor its hold is written.
    assert governance.pending() == []
    with store.unit_of_work() as uow:
        merge_in(uow, both, a, b, actor="steward", reason="review", now=now)
        uow.commit()
    assert _limit(store) == "1000"
    [held] = governance.pending()
    assert (held.master_id, held.system, held.source_key, held.requested_by) == (
        a,
        "crm",
        "K9",
        "steward",
    )
    with pytest.raises(OwnChangeError):
        decide(store, both, governance, held.id or 0, "steward", approve=True, channel="test")
    _approve(store, ["crm", "erp"], held.id or 0)
    assert _limit(store) == "900000"
