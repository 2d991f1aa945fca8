"""Ownership and survivorship: who may write a field, which value wins, and why."""

from __future__ import annotations

from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.merge import enforce_ownership, merge
from mastersync.domain.problems import ProblemKind
from mastersync.domain.survivorship import FieldPolicy, Rule, completeness, resolve

ORDER = ("erp", "pim", "wms")


def contrib(
    system: str,
    values: dict[str, Any],
    version: int | str = 1,
    ts: str | None = None,
    key: str = "k",
) -> Contribution:
    return Contribution("item", system, key, "itm_1", version, ts, values, "d", "2026-01-01")


def test_owner_priority_wins_and_falls_back_in_order() -> None:
    policy = FieldPolicy(("pim", "erp"), Rule.SOURCE_PRIORITY, ORDER)
    both = [contrib("erp", {"d": "from erp"}), contrib("pim", {"d": "from pim"})]
    assert resolve("d", both, policy)[0] == "from pim"
    assert resolve("d", [contrib("erp", {"d": "from erp"}), contrib("pim", {})], policy)[0] == (
        "from erp"
    )
    # A non-owner's value never wins, even when no owner has one.
    assert resolve("d", [contrib("wms", {"d": "x"})], policy) == (None, None)


def test_most_recent_uses_source_timestamps_not_arrival() -> None:
    policy = FieldPolicy((), Rule.MOST_RECENT, ORDER)
    older = contrib("erp", {"phone": "1"}, ts="2026-01-01T00:00:00.000000Z")
    newer = contrib("pim", {"phone": "2"}, ts="2026-02-01T00:00:00.000000Z")
    assert resolve("phone", [newer, older], policy)[0] == "2"
    assert resolve("phone", [older, newer], policy)[0] == "2"


def test_most_recent_never_compares_counters_of_different_systems() -> None:
    """ERP change counter 500 beat PIM revision 2 (and arrival number 3 beat 1): unrelated
    numbers decided. Without a change time, priority decides; a system's own versions
    still order its own records."""
    policy = FieldPolicy((), Rule.MOST_RECENT, ("pim", "erp"))
    erp = contrib("erp", {"brand": "ErpBrand"}, version=500)
    pim = contrib("pim", {"brand": "PimBrand"}, version=2)
    assert resolve("brand", [erp, pim], policy)[0] == "PimBrand"
    assert resolve("brand", [pim, erp], policy)[0] == "PimBrand"
    policy = FieldPolicy((), Rule.MOST_RECENT, ("erp", "pim"))
    assert resolve("brand", [erp, pim], policy)[0] == "ErpBrand"
    # A change time beats none, whatever the priority.
    dated = contrib("pim", {"brand": "Dated"}, version=1, ts="2026-01-01T00:00:00.000000Z")
    assert resolve("brand", [erp, dated], policy)[0] == "Dated"
    # Two records of one system: its newer version.
    again = contrib("erp", {"brand": "Newer"}, version=501, key="k2")
    assert resolve("brand", [again, erp], policy)[0] == "Newer"


def test_most_complete_prefers_more_filled_values() -> None:
    policy = FieldPolicy((), Rule.MOST_COMPLETE, ORDER)
    thin = contrib("erp", {"address": {"city": "Lyon"}})
    full = contrib("wms", {"address": {"city": "Lyon", "postal_code": "69007", "lines": ["1"]}})
    assert resolve("address", [thin, full], policy)[1] is full
    assert completeness({"a": [1, None, ""], "b": {"c": "x"}}) == 2


def test_source_priority_for_unowned_fields() -> None:
    policy = FieldPolicy((), Rule.SOURCE_PRIORITY, ("pim", "erp"))
    assert resolve("b", [contrib("erp", {"b": 1}), contrib("pim", {"b": 2})], policy)[0] == 2


def test_non_owner_write_is_a_violation_and_is_dropped() -> None:
    policies = {
        "name": FieldPolicy(("erp",), Rule.SOURCE_PRIORITY, ORDER),
        "brand": FieldPolicy((), Rule.SOURCE_PRIORITY, ORDER),
    }
    kept, violations = enforce_ownership(
        {"name": "Other", "brand": "B"}, "pim", {"name": "Right"}, policies
    )
    assert kept == {"brand": "B"}
    assert [(v.kind, v.field) for v in violations] == [(ProblemKind.OWNERSHIP_VIOLATION, "name")]
    # Sending the golden value back is no violation.
    assert enforce_ownership({"name": "Right"}, "pim", {"name": "Right"}, policies)[1] == []


def test_merge_records_before_and_after_and_provenance() -> None:
    policies = {f: FieldPolicy((), Rule.SOURCE_PRIORITY, ORDER) for f in ("a", "b")}
    members = [contrib("erp", {"a": 1}, version=3)]
    result = merge({"a": 0, "b": 9}, {}, members, {"a", "b"}, policies)
    assert result.attributes == {"a": 1}
    assert result.changes == {"a": {"before": 0, "after": 1}, "b": {"before": 9, "after": None}}
    assert result.provenance["a"]["system"] == "erp"
    assert result.provenance["a"]["version"] == "3"
