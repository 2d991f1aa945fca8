"""Batch dedupe of a backlog, steward review, and explanations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mastersync.domain.matching import default_config, render
from mastersync.domain.matching.records import DecisionStatus, MatchDecision
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.dedupe import dedupe
from mastersync.pipeline.matching.merging import merge_records
from mastersync.pipeline.matching.review import (
    ReviewError,
    accept,
    explain,
    open_reviews,
    reject,
)
from mastersync.ports.matching import MatchChanges
from mastersync.ports.store import Store
from tests.pipeline.matching.support import ACME, backlog, customer, feed, landscape

LANDSCAPE = landscape()


def load_backlog(store: Store) -> tuple[dict[str, str], set[frozenset[str]]]:
    """A backlog loaded while matching was off (as before this feature): duplicates in it."""
    records, pairs = backlog(300, 60)
    Ingestor(store, landscape(matching=False)).ingest("erp", "customer", feed(*records))
    with store.unit_of_work(write=False) as uow:
        keys = {r["id"]: uow.find_master("customer", "erp", r["id"]) or "" for r in records}
    return keys, pairs


def test_dedupe_fits_on_the_backlog_and_finds_the_duplicates(store: Store) -> None:
    keys, pairs = load_backlog(store)
    stages: set[str] = set()
    run = dedupe(store, LANDSCAPE, "customer", progress=lambda s, d, t: stages.add(s))
    assert stages == {"prepare", "compare", "estimate", "score"}
    assert run.report.records == 360
    assert run.model == "fitted now"
    found = {frozenset(c) for c in run.clusters}
    truth = {frozenset(keys[k] for k in pair) for pair in pairs}
    assert found == truth
    with store.unit_of_work(write=False) as uow:
        model = uow.match_model("customer")
    assert model is not None
    assert model[0]["prior"] > 0
    # Ingest now scores with the fitted model.
    (original,) = [k for k in keys if k == "E0"]
    result, used = explain(store, LANDSCAPE, keys[original], f"erp:{original}")
    assert used.startswith("fitted at ")
    assert result.decision.value == "link"

    merged = dedupe(store, LANDSCAPE, "customer", merge=True, actor="alice")
    assert len(merged.merges) == len(truth)
    with store.unit_of_work(write=False) as uow:
        assert len(uow.list_golden("customer", limit=1000)) == 300
    # Nothing left to merge.
    assert dedupe(store, LANDSCAPE, "customer").clusters == []


def test_a_small_backlog_keeps_the_weights_it_has(store: Store) -> None:
    records, pairs = backlog(40, 5)
    Ingestor(store, landscape(matching=False)).ingest("erp", "customer", feed(*records))
    run = dedupe(store, LANDSCAPE, "customer")
    assert run.model.startswith("starting; not refitted: only ")
    assert "fewer than em.min_pairs (100)" in run.model
    assert len(run.clusters) == len(pairs)
    with store.unit_of_work(write=False) as uow:
        assert uow.match_model("customer") is None


def test_review_is_remembered(store: Store) -> None:
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    other = {**ACME, "email": "sales@acme-berlin.de", "phone": "+49 30 7654321"}
    (b,) = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", **other))).master_ids
    (entry,) = open_reviews(store)
    assert {entry.left_id, entry.right_id} == {a, b}
    rejected = reject(store, entry.id or 0, actor="alice", note="two branches")
    assert rejected.status is DecisionStatus.REJECTED
    assert open_reviews(store) == []
    with pytest.raises(ReviewError, match="is rejected already by alice"):
        accept(store, LANDSCAPE, entry.id or 0, actor="bob")
    # A batch run scores the pair again, and leaves the steward's word alone.
    run = dedupe(store, LANDSCAPE, "customer")
    assert run.new_reviews == 0
    assert open_reviews(store) == []


def test_accepting_a_review_merges_into_the_older_record(store: Store) -> None:
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    other = {**ACME, "email": "sales@acme-berlin.de", "phone": "+49 30 7654321"}
    (b,) = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", **other))).master_ids
    (entry,) = open_reviews(store)
    merge = accept(store, LANDSCAPE, entry.id or 0, actor="bob", note="same company")
    assert (merge.survivor_id, merge.loser_id) == (a, b)
    with store.unit_of_work(write=False) as uow:
        settled = uow.match_decision(entry.id or 0)
        assert settled is not None
        assert (settled.status, settled.decided_by) == (DecisionStatus.ACCEPTED, "bob")
        assert sorted(c.key for c in uow.members(a)) == ["C1", "E1"]


def test_explain_names_what_it_cannot_compare(store: Store) -> None:
    (a,) = (
        Ingestor(store, LANDSCAPE)
        .ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME)))
        .master_ids
    )
    result, model = explain(store, LANDSCAPE, a, "erp:E1")
    assert model == "starting"
    assert all(c.weight >= 0 for c in result.comparisons)
    from mastersync.pipeline.queries import NotFound

    with pytest.raises(NotFound, match="no source record erp:nope in customer"):
        explain(store, LANDSCAPE, a, "erp:nope", "customer")
    with pytest.raises(NotFound, match="neither a master id"):
        explain(store, LANDSCAPE, a, "nope")


def test_a_cluster_holding_a_rejected_pair_is_not_merged(store: Store) -> None:
    off = Ingestor(store, landscape(matching=False))
    (a,) = off.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    (b,) = off.ingest("crm", "customer", feed(customer("C1", "ACME", **ACME))).master_ids
    (c,) = off.ingest("crm", "customer", feed(customer("C2", "Acme", **ACME))).master_ids
    with store.unit_of_work() as uow:
        explanation = {"comparisons": []}
        decision = MatchDecision(
            "customer", a, b, 0.0, 0.5, "review", DecisionStatus.REJECTED, "test",
            explanation, "2026-11-27T00:00:00Z", decided_by="alice",
        )  # fmt: skip
        uow.write_matching(MatchChanges(decisions=[decision]))
        uow.commit()
    run = dedupe(store, LANDSCAPE, "customer", merge=True)
    # a-b is rejected, but a-c and b-c link: the cluster holds the rejected pair.
    assert [sorted(x) for x in run.held_back] == [sorted([a, b, c])]
    assert run.merges == []


def test_explain_says_whether_blocking_lets_ingest_compare_the_pair(store: Store) -> None:
    ingestor = Ingestor(store, LANDSCAPE)
    (acme,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    # Four companies at Acme's address: each shares only the street-and-postcode key with it.
    names = ["Zeppelin Bau", "Quarz Logistik", "Wiesel Druck", "Ober Technik"]
    address = {"street": ACME["street"], "postcode": ACME["postcode"]}
    others = [
        ingestor.ingest("erp", "customer", feed(customer(f"E{i}", n, **address))).master_ids[0]
        for i, n in enumerate(names, start=2)
    ]
    capped = landscape({**default_config("customer").model_dump(), "max_candidates": 2})
    result, _ = explain(store, capped, "erp:E1", acme)
    assert result.blocking is not None
    assert result.blocking["compared"] is True
    assert result.blocking["rank"] == 1
    assert "within max_candidates (2), compared" in result.blocking["why"]
    assert "blocking:" in render(result)
    # Newest first among equals: the oldest neighbour ranks last, past the cap.
    result, _ = explain(store, capped, "erp:E1", others[0])
    assert result.blocking is not None
    assert result.blocking["shared_keys"] == ["street_postcode"]
    assert (result.blocking["compared"], result.blocking["rank"]) == (False, 5)
    assert result.blocking["candidates"] == 5
    assert "over max_candidates (2), not compared" in result.blocking["why"]
    assert result.to_dict()["blocking"] == result.blocking
    # A master id on the left is the candidate, the source record the one being matched.
    result, _ = explain(store, capped, others[-1], "erp:E1")
    assert result.blocking is not None and result.blocking["compared"] is True
    # Under the default cap every candidate is compared.
    result, _ = explain(store, LANDSCAPE, "erp:E1", others[0])
    assert result.blocking is not None and result.blocking["compared"] is True
    # A block over max_block_size is skipped whatever the ranking.
    small = landscape({**default_config("customer").model_dump(), "max_block_size": 2})
    result, _ = explain(store, small, "erp:E1", others[0])
    assert result.blocking is not None and result.blocking["compared"] is False
    assert "more than max_block_size (2) records: skipped" in result.blocking["why"]


def test_explain_names_pairs_blocking_never_brings_together(store: Store) -> None:
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    far = {"city": "Hamburg", "postcode": "20095", "street": "Ringstraße 1"}
    (b,) = ingestor.ingest("erp", "customer", feed(customer("E2", "Zenit KG", **far))).master_ids
    result, _ = explain(store, LANDSCAPE, a, b)
    assert result.blocking == {
        "shared_keys": [],
        "compared": False,
        "why": "they share no blocking key: ingest never compares them",
    }


# Exact comparisons blocked on email and phone only: a record with just an email and one with
# just a phone are linked only through a third record that has both.
THROUGH_A_THIRD = {
    "comparisons": [
        {"name": "name", "fields": ["name"], "normalisers": ["text"], "comparator": "exact"},
        {"name": "email", "fields": ["email"], "normalisers": ["email"], "comparator": "exact"},
        {"name": "phone", "fields": ["phone"], "normalisers": ["digits"], "comparator": "exact"},
        {"name": "country", "fields": ["country"], "normalisers": ["alnum"], "comparator": "exact"},
    ],
    "blocking": [
        {"name": "email", "parts": [{"field": "email", "normalisers": ["email"]}]},
        {"name": "phone", "parts": [{"field": "phone", "normalisers": ["digits"]}]},
    ],
    "thresholds": {"link": 1.0, "review": 0.5, "scale": "weight"},
    "max_missing": 0.9,
}


def _rejection(a: str, b: str, by: str = "alice") -> MatchDecision:
    return MatchDecision(
        "customer", a, b, 0.0, 0.5, "review", DecisionStatus.REJECTED, "test",
        {"comparisons": []}, "2026-11-27T00:00:00Z", "2026-11-27T00:00:00Z", by,
    )  # fmt: skip


def test_a_rejection_between_records_linked_only_through_a_third_holds_the_cluster_back(
    store: Store,
) -> None:
    """Review: only pairs this run scored were checked for rejections, so a rejected pair
    that blocking never compared (linked through a third record) was merged, and the
    merge's `linked` decision overwrote the steward's rejection."""
    off = Ingestor(store, landscape(matching=False))
    (a,) = off.ingest("erp", "customer", feed(customer("E1", "Acme", email="x@acme.de"))).master_ids
    both = {"email": "x@acme.de", "phone": "030 111"}
    (b,) = off.ingest("crm", "customer", feed(customer("C1", "Acme", **both))).master_ids
    (c,) = off.ingest("erp", "customer", feed(customer("E2", "Acme", phone="030 111"))).master_ids
    with store.unit_of_work() as uow:
        uow.write_matching(MatchChanges(decisions=[_rejection(a, c)]))
        uow.commit()
    run = dedupe(store, landscape(THROUGH_A_THIRD), "customer", merge=True)
    assert [sorted(x) for x in run.clusters] == [sorted([a, b, c])]
    assert [sorted(x) for x in run.held_back] == [sorted([a, b, c])]
    assert run.merges == []
    with store.unit_of_work(write=False) as uow:
        (kept,) = uow.decisions_between("customer", [(a, c)]).values()
        assert (kept.status, kept.decided_by) == (DecisionStatus.REJECTED, "alice")
        assert all(uow.golden(m).merged_into is None for m in (a, b, c))  # type: ignore[union-attr]


def test_an_automatic_decision_never_replaces_a_stewards(store: Store) -> None:
    """Review: a pair scored again took the new score's status whatever a steward had said."""
    a, b = "cus_a", "cus_b"
    linked = replace(_rejection(a, b), status=DecisionStatus.LINKED, decided_by="dedupe")
    with store.unit_of_work() as uow:
        uow.write_matching(MatchChanges(decisions=[_rejection(a, b)]))
        uow.write_matching(MatchChanges(decisions=[linked]))
        (kept,) = uow.decisions_between("customer", [(a, b)]).values()
        assert (kept.status, kept.decided_by) == (DecisionStatus.REJECTED, "alice")
        # Another steward's word does replace it (an accept, or an unmerge's rejection).
        accepted = replace(_rejection(a, b, "bob"), status=DecisionStatus.ACCEPTED)
        uow.write_matching(MatchChanges(decisions=[accepted]))
        (kept,) = uow.decisions_between("customer", [(a, b)]).values()
        assert (kept.status, kept.decided_by) == (DecisionStatus.ACCEPTED, "bob")
        # An open entry scored again takes the new score.
        c = "cus_c"
        opened = replace(_rejection(a, c), status=DecisionStatus.OPEN, decided_by=None)
        uow.write_matching(MatchChanges(decisions=[opened]))
        uow.write_matching(MatchChanges(decisions=[replace(opened, probability=0.7)]))
        (kept,) = uow.decisions_between("customer", [(a, c)]).values()
        assert (kept.status, kept.probability) == (DecisionStatus.OPEN, 0.7)


def test_reviews_opened_while_merging_name_the_records_that_remain(store: Store) -> None:
    """Review: `dedupe --merge` opened review entries naming a record it merged away in the
    same run; accepting one then failed for ever ("was merged into ... already")."""
    off = Ingestor(store, landscape(matching=False))
    full = {"email": "x@acme.de", "phone": "030 111", "country": "DE"}
    (a,) = off.ingest("erp", "customer", feed(customer("E1", "Acme", **full))).master_ids
    (b,) = off.ingest("crm", "customer", feed(customer("C1", "Acme", **full))).master_ids
    (c,) = off.ingest("erp", "customer", feed(customer("E2", "Acme", phone="030 111"))).master_ids
    matching = {**THROUGH_A_THIRD, "thresholds": {"link": 5.0, "review": 1.0, "scale": "weight"}}
    on = landscape(matching)
    run = dedupe(store, on, "customer", merge=True)
    assert [(m.survivor_id, m.loser_id) for m in run.merges] == [(a, b)]
    # (a, c) and (b, c) both scored review; b is a now: one entry, on a and c.
    (entry,) = open_reviews(store, "customer")
    assert (entry.left_id, entry.right_id) == tuple(sorted([a, c]))
    assert run.new_reviews == 1
    merge = accept(store, on, entry.id or 0, actor="alice")
    assert (merge.survivor_id, merge.loser_id) == (a, c)


def test_accepting_an_entry_whose_record_was_merged_since_merges_its_survivor(
    store: Store,
) -> None:
    """Review: an entry naming a record merged away after it was opened could never be
    accepted; it now stands for the record it was merged into."""
    ingestor = Ingestor(store, LANDSCAPE)
    (a,) = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))).master_ids
    other = {**ACME, "email": "sales@acme-berlin.de", "phone": "+49 30 7654321"}
    (b,) = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", **other))).master_ids
    (entry,) = open_reviews(store)
    far = {"country": "AT", "postcode": "1010", "city": "Wien"}
    (z,) = ingestor.ingest("crm", "customer", feed(customer("C9", "Zenit", **far))).master_ids
    merge_records(store, LANDSCAPE, z, b, actor="bob")
    merge = accept(store, LANDSCAPE, entry.id or 0, actor="alice")
    assert (merge.survivor_id, merge.loser_id) == (a, z)
    with store.unit_of_work(write=False) as uow:
        assert sorted(c.key for c in uow.members(a)) == ["C1", "C9", "E1"]
    # Both named records in one now: nothing left to merge.
    (b2,) = ingestor.ingest("crm", "customer", feed(customer("C2", "Acme", **other))).master_ids
    (second,) = open_reviews(store)
    merge_records(store, LANDSCAPE, a, b2, actor="bob")
    with pytest.raises(ReviewError, match=f"were merged into one record \\({a}\\) already"):
        accept(store, LANDSCAPE, second.id or 0, actor="alice")


def test_no_candidate_pairs_keep_the_weights_and_rebuild_the_index(store: Store) -> None:
    """Review: a backlog in which no two records share a blocking key (one `--merge` made
    clean) failed dedupe outright instead of keeping the weights it has."""
    off = Ingestor(store, landscape(matching=False))
    off.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", vat="DE136695976", **ACME)))
    off.ingest("erp", "customer", feed(customer("E2", "Zeta Ltd", country="GB")))
    run = dedupe(store, LANDSCAPE, "customer")
    assert run.model.startswith("starting; not refitted: no candidate pairs")
    assert (run.report.pairs_compared, run.clusters, run.new_reviews) == (0, [], 0)
    with store.unit_of_work(write=False) as uow:
        assert uow.match_model("customer") is None
        # Indexed for ingest all the same (they were loaded while matching was off).
        found, _ = uow.match_candidates("customer", ["tax_id:DE136695976"], 1000)
        assert len(found["tax_id:DE136695976"]) == 1
    # Merged clean, run again.
    off.ingest("crm", "customer", feed(customer("C1", "Acme GmbH", **ACME)))
    assert len(dedupe(store, LANDSCAPE, "customer", merge=True).merges) == 1
    assert dedupe(store, LANDSCAPE, "customer").clusters == []
