"""Incremental matching inside ingest: link, review or distinct, stored with explanations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mastersync.bootstrap import open_store
from mastersync.domain.matching import default_config
from mastersync.domain.matching.records import DecisionStatus
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.matching import DecisionFilter
from mastersync.ports.store import Store
from tests.pipeline.matching.support import ACME, backlog, customer, feed, landscape


def decisions(store: Store) -> list[tuple[str, str, str]]:
    with store.unit_of_work(write=False) as uow:
        found = uow.match_decisions(DecisionFilter(status=None))
    return sorted((d.status.value, d.left_id, d.right_id) for d in found)


def test_a_duplicate_from_another_system_joins_the_golden_record(store: Store) -> None:
    ingestor = Ingestor(store, landscape())
    first = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME)))
    (master,) = first.master_ids
    # No tax id, no xref: only matching can tell; the street is abbreviated.
    report = ingestor.ingest(
        "crm",
        "customer",
        feed(customer("C1", "ACME", segment="wholesale", **{**ACME, "street": "Hauptstr. 5"})),
    )
    assert report.master_ids == [master]
    with store.unit_of_work(write=False) as uow:
        golden = uow.golden(master)
        assert golden is not None
        # The erp owns the name by priority; crm's owned segment merges in as a second source.
        assert golden.attributes["name"] == "Acme GmbH"
        assert golden.attributes["segment"] == "wholesale"
        assert [(c.system, c.key) for c in uow.members(master)] == [("crm", "C1"), ("erp", "E1")]
        (decision,) = uow.match_decisions(DecisionFilter(status=DecisionStatus.LINKED))
        match = uow.lineage(master_id=master)[-1].detail["match"]
    assert {decision.left_id, decision.right_id} == {"crm:C1", master}
    assert decision.outcome == "link"
    assert decision.probability >= 0.99
    levels = {c["name"]: (c["level"], c["weight"]) for c in decision.explanation["comparisons"]}
    assert levels["street"] == ("exact", 4.0)  # "Hauptstr." and "Hauptstraße" normalise alike
    assert levels["tax_id"] == ("missing", 0.0)
    assert match["decision"] == "link"
    assert match["candidate"] == master
    assert match["model"] == "starting"


def test_a_possible_duplicate_gets_its_own_record_and_a_review_entry(store: Store) -> None:
    ingestor = Ingestor(store, landscape())
    (master,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    # Same name and place, but another phone and email: ask a steward.
    other = {**ACME, "email": "sales@acme-berlin.de", "phone": "+49 30 7654321"}
    report = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", **other)))
    (new,) = report.master_ids
    assert new != master
    assert decisions(store) == [("open", *sorted([master, new]))]
    with store.unit_of_work(write=False) as uow:
        (entry,) = uow.match_decisions(DecisionFilter())
    assert 0.8 <= entry.probability < 0.99
    assert entry.explanation["comparisons"][2]["level"] == "different"  # email


def test_a_different_customer_stays_distinct(store: Store) -> None:
    ingestor = Ingestor(store, landscape())
    (master,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    # Next door (same street and postcode: a candidate), but nothing else agrees.
    zenith = {**ACME, "email": "hello@zenith.de", "phone": "+49 30 999999"}
    report = ingestor.ingest("crm", "customer", feed(customer("C1", "Zenith Traders", **zenith)))
    (new,) = report.master_ids
    assert new != master
    assert decisions(store) == [("distinct", *sorted([master, new]))]


def test_a_record_with_most_fields_missing_never_auto_links(store: Store) -> None:
    # A generous link threshold: the score alone would link, sparsity must not.
    ingestor = Ingestor(store, landscape(_thresholds(link=0.6, review=0.5)))
    (master,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    report = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", postcode="10115")))
    (new,) = report.master_ids
    assert new != master
    with store.unit_of_work(write=False) as uow:
        (entry,) = uow.match_decisions(DecisionFilter())
    assert entry.outcome == "review"
    assert entry.probability >= 0.6
    assert "too sparse to auto-link" in entry.explanation["reason"]


def test_duplicates_within_one_chunk_meet(store: Store) -> None:
    ingestor = Ingestor(store, landscape())
    report = ingestor.ingest(
        "erp",
        "customer",
        feed(customer("E1", "Acme GmbH", **ACME), customer("E2", "ACME GmbH", **ACME)),
    )
    assert len(set(report.master_ids)) == 1
    assert Counter(s for s, _, _ in decisions(store)) == Counter({"linked": 1})


def test_the_candidate_index_follows_golden_records(store: Store) -> None:
    ingestor = Ingestor(store, landscape())
    (master,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    with store.unit_of_work(write=False) as uow:
        found, skipped = uow.match_candidates("customer", ["email:info@acme.de"], 1000)
    assert found == {"email:info@acme.de": [master]}
    assert skipped == 0
    ingestor.ingest(
        "erp",
        "customer",
        feed(customer("E1", "Acme GmbH", v=2, **{**ACME, "email": "new@acme.de"})),
    )
    with store.unit_of_work(write=False) as uow:
        old, _ = uow.match_candidates("customer", ["email:info@acme.de"], 1000)
        new, _ = uow.match_candidates("customer", ["email:new@acme.de"], 1000)
        capped, skipped = uow.match_candidates("customer", ["email:new@acme.de"], 0)
    assert old == {}
    assert new == {"email:new@acme.de": [master]}
    assert (capped, skipped) == ({}, 1)


def test_matching_can_be_turned_off(store: Store) -> None:
    ingestor = Ingestor(store, landscape(matching=False))
    ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME)))
    report = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme GmbH", **ACME)))
    assert decisions(store) == []
    with store.unit_of_work(write=False) as uow:
        assert len(uow.members(report.master_ids[0])) == 1


def _thresholds(link: float, review: float) -> dict[str, Any]:
    config = default_config("customer").model_dump()
    config["thresholds"] = {"link": link, "review": review}
    return config


def test_over_max_candidates_the_best_ranked_are_scored_and_the_cut_is_explained(
    store: Store,
) -> None:
    config = default_config("customer").model_dump()
    ingestor = Ingestor(store, landscape({**config, "max_candidates": 2}))
    first = ingestor.ingest("erp", "customer", feed(customer("E1", "Acme GmbH", **ACME)))
    (acme,) = first.master_ids
    # Four other companies in the same street and postcode: each shares a key with Acme.
    neighbours = [
        customer(f"E{i}", f"Nachbar {i} AG", street=ACME["street"], postcode="10115")
        for i in range(2, 6)
    ]
    ingestor.ingest("erp", "customer", feed(*neighbours))
    report = ingestor.ingest(
        "crm", "customer", feed(customer("C1", "ACME", **{**ACME, "street": "Hauptstr. 5"}))
    )
    # Acme shares email, phone, name and address keys: ranked first, scored, linked.
    assert report.master_ids == [acme]
    with store.unit_of_work(write=False) as uow:
        (decision,) = uow.match_decisions(DecisionFilter(status=DecisionStatus.LINKED))
        match = uow.lineage(master_id=acme)[-1].detail["match"]
    assert decision.explanation["candidates"] == match["cut"]
    cut = match["cut"]
    assert (cut["found"], cut["scored"], cut["max_candidates"], cut["cut"]) == (5, 2, 2, 3)
    assert cut["cut_at"]["shared_keys"] == 1
    assert match["candidates"] == 2


def test_under_max_candidates_every_candidate_is_scored_and_nothing_is_said(
    store: Store,
) -> None:
    ingestor = Ingestor(store, landscape())
    (acme,) = ingestor.ingest(
        "erp", "customer", feed(customer("E1", "Acme GmbH", **ACME))
    ).master_ids
    report = ingestor.ingest("crm", "customer", feed(customer("C1", "ACME", **ACME)))
    assert report.master_ids == [acme]
    with store.unit_of_work(write=False) as uow:
        (decision,) = uow.match_decisions(DecisionFilter(status=DecisionStatus.LINKED))
        match = uow.lineage(master_id=acme)[-1].detail["match"]
    assert "candidates" not in decision.explanation
    assert "cut" not in match
    assert match["candidates"] == 1


def _outcome(store: Store) -> tuple[list[list[str]], list[tuple[str, ...]], int]:
    """Clusters of source keys, link and review decisions by source key, distinct ones counted:
    comparable across stores."""
    with store.unit_of_work(write=False) as uow:
        goldens = uow.list_golden("customer", limit=10_000)
        members = {g.master_id: sorted(c.key for c in uow.members(g.master_id)) for g in goldens}
        found = uow.match_decisions(DecisionFilter(status=None, limit=10_000))
    name = {m: keys[0] for m, keys in members.items()}
    clusters = sorted(keys for keys in members.values())
    # The best of equally distinct candidates is the lowest master id: random across stores.
    kept = sorted(
        (d.status.value, *sorted([name.get(d.left_id, d.left_id), name.get(d.right_id, "")]))
        for d in found
        if d.status.value != "distinct"
    )
    return clusters, kept, sum(1 for d in found if d.status.value == "distinct")


def test_with_blocks_under_the_cap_ingest_decides_exactly_as_without_one(tmp_path: Path) -> None:
    records, pairs = backlog(120, 30)
    assert len(pairs) == 30
    outcomes = []
    for cap in (None, 100_000):
        config = {**default_config("customer").model_dump(), "max_candidates": cap or 50}
        store = open_store(f"sqlite:///{tmp_path / f'{cap}.db'}")
        store.upgrade()
        ingestor = Ingestor(store, landscape(config))
        for start in range(0, len(records), 40):  # several chunks: each meets the ones before
            ingestor.ingest("erp", "customer", feed(*records[start : start + 40]))
        outcomes.append(_outcome(store))
        store.close()
    assert outcomes[0] == outcomes[1]
    clusters, kept, _ = outcomes[0]
    assert sum(1 for c in clusters if len(c) == 2) == 30
    assert kept
