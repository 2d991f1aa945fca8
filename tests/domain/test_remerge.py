"""Remerge as a pure function: recomputing twice changes nothing the second time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.consolidate import MergeContext
from mastersync.domain.golden import Contribution, GoldenRecord
from mastersync.domain.remerge import plan_remerge
from mastersync.domain.validation import validate
from tests.domain.test_consolidate import POLICY, contributions

CTX = MergeContext("2026-11-27T12:00:00.000000Z", "t" * 32, lambda p: f"{p}_x", "remerge")

attributes = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["Acme", "Old name"]),
        "segment": st.sampled_from(["retail", "gone"]),
    },
)


@given(contributions("cus_a", 3), attributes)
@settings(max_examples=150, deadline=None)
def test_a_second_remerge_changes_nothing(
    members: list[Contribution], stale: dict[str, str]
) -> None:
    """Whatever the golden record held (an older rule's result), one remerge brings it to
    what its source records make it, and a second finds nothing to do."""
    golden = GoldenRecord("cus_a", "customer", 3, dict(stale), {}, "c", "c")
    first = plan_remerge(golden, members, POLICY, CTX)
    now = first.golden or golden
    second = plan_remerge(now, first.members, POLICY, CTX)
    assert second.event is None and second.golden is None
    assert second.renewed == []
    if first.event is not None:
        assert now.version == golden.version + 1
        assert {k for k, c in first.event.changes.items() if c["before"] != c["after"]} == set(
            first.event.changes
        )


def test_values_a_source_record_no_longer_passes_stay_as_they_were() -> None:
    kept = Contribution(
        "customer", "crm", "C1", "cus_a", 1, None, {"email": "not-an-email"}, "d", "2026-11-01"
    )
    golden = GoldenRecord("cus_a", "customer", 1, {"email": "not-an-email"}, {}, "c", "c")
    assert validate(POLICY.spec, dict(kept.values))[1]  # a rule added since, say
    plan = plan_remerge(golden, [kept], POLICY, CTX)
    assert plan.renewed == [] and plan.members == [kept]
    assert plan.event is None  # (its provenance is filled in: the test left it empty)


def test_a_rule_failing_only_on_a_held_guarded_value_does_not_refuse_the_rest() -> None:
    """Review: the rules ran before guarded values were taken back, so a credit limit over
    a range (which waits for approval anyway) refused the record's name change too."""
    from mastersync.domain.landscape.model import Landscape
    from mastersync.domain.landscape.policy import compile_landscape
    from tests.pipeline.matching.support import landscape_doc

    doc = landscape_doc()
    customer = doc["domains"]["customer"]
    customer["ownership"] = {"name": ["crm", "erp"], "credit_limit": ["crm", "erp"]}
    customer["quality"] = [
        {"field": "credit_limit.amount", "rule": "range", "max": 3000, "severity": "error"}
    ]
    policy = compile_landscape(Landscape.model_validate(doc)).policies["customer"]
    limit = {"amount": "1000", "currency": "EUR"}
    erp = Contribution(
        "customer", "erp", "E1", "cus_a", 1, None, {"name": "ACME", "credit_limit": limit}, "d", "x"
    )
    crm = Contribution(
        "customer",
        "crm",
        "C1",
        "cus_a",
        1,
        None,
        {"name": "Acme GmbH", "credit_limit": {"amount": "5000", "currency": "EUR"}},
        "d",
        "x",
    )
    source = {"system": "erp", "key": "E1", "version": "1", "at": "x"}
    golden = GoldenRecord(
        "cus_a",
        "customer",
        1,
        {"name": "ACME", "credit_limit": limit},
        {"name": source, "credit_limit": source},
        "c",
        "c",
    )
    plan = plan_remerge(golden, [erp, crm], policy, CTX)
    assert plan.refused == []
    assert plan.golden is not None and plan.golden.attributes["name"] == "Acme GmbH"
    assert plan.golden.attributes["credit_limit"] == limit
    assert [name for name, _, _ in plan.unconfirmed] == ["credit_limit"]
