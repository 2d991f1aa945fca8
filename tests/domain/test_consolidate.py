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
