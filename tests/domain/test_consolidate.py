"""Merge and unmerge of golden records, as pure functions: properties over random records."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.consolidate import (
    Consolidation,
    MergeContext,
    MergeRefused,
    plan_merge,
    plan_split,
    plan_unmerge,
    recompute,
)
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from tests.pipeline.matching.support import landscape, landscape_doc

POLICY = landscape().policies["customer"]
CTX = MergeContext("2026-11-27T12:00:00.000000Z", "t" * 32, lambda p: f"{p}_x", "test")

values = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["Acme", "ACME GmbH", "Acme Berlin"]),
        "email": st.sampled_from(["a@acme.de", "info@acme.de"]),
        "segment": st.sampled_from(["retail", "wholesale"]),
        "country": st.sampled_from(["DE", "AT"]),
    },
)


@st.composite
def contributions(draw: Any, master: str, count: int) -> list[Contribution]:
    out = []
    for i in range(count):
        system = draw(st.sampled_from(["erp", "crm"]))
        ts = draw(st.none() | st.sampled_from(["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]))
        out.append(
            Contribution(
                "customer",
                system,
                f"{master}-{i}",
                master,
                draw(st.integers(1, 3)),
                ts,
                draw(values),
                f"d{i}",
                f"2026-11-0{i + 1}T00:00:00.000000Z",
            )
        )
    return out


def golden(master: str, members: list[Contribution]) -> GoldenRecord:
    empty = GoldenRecord(master, "customer", 1, {}, {}, "c", "c")
    attributes, provenance, _ = recompute(empty, members, POLICY)
    return replace(empty, attributes=attributes, provenance=provenance)


class World:
    """Golden records and their members, changed only by applying consolidations."""

    def __init__(self, groups: dict[str, list[Contribution]]):
        self.members = {c.ref: c for cs in groups.values() for c in cs}
        self.golden = {m: golden(m, cs) for m, cs in groups.items()}
        self.keys: dict[tuple[str, str], str] = {}

    def of(self, master: str) -> list[Contribution]:
        return sorted(
            (c for c in self.members.values() if c.master_id == master), key=lambda c: c.ref
        )

    def apply(self, plan: Consolidation) -> None:
        for g in plan.golden:
            self.golden[g.master_id] = g
        for c in plan.contributions:
            self.members[c.ref] = c
        for k in plan.keys:
            if k.added:
                self.keys[(k.name, k.value)] = k.master_id
            elif self.keys.get((k.name, k.value)) == k.master_id:
                del self.keys[(k.name, k.value)]

    def merge(self, survivor: str, loser: str) -> Consolidation:
        keys = sorted(kv for kv, m in self.keys.items() if m == loser)
        plan = plan_merge(
            self.golden[survivor],
            self.golden[loser],
            self.of(survivor),
            self.of(loser),
            keys,
            POLICY,
            CTX,
        )
        self.apply(plan)
        return plan

    def unmerge(self, snapshot: dict[str, Any], survivor: str, loser: str) -> None:
        keys = sorted(kv for kv, m in self.keys.items() if m == survivor)
        self.apply(
            plan_unmerge(
                snapshot,
                self.golden[survivor],
                self.golden[loser],
                self.of(survivor),
                keys,
                POLICY,
                CTX,
            )
        )

    def state(self, master: str) -> tuple[Any, ...]:
        g = self.golden[master]
        refs = [c.ref for c in self.of(master)]
        keys = sorted(kv for kv, m in self.keys.items() if m == master)
        return (g.attributes, g.provenance, g.merged_into, refs, keys)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 3), st.integers(1, 3))
def test_merge_then_unmerge_returns_the_prior_state(data: Any, n_a: int, n_b: int) -> None:
    world = World(
        {
            "cus_a": data.draw(contributions("cus_a", n_a)),
            "cus_b": data.draw(contributions("cus_b", n_b)),
        }
    )
    world.keys = {("tax_id", "DE1"): "cus_a", ("tax_id", "DE2"): "cus_b"}
    before = (world.state("cus_a"), world.state("cus_b"))
    versions = (world.golden["cus_a"].version, world.golden["cus_b"].version)
    plan = world.merge("cus_a", "cus_b")
    assert world.golden["cus_b"].merged_into == "cus_a"
    assert world.of("cus_b") == []
    assert world.keys == {("tax_id", "DE1"): "cus_a", ("tax_id", "DE2"): "cus_a"}
    assert [e.kind for e in plan.events] == ["merged", "merged"]
    world.unmerge(plan.snapshot, "cus_a", "cus_b")
    assert (world.state("cus_a"), world.state("cus_b")) == before
    # Versions only ever grow: consumers see the undo as two new versions.
    assert (world.golden["cus_a"].version, world.golden["cus_b"].version) == (
        versions[0] + 2,
        versions[1] + 2,
    )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_survivorship_after_merges_is_independent_of_merge_order(data: Any) -> None:
    groups = {m: data.draw(contributions(m, data.draw(st.integers(1, 2)))) for m in "abc"}
    first, second = World(groups), World(groups)
    first.merge("a", "b")
    first.merge("a", "c")
    second.merge("a", "c")
    second.merge("a", "b")
    assert first.golden["a"].attributes == second.golden["a"].attributes
    assert first.golden["a"].provenance == second.golden["a"].provenance
    # Merging into another survivor gives the same values too: only the member set counts.
    third = World(groups)
    third.merge("c", "b")
    third.merge("c", "a")
    assert third.golden["c"].attributes == first.golden["a"].attributes


def test_merges_that_cannot_be_done_are_refused() -> None:
    one = Contribution("customer", "erp", "1", "cus_a", 1, None, {"name": "A"}, "d", "t")
    world = World({"cus_a": [one], "cus_b": [replace(one, key="2", master_id="cus_b")]})
    with pytest.raises(MergeRefused, match="cannot merge cus_a into itself"):
        world.merge("cus_a", "cus_a")
    plan = world.merge("cus_a", "cus_b")
    with pytest.raises(MergeRefused, match="loser cus_b was merged into cus_a already"):
        world.merge("cus_a", "cus_b")
    with pytest.raises(MergeRefused, match="cus_a is not merged into cus_b"):
        world.unmerge(plan.snapshot, "cus_b", "cus_a")


def test_a_split_needs_a_member_and_another_to_keep() -> None:
    one = Contribution("customer", "erp", "1", "cus_a", 1, None, {"name": "A"}, "d", "t")
    world = World({"cus_a": [one]})
    with pytest.raises(MergeRefused, match="crm:9 is not a source record of cus_a"):
        plan_split(world.golden["cus_a"], world.of("cus_a"), ("crm", "9"), [], POLICY, CTX)
    with pytest.raises(MergeRefused, match="erp:1 is the only source record of cus_a"):
        plan_split(world.golden["cus_a"], world.of("cus_a"), ("erp", "1"), [], POLICY, CTX)


def test_a_split_takes_along_the_key_only_its_source_record_sent() -> None:
    """The tax id only the CRM's record sends (the ERP owns the field and has none) is the
    golden record's key; split off, the CRM's record takes it to its new record."""
    doc = landscape_doc()
    doc["domains"]["customer"]["ownership"]["tax_id"] = ["erp"]
    policy = compile_landscape(Landscape.model_validate(doc)).policies["customer"]
    erp = Contribution(
        "customer", "erp", "E1", "cus_a", 1, None, {"name": "Acme"}, "d1", "2026-11-01"
    )
    crm = replace(erp, system="crm", key="C1", values={"name": "Acme", "tax_id": "ATU13585627"})
    empty = GoldenRecord("cus_a", "customer", 1, {}, {}, "c", "c")
    attributes, provenance, _ = recompute(empty, [erp, crm], policy)
    assert "tax_id" not in attributes
    record = replace(empty, attributes=attributes, provenance=provenance)
    plan = plan_split(record, [erp, crm], ("crm", "C1"), [("tax_id", "ATU13585627")], policy, CTX)
    new = plan.golden[1].master_id
    assert [(k.value, k.master_id, k.added) for k in plan.keys] == [
        ("ATU13585627", "cus_a", False),
        ("ATU13585627", new, True),
    ]


def test_a_split_off_owners_record_takes_its_key_from_a_record_that_only_sent_it() -> None:
    """Review: the CRM's and the ERP's records both send the tax id the ERP owns; split off,
    the ERP's record's golden value stayed with the CRM's record, which only sent it."""
    doc = landscape_doc()
    doc["domains"]["customer"]["ownership"]["tax_id"] = ["erp"]
    policy = compile_landscape(Landscape.model_validate(doc)).policies["customer"]
    vat = "ATU13585627"
    erp = Contribution(
        "customer", "erp", "E1", "cus_a", 1, None, {"name": "Acme", "tax_id": vat}, "d1", "x"
    )
    crm = replace(erp, system="crm", key="C1", values={"name": "Acme", "tax_id": vat})
    empty = GoldenRecord("cus_a", "customer", 1, {}, {}, "c", "c")
    attributes, provenance, _ = recompute(empty, [erp, crm], policy)
    record = replace(empty, attributes=attributes, provenance=provenance)
    plan = plan_split(record, [erp, crm], ("erp", "E1"), [("tax_id", vat)], policy, CTX)
    new = plan.golden[1].master_id
    assert "tax_id" not in plan.golden[0].attributes
    assert [(k.master_id, k.added) for k in plan.keys] == [("cus_a", False), (new, True)]


def _limit(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def test_a_merge_takes_back_a_guarded_change_of_the_survivor() -> None:
    """Review: the loser's credit limit won on the survivor (the ERP's over the CRM's) with
    no confirmation; it is held, as ingest and remerge hold it."""
    crm = Contribution(
        "customer",
        "crm",
        "C1",
        "cus_a",
        1,
        None,
        {"name": "A", "credit_limit": _limit("1000")},
        "d1",
        "t",
    )
    erp = replace(
        crm,
        system="erp",
        key="E1",
        master_id="cus_b",
        digest="d2",
        values={"name": "B", "credit_limit": _limit("900000")},
    )
    world = World({"cus_a": [crm], "cus_b": [erp]})
    plan = world.merge("cus_a", "cus_b")
    survivor = world.golden["cus_a"]
    assert survivor.attributes["credit_limit"] == _limit("1000")
    assert survivor.provenance["credit_limit"]["system"] == "crm"
    assert survivor.attributes["name"] == "B"  # the rest is recomputed as ever
    assert "credit_limit" not in plan.events[0].changes
    [held] = plan.held
    assert (held.master_id, held.field, held.proposed, held.current) == (
        "cus_a",
        "credit_limit",
        _limit("900000"),
        _limit("1000"),
    )
    assert (held.origin["system"], held.origin["key"]) == ("erp", "E1")


def test_a_merge_holds_a_guarded_value_the_survivor_did_not_have() -> None:
    one = Contribution("customer", "crm", "C1", "cus_a", 1, None, {"name": "A"}, "d1", "t")
    erp = replace(
        one,
        system="erp",
        key="E1",
        master_id="cus_b",
        digest="d2",
        values={"name": "B", "credit_limit": _limit("5000")},
    )
    world = World({"cus_a": [one], "cus_b": [erp]})
    plan = world.merge("cus_a", "cus_b")
    assert "credit_limit" not in world.golden["cus_a"].attributes
    assert [(h.field, h.proposed, h.current) for h in plan.held] == [
        ("credit_limit", _limit("5000"), None)
    ]


def test_a_split_takes_back_a_guarded_change_of_the_kept_record() -> None:
    erp = Contribution(
        "customer",
        "erp",
        "E1",
        "cus_a",
        1,
        None,
        {"name": "A", "credit_limit": _limit("1000")},
        "d1",
        "t",
    )
    crm = replace(
        erp,
        system="crm",
        key="C1",
        digest="d2",
        values={"name": "A", "credit_limit": _limit("2000")},
    )
    record = golden("cus_a", [erp, crm])
    assert record.attributes["credit_limit"] == _limit("1000")
    plan = plan_split(record, [erp, crm], ("erp", "E1"), [], POLICY, CTX)
    kept, created = plan.golden
    assert kept.attributes["credit_limit"] == _limit("1000")
    assert created.attributes["credit_limit"] == _limit("1000")  # a new record: not held
    assert [(h.master_id, h.proposed, h.origin["key"]) for h in plan.held] == [
        ("cus_a", _limit("2000"), "C1")
    ]
    # No source of the kept record has a limit: it keeps its value, and the hold names no
    # source (the pipeline raises no pending change: there is no one's value to confirm).
    only = plan_split(
        record, [erp, replace(crm, values={"name": "A"})], ("erp", "E1"), [], POLICY, CTX
    )
    assert only.golden[0].attributes["credit_limit"] == _limit("1000")
    assert [h.origin for h in only.held] == [{}]


def test_unmerge_gives_the_loser_its_keys_as_they_are_now() -> None:
    """Review: the loser's source record changed its VAT number while merged; unmerged, the
    loser got the old number's key (the merge's snapshot) and not its current one."""
    erp = Contribution(
        "customer",
        "erp",
        "E1",
        "cus_a",
        1,
        None,
        {"name": "A", "tax_id": "DE136695976"},
        "d1",
        "t",
    )
    crm = replace(
        erp,
        system="crm",
        key="C1",
        master_id="cus_b",
        digest="d2",
        values={"name": "B", "tax_id": "ATU13585627"},
    )
    world = World({"cus_a": [erp], "cus_b": [crm]})
    world.keys = {("tax_id", "DE136695976"): "cus_a", ("tax_id", "ATU13585627"): "cus_b"}
    plan = world.merge("cus_a", "cus_b")
    # The CRM's record says another number while merged (the survivor's value is the ERP's).
    changed = replace(
        crm, master_id="cus_a", version=2, values={"name": "B", "tax_id": "DE811569869"}
    )
    world.members[changed.ref] = changed
    survivor_keys = sorted(kv for kv, m in world.keys.items() if m == "cus_a")
    undo = plan_unmerge(
        plan.snapshot,
        world.golden["cus_a"],
        world.golden["cus_b"],
        world.of("cus_a"),
        survivor_keys,
        POLICY,
        CTX,
    )
    assert undo.golden[1].attributes["tax_id"] == "DE811569869"
    # The old number no longer identifies anybody; the new one is the loser's, if free.
    assert [(k.value, k.master_id, k.added) for k in undo.keys] == [("ATU13585627", "cus_a", False)]
    assert undo.wanted == {"cus_a": set(), "cus_b": {("tax_id", "DE811569869")}}


def test_unmerge_returns_a_key_the_loser_had_from_an_earlier_merge() -> None:
    # cus_c merged into cus_b, then cus_b into cus_a: cus_c's number is no value of cus_b's,
    # but it identifies cus_b (cus_c's successor) again once cus_b is unmerged.
    erp = Contribution(
        "customer",
        "erp",
        "E1",
        "cus_a",
        1,
        None,
        {"name": "A", "tax_id": "DE136695976"},
        "d1",
        "t",
    )
    crm = replace(
        erp,
        system="crm",
        key="C1",
        master_id="cus_b",
        digest="d2",
        values={"name": "B", "tax_id": "ATU13585627"},
    )
    world = World({"cus_a": [erp], "cus_b": [crm]})
    world.keys = {
        ("tax_id", "DE136695976"): "cus_a",
        ("tax_id", "ATU13585627"): "cus_b",
        ("tax_id", "DE811569869"): "cus_b",
    }
    before = (world.state("cus_a"), world.state("cus_b"))
    plan = world.merge("cus_a", "cus_b")
    world.unmerge(plan.snapshot, "cus_a", "cus_b")
    assert (world.state("cus_a"), world.state("cus_b")) == before


def test_unmerge_refuses_when_the_losers_source_records_were_split_off() -> None:
    """Review: the loser's only source record split off the survivor since the merge, unmerge
    revived the loser with no values and no source record."""
    erp = Contribution("customer", "erp", "E1", "cus_a", 1, None, {"name": "A"}, "d1", "t")
    crm = replace(erp, system="crm", key="C1", master_id="cus_b", digest="d2")
    world = World({"cus_a": [erp], "cus_b": [crm]})
    plan = world.merge("cus_a", "cus_b")
    world.apply(
        plan_split(world.golden["cus_a"], world.of("cus_a"), ("crm", "C1"), [], POLICY, CTX)
    )
    with pytest.raises(
        MergeRefused, match=r"cus_b has no source record left in cus_a .*crm:C1.*split off"
    ):
        world.unmerge(plan.snapshot, "cus_a", "cus_b")
