"""Quality rules and field ownership: a value a system may not write never refuses its
record, never reaches the golden record (or identifies one) past the rules, and a failure
in it is said once, in the ownership entry, naming field and rule."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.ingest import Outcome
from mastersync.domain.problems import ProblemKind
from tests.domain.test_ingest_process import GTIN, Harness
from tests.support import landscape_doc

PIM_AT = "2026-01-01T00:00:00.000000Z"
# Descriptions (the PIM's) of at most ten characters.
SHORT = {"field": "description", "rule": "length", "max": 10}


def harness(*rules: dict[str, Any], **owners: list[str]) -> Harness:
    """The test landscape with these quality rules added and these fields' owners."""
    doc = landscape_doc()
    doc["domains"]["item"]["ownership"].update(owners)
    doc["domains"]["item"]["quality"].extend(rules)
    return Harness(domains=doc["domains"])


def test_a_failing_value_refused_by_ownership_is_one_entry_that_names_the_rule() -> None:
    h = harness(SHORT)
    r = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "description": "x" * 30})
    # Not refused for a value that was ignored anyway.
    assert r.outcome is Outcome.ACCEPTED
    [problem] = r.problems
    assert (problem.kind, problem.field, problem.severity) == (
        ProblemKind.OWNERSHIP_VIOLATION,
        "description",
        "warning",
    )
    # It named ownership alone: that the value also breaks the length rule went unsaid.
    assert "fails rule length (length 30 is above the maximum 10)" in problem.message
    assert "description" not in h.golden(r.master_id)


def test_a_value_refused_by_ownership_reaches_the_golden_record_only_past_the_rules() -> None:
    """The PIM's description (the ERP's field then) breaks the length rule; descriptions
    moved to the PIM; the ERP's next change took the kept description into the golden
    record unchecked, and no entry ever said it fails the rule."""
    before = harness(SHORT, description=["erp"])
    erp = {"sku": "C1", "name": "Glove", "gtin": GTIN, "description": "glove"}
    first = before.send("erp", "C1", 1, erp)
    pim = before.send("pim", "P1", 1, {"gtin": GTIN, "description": "nitrile glove, blue"})
    after = harness(SHORT)  # descriptions owned by the PIM
    after.ledger = before.ledger
    changed = after.send("erp", "C1", 2, {**erp, "name": "Glove XL"})
    assert changed.outcome is Outcome.ACCEPTED
    golden = after.golden(first.master_id)
    assert golden["name"] == "Glove XL"
    assert golden.get("description") != "nitrile glove, blue"
    # Said when the PIM sent it: the one entry about the value names the rule.
    [problem] = pim.problems
    assert problem.kind is ProblemKind.OWNERSHIP_VIOLATION
    assert "fails rule length" in problem.message
    # The PIM's next description, its own field now, is checked as any owner's is.
    refused = after.send("pim", "P1", 2, {"gtin": GTIN, "description": "still far too long"})
    assert refused.outcome is Outcome.REJECTED
    assert [(p.field, p.rule) for p in refused.problems] == [("description", "length")]


def test_a_natural_key_a_non_owner_sends_that_fails_a_rule_joins_no_records() -> None:
    """GTINs are the ERP's and must start 0400; before the ERP's item comes, the PIM's
    GTIN identifies its record (no violation). One the rule refuses joined two PIM items
    into one record, without a word, where the ERP's record with it is refused."""
    rule = {"field": "gtin", "rule": "pattern", "regex": "0400.*"}
    # Names the PIM's too: a record must have one (the landscape's required rule).
    h = harness(rule, gtin=["erp"], name=["erp", "pim"])
    bad = "05012345678900"
    one = h.send("pim", "P1", PIM_AT, {"gtin": bad, "name": "x", "description": "a"})
    two = h.send("pim", "P2", PIM_AT, {"gtin": bad, "name": "y", "description": "b"})
    assert one.outcome is two.outcome is Outcome.ACCEPTED
    assert one.master_id != two.master_id
    for r in (one, two):
        [problem] = r.problems
        assert (problem.kind, problem.field) == (ProblemKind.OWNERSHIP_VIOLATION, "gtin")
        assert "fails rule pattern" in problem.message
    assert not any(key == bad for (_, _, key) in h.ledger.natural)
    # A GTIN that passes still identifies the record, as before.
    three = h.send("pim", "P3", PIM_AT, {"gtin": GTIN, "name": "z"})
    four = h.send("pim", "P4", PIM_AT, {"gtin": GTIN, "name": "z"})
    assert three.master_id == four.master_id
    assert all(p.kind is not ProblemKind.OWNERSHIP_VIOLATION for p in three.problems)


def test_a_rule_condition_reads_the_golden_record_not_a_value_the_system_may_not_write() -> None:
    """The reverse suspicion, refuted: the ERP's own name is judged with the golden
    description, not the one it sent and may not write."""
    terse = {"field": "name", "rule": "length", "max": 3, "when": "description == 'terse'"}
    h = harness(terse)
    erp = {"sku": "T1", "name": "Glove", "gtin": GTIN}
    r = h.send("erp", "T1", 1, {**erp, "description": "terse"})
    assert r.outcome is Outcome.ACCEPTED
    assert [p.kind for p in r.problems] == [ProblemKind.OWNERSHIP_VIOLATION]
    # Once the description is the owner's, the rule applies to the ERP's next name.
    joined = h.send("pim", "P1", PIM_AT, {"gtin": GTIN, "description": "terse"})
    assert joined.master_id == r.master_id
    refused = h.send("erp", "T1", 2, {**erp, "name": "Gloves"})
    assert refused.outcome is Outcome.REJECTED
    assert [(p.field, p.rule) for p in refused.problems] == [("name", "length")]


@settings(max_examples=60, deadline=None)
@given(
    description=st.text(alphabet="abcxyz", min_size=1, max_size=20),
    severity=st.sampled_from(["error", "warning"]),
)
def test_a_value_a_system_may_not_write_never_refuses_its_record(
    description: str, severity: str
) -> None:
    """Whatever the ERP sends as a description (the PIM's), under a rule of either
    severity: its record is taken, the description stays out of the golden record, and
    there is one entry about it, the ownership one, naming the rule exactly when the
    value breaks it as an error; the PIM sending the same is refused exactly then."""
    rule = {**SHORT, "severity": severity}
    h = harness(rule)
    erp = {"sku": "E1", "name": "Pen", "gtin": GTIN, "description": description}
    r = h.send("erp", "E1", 1, erp)
    assert r.outcome is Outcome.ACCEPTED
    assert "description" not in h.golden(r.master_id)
    about = [p for p in r.problems if p.field == "description"]
    fails = severity == "error" and len(description) > 10
    assert [p.kind for p in about] == [ProblemKind.OWNERSHIP_VIOLATION]
    assert any("fails rule length" in p.message for p in about) is fails
    owner = h.send("pim", "P1", PIM_AT, {"gtin": GTIN, "description": description})
    assert owner.master_id == r.master_id
    assert (owner.outcome is Outcome.REJECTED) is fails
