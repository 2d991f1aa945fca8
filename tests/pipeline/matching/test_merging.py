"""Merge and unmerge on real stores: xrefs, natural keys, events, index and delivery state."""

from __future__ import annotations

import pytest

from mastersync.domain.consolidate import MergeRefused
from mastersync.domain.matching.records import MergeStatus
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.merging import merge_records, split_record, unmerge_records
from mastersync.ports.store import Store
from tests.pipeline.matching.support import ACME, customer, feed, landscape

LANDSCAPE = landscape()


def two_records(store: Store) -> tuple[str, str]:
    """Two golden records of one company that matching did not join (no shared key)."""
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", vat="DE136695976", **ACME))
    ).master_ids
    (b,) = ingestor.ingest(
        "crm",
        "customer",
        feed(customer("C1", "Acme Berlin", vat="ATU13585627", segment="retail", country="AT")),
    ).master_ids
    assert a != b
    return a, b


def state(store: Store, master: str) -> tuple[object, ...]:
    with store.unit_of_work(write=False) as uow:
        g = uow.golden(master)
        assert g is not None
        members = [(c.system, c.key) for c in uow.members(master)]
        keys = [(n, v) for _, n, v, _ in uow.natural_keys_of([master])]
        return g.attributes, g.provenance, g.merged_into, members, keys


def test_merge_then_unmerge(store: Store) -> None:
    a, b = two_records(store)
    before_a, before_b = state(store, a), state(store, b)
    merge = merge_records(store, LANDSCAPE, a, b, actor="alice", reason="same company")
    attributes, _, merged_into, members, keys = state(store, a)
    assert merged_into is None
    assert members == [("crm", "C1"), ("erp", "E1")]
    # erp wins the name by priority; crm's owned segment joins.
    assert attributes["name"] == "Acme GmbH"  # type: ignore[index]
    assert attributes["segment"] == "retail"  # type: ignore[index]
    assert keys == [("tax_id", "ATU13585627"), ("tax_id", "DE136695976")]
    assert state(store, b)[2:] == (a, [], [])
    with store.unit_of_work(write=False) as uow:
        assert [e.kind for e in uow.events(a)] == ["created", "merged"]
        (loser_event,) = uow.events(b)[-1:]
        assert loser_event.kind == "merged"
        assert loser_event.changes == {"_merged_into": {"before": None, "after": a}}
        assert loser_event.source == {"survivor": a, "loser": b, "merge": str(merge.id)}
        assert loser_event.causation_id == f"merge:{merge.id}"
        # Listings skip the merged record; delivery sees it as merged away.
        assert [g.master_id for g in uow.list_golden("customer")] == [a]
        assert uow.golden_states([b])[b][1]["_merged_into"] == a
        assert [m.loser_id for m in uow.merges_of(a)] == [b]
        # The loser left the candidate index.
        found, _ = uow.match_candidates("customer", ["email:info@acme.de"], 1000)
        assert found == {"email:info@acme.de": [a]}
        assert [e.stage for e in uow.lineage(master_id=b)][-1] == "merge"

    # A source record of the loser now updates the survivor.
    Ingestor(store, LANDSCAPE).ingest(
        "crm",
        "customer",
        feed(
            customer("C1", "Acme Berlin", v=2, vat="ATU13585627", segment="wholesale", country="AT")
        ),
    )
    assert state(store, a)[0]["segment"] == "wholesale"  # type: ignore[index]

    undone = unmerge_records(store, LANDSCAPE, merge.id or 0, actor="bob")
    assert undone.status is MergeStatus.UNMERGED
    assert state(store, a) == before_a
    after_b = state(store, b)
    assert after_b[0]["segment"] == "wholesale"  # type: ignore[index]
    assert after_b[2:] == before_b[2:]
    with store.unit_of_work(write=False) as uow:
        assert [e.kind for e in uow.events(a)][-1] == "unmerged"
        assert uow.events(b)[-1].changes["_merged_into"] == {"before": a, "after": None}
        assert "_merged_into" not in uow.golden_states([b])[b][1]
    with pytest.raises(MergeRefused, match=f"merge {merge.id} was undone already"):
        unmerge_records(store, LANDSCAPE, merge.id or 0, actor="bob")


def test_refusals_name_the_records(store: Store) -> None:
    a, b = two_records(store)
    with pytest.raises(MergeRefused, match="no golden record cus_nope"):
        merge_records(store, LANDSCAPE, a, "cus_nope", actor="alice")
    merge_records(store, LANDSCAPE, a, b, actor="alice")
    with pytest.raises(MergeRefused, match=f"loser {b} was merged into {a} already"):
        merge_records(store, LANDSCAPE, a, b, actor="alice")
    with pytest.raises(MergeRefused, match="no merge 999"):
        unmerge_records(store, LANDSCAPE, 999, actor="alice")


def test_a_wrong_link_is_split_off(store: Store) -> None:
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", vat="DE136695976", **ACME))
    ).master_ids
    before = state(store, a)
    # Linked by matching (same everything but the tax id, which only crm sends here).
    report = ingestor.ingest(
        "crm", "customer", feed(customer("C1", "Acme", vat="ATU13585627", segment="x", **ACME))
    )
    assert report.master_ids == [a]
    # erp's tax id wins the golden record, so only it is a natural key.
    assert state(store, a)[4] == [("tax_id", "DE136695976")]
    new = split_record(store, LANDSCAPE, "customer", "crm", "C1", actor="alice")
    assert state(store, a) == before
    attributes, _, merged_into, members, keys = state(store, new)
    assert (attributes["name"], merged_into) == ("Acme", None)  # type: ignore[index]
    assert (members, keys) == ([("crm", "C1")], [("tax_id", "ATU13585627")])
    with store.unit_of_work(write=False) as uow:
        assert [e.kind for e in uow.events(a)][-1] == "split"
        assert uow.events(new)[0].source["split_from"] == a
    with pytest.raises(MergeRefused, match="is the only source record of"):
        split_record(store, LANDSCAPE, "customer", "crm", "C1", actor="alice")


def test_an_unmerge_is_remembered_as_the_pair_differing(store: Store) -> None:
    """Review: an unmerge left the pair's decision linked, so the next `dedupe --merge`
    merged the two again; it now records the steward's word that they differ."""
    from mastersync.domain.matching.records import DecisionStatus
    from mastersync.pipeline.matching.dedupe import dedupe
    from mastersync.pipeline.matching.review import open_reviews

    off = Ingestor(store, landscape(matching=False))
    (a,) = off.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    (b,) = off.ingest("crm", "customer", feed(customer("C1", "Acme GmbH", **ACME))).master_ids
    (merge,) = dedupe(store, LANDSCAPE, "customer", merge=True).merges
    unmerge_records(store, LANDSCAPE, merge.id or 0, actor="alice")
    with store.unit_of_work(write=False) as uow:
        (decision,) = uow.decisions_between("customer", [(a, b)]).values()
    assert (decision.status, decision.decided_by, decision.note) == (
        DecisionStatus.REJECTED,
        "alice",
        "unmerged",
    )
    # Its score is kept, for `review show`.
    assert decision.probability > 0.99
    again = dedupe(store, LANDSCAPE, "customer", merge=True)
    # The rejected pair is taken out of the links: no cluster left to merge.
    assert (again.merges, again.clusters, again.held_back) == ([], [], [])
    assert open_reviews(store) == []


def test_an_unmerge_of_a_merge_no_matching_scored_is_remembered(store: Store) -> None:
    """`mastersync merge` of a pair matching never scored, undone: a rejection all the same."""
    from mastersync.domain.matching.records import DecisionStatus

    c, d = two_records(store)
    manual = merge_records(store, LANDSCAPE, c, d, actor="bob")
    unmerge_records(store, LANDSCAPE, manual.id or 0, actor="bob")
    with store.unit_of_work(write=False) as uow:
        (decision,) = uow.decisions_between("customer", [(c, d)]).values()
    assert (decision.status, decision.decided_by, decision.origin) == (
        DecisionStatus.REJECTED,
        "bob",
        "unmerge",
    )
