"""One record through identify, ownership, quality and merge (the pure core of ingest)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mastersync.domain.golden import Contribution
from mastersync.domain.ingest import Context, Incoming, Outcome, RecordResult, process
from mastersync.domain.ledger import Ledger
from mastersync.domain.problems import ProblemKind
from mastersync.domain.validation import digest
from tests.support import compiled, landscape_doc


class Harness:
    """A ledger and the test landscape's item policy, fed record by record."""

    def __init__(self, **overrides: Any) -> None:
        self.landscape = compiled(**overrides)
        self.ledger = Ledger()
        self.ids = itertools.count(1)

    def send(
        self,
        system: str,
        key: str,
        version: int | str | None,
        values: dict[str, Any],
        domain: str = "item",
        timestamp: str | None = None,
    ) -> RecordResult:
        rec = Incoming(system, domain, key, version, timestamp, values, digest(values))
        ctx = Context(
            "2026-11-27T00:00:00.000000Z",
            "trace",
            "receipt",
            lambda prefix: f"{prefix}_{next(self.ids)}",
        )
        result = process(self.ledger, self.landscape.policies[domain], rec, ctx)
        if result.contribution is not None:
            self.ledger.put(result.contribution, result.golden, result.keys)
        return result

    def golden(self, master_id: str | None) -> dict[str, Any]:
        assert master_id is not None
        return self.ledger.golden[master_id].attributes


GTIN = "04006381333931"


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_new_record_creates_a_golden_record_and_an_event(h: Harness) -> None:
    r = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    assert r.outcome is Outcome.ACCEPTED
    assert r.golden is not None
    assert r.golden.version == 1
    assert r.event is not None
    assert r.event.kind == "created"
    assert r.event.changes["name"] == {"before": None, "after": "Pen"}
    assert r.golden.provenance["name"] == {
        "system": "erp",
        "key": "A1",
        "version": "1",
        "at": "2026-11-27T00:00:00.000000Z",
    }


def test_a_second_system_links_by_natural_key(h: Harness) -> None:
    first = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    second = h.send(
        "pim", "P9", "2026-01-01T00:00:00.000000Z", {"gtin": GTIN, "description": "A fine pen"}
    )
    assert second.master_id == first.master_id
    assert second.detail["identified_by"] == "natural_key:gtin"
    assert second.golden is not None
    assert second.golden.version == 2
    assert h.golden(first.master_id)["description"] == "A fine pen"


def test_stale_and_duplicate_changes_change_nothing(h: Harness) -> None:
    h.send("erp", "A1", 5, {"sku": "A1", "name": "New"})
    stale = h.send("erp", "A1", 4, {"sku": "A1", "name": "Old"})
    assert stale.outcome is Outcome.STALE
    assert stale.problems[0].kind is ProblemKind.STALE_UPDATE
    assert stale.golden is None
    assert stale.contribution is None
    again = h.send("erp", "A1", 5, {"sku": "A1", "name": "New"})
    assert again.outcome is Outcome.UNCHANGED
    assert again.contribution is None
    conflicting = h.send("erp", "A1", 5, {"sku": "A1", "name": "Changed without a version"})
    assert conflicting.outcome is Outcome.STALE


def test_a_newer_version_with_the_same_values_makes_no_golden_version(h: Harness) -> None:
    first = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen"})
    later = h.send("erp", "A1", 2, {"sku": "A1", "name": "Pen"})
    assert later.outcome is Outcome.UNCHANGED
    assert later.event is None
    assert later.golden is None
    assert later.contribution is not None
    assert later.contribution.version == 2
    assert h.ledger.golden[first.master_id or ""].version == 1


def test_a_value_another_source_now_stands_behind_says_so_without_a_version(
    h: Harness,
) -> None:
    """The ERP clearing a brand the PIM also has left the golden brand naming the ERP's
    record (which no longer has it), and the change was counted 'unchanged'."""
    first = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN, "brand": "Acme"})
    h.send("pim", "P1", 1, {"gtin": GTIN, "brand": "Acme"})
    cleared = h.send("erp", "A1", 2, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    assert cleared.outcome is Outcome.ACCEPTED
    assert cleared.event is None
    assert cleared.golden is not None and cleared.golden.version == 1  # no new version
    assert cleared.golden.attributes["brand"] == "Acme"
    assert (
        cleared.golden.provenance["brand"]["system"],
        cleared.golden.provenance["brand"]["key"],
    ) == (
        "pim",
        "P1",
    )
    assert cleared.golden.provenance["name"]["version"] == "2"  # as a merge now says
    assert first.master_id == cleared.master_id


def test_a_value_kept_from_a_non_owner_serves_once_ownership_moves_to_it() -> None:
    """Ownership of descriptions moved from the ERP to the PIM: the PIM's description had
    been dropped from its contribution, so the ERP's next change cleared the field."""
    doc = landscape_doc()
    doc["domains"]["item"]["ownership"]["description"] = ["erp"]
    before = Harness(domains=doc["domains"])
    erp = {"sku": "C1", "name": "Glove", "gtin": GTIN, "description": "nitrile glove"}
    first = before.send("erp", "C1", 1, erp)
    pim = before.send("pim", "P1", 1, {"gtin": GTIN, "description": "Nitrile glove, blue"})
    assert [p.kind for p in pim.problems] == [ProblemKind.OWNERSHIP_VIOLATION]
    assert before.golden(first.master_id)["description"] == "nitrile glove"
    after = Harness()  # descriptions owned by the PIM
    after.ledger = before.ledger
    changed = after.send("erp", "C1", 2, {**erp, "name": "Glove XL"})
    assert changed.golden is not None
    assert changed.golden.attributes["description"] == "Nitrile glove, blue"
    assert changed.golden.provenance["description"]["system"] == "pim"


def test_a_required_field_missing_before_does_not_hold_back_other_changes() -> None:
    """A `required` rule added for brand rejected every later change of records loaded
    without one (a price change kept the old price, for good)."""
    before = Harness()
    first = before.send("erp", "H1", 1, {"sku": "H1", "name": "Hose", "list_price": "2.00"})
    doc = landscape_doc()
    doc["domains"]["item"]["quality"].append({"field": "brand", "rule": "required"})
    after = Harness(domains=doc["domains"])
    after.ledger = before.ledger
    changed = after.send("erp", "H1", 2, {"sku": "H1", "name": "Hose", "list_price": "2.50"})
    assert changed.outcome is Outcome.ACCEPTED
    assert changed.golden is not None and changed.golden.attributes["list_price"] == "2.50"
    [gap] = changed.problems
    assert (gap.field, gap.rule, gap.severity) == ("brand", "required", "warning")
    assert "missing before this change too" in gap.message
    assert changed.golden.quality < 1
    # A new record without one, and clearing one, are still refused.
    new = after.send("erp", "H2", 1, {"sku": "H2", "name": "Tap"})
    assert new.outcome is Outcome.REJECTED
    after.send("erp", "H3", 1, {"sku": "H3", "name": "Tap", "brand": "Acme"})
    cleared = after.send("erp", "H3", 2, {"sku": "H3", "name": "Tap"})
    assert cleared.outcome is Outcome.REJECTED
    assert first.master_id == changed.master_id


def test_a_change_that_makes_a_conditional_required_rule_fail_is_refused() -> None:
    """'Missing before' counted the field, not the rule: a draft without a brand made
    active (where the rule applies) was applied with a warning."""
    doc = landscape_doc()
    rule = {"field": "brand", "rule": "required", "when": "lifecycle_state == 'active'"}
    doc["domains"]["item"]["quality"].append(rule)
    h = Harness(domains=doc["domains"])
    draft = {"sku": "D1", "name": "Drill", "lifecycle_state": "draft"}
    assert h.send("erp", "D1", 1, draft).outcome is Outcome.ACCEPTED
    active = h.send("erp", "D1", 2, {**draft, "lifecycle_state": "active"})
    assert active.outcome is Outcome.REJECTED


def test_ownership_violation_keeps_the_owner_value_and_applies_the_rest(h: Harness) -> None:
    erp = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    pim = h.send(
        "pim",
        "P1",
        "2026-01-01T00:00:00.000000Z",
        {"gtin": GTIN, "name": "Stylo", "description": "Blue"},
    )
    assert pim.outcome is Outcome.ACCEPTED
    assert [(p.kind, p.field) for p in pim.problems] == [(ProblemKind.OWNERSHIP_VIOLATION, "name")]
    assert h.golden(erp.master_id) == {
        "sku": "A1",
        "name": "Pen",
        "gtin": GTIN,
        "description": "Blue",
    }


def test_required_fields_are_checked_on_the_golden_record(h: Harness) -> None:
    # The PIM may not write names: a PIM-only item would have none, so it is refused.
    r = h.send("pim", "P1", "2026-01-01T00:00:00.000000Z", {"gtin": GTIN, "name": "Stylo"})
    assert r.outcome is Outcome.REJECTED
    assert {(p.field, p.rule) for p in r.problems} == {("name", "required")}
    assert not h.ledger.golden


def test_conflicting_natural_keys_are_an_ambiguous_match(h: Harness) -> None:
    h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    other = h.send("erp", "A2", 1, {"sku": "A2", "name": "Ink", "gtin": "04012345678901"})
    # A1 now claims A2's GTIN: refused, A2 keeps it.
    r = h.send("erp", "A1", 2, {"sku": "A1", "name": "Pen", "gtin": "04012345678901"})
    assert r.outcome is Outcome.REJECTED
    assert r.problems[0].kind is ProblemKind.AMBIGUOUS_MATCH
    assert h.ledger.natural[("item", "gtin", "04012345678901")] == other.master_id


def test_record_rules_see_the_golden_context() -> None:
    h = Harness()
    ok = h.send(
        "erp", "S1", 1, {"name": "Acme", "country": "DE", "tax_id": "136695976"}, domain="supplier"
    )
    assert ok.outcome is Outcome.ACCEPTED
    bad = h.send(
        "erp", "S2", 1, {"name": "Bad", "country": "DE", "tax_id": "123456789"}, domain="supplier"
    )
    assert bad.outcome is Outcome.REJECTED
    assert [(p.field, p.rule) for p in bad.problems] == [("tax_id", "tax_id")]


def test_a_value_removed_at_the_source_falls_back_to_the_next_source(h: Harness) -> None:
    first = h.send(
        "erp",
        "A1",
        1,
        {"sku": "A1", "name": "Pen", "gtin": GTIN, "brand": "Erp"},
        timestamp="2026-01-01T00:00:00.000000Z",
    )
    # brand is "most recent": the WMS's newer source timestamp wins ...
    h.send(
        "wms",
        "A1",
        1,
        {"sku": "A1", "gtin": GTIN, "brand": "Wms"},
        timestamp="2026-02-01T00:00:00.000000Z",
    )
    assert h.golden(first.master_id)["brand"] == "Wms"
    # ... until the WMS clears it; then the ERP's value is the best there is.
    h.send("wms", "A1", 2, {"sku": "A1", "gtin": GTIN}, timestamp="2026-03-01T00:00:00.000000Z")
    assert h.golden(first.master_id)["brand"] == "Erp"


def test_reapply_remerges_an_applied_version(h: Harness) -> None:
    h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen"})
    rec = Incoming(
        "erp",
        "item",
        "A1",
        1,
        None,
        {"sku": "A1", "name": "Pen"},
        digest({"sku": "A1", "name": "Pen"}),
    )
    ctx = Context("now", "t", "r", lambda p: p, reapply=True)
    result = process(h.ledger, h.landscape.policies["item"], rec, ctx)
    assert result.outcome is Outcome.UNCHANGED
    assert result.contribution is not None


def test_a_same_system_warning_names_a_composite_key_as_the_record_has_it(h: Harness) -> None:
    """It read 'item+location ITM_01…|LOC_…': upper-cased ids no command accepts."""
    stock = {"item": "itm_01abc", "location": "loc_02def", "on_hand": "5"}
    h.send("wms", "S1", 1, stock, domain="inventory")
    again = h.send("wms", "S2", 1, {**stock, "on_hand": "6"}, domain="inventory")
    [warning] = again.problems
    assert warning.rule == "same_system"
    assert "(item itm_01abc, location loc_02def) joined wms S2" in warning.message
    assert "ITM_" not in warning.message


def test_a_key_a_consumer_gave_back_is_no_duplicate_of_the_systems_own_record(h: Harness) -> None:
    """The hub delivered an item to the WMS and kept the WMS's key for it (a member with no
    values and no digest); the WMS's own record of the item, joined by GTIN, was then
    reported as a duplicate in the WMS of that delivery key."""
    first = h.send("erp", "A1", 1, {"sku": "A1", "gtin": GTIN, "name": "Pen"})
    assert first.master_id is not None
    delivered = Contribution("item", "wms", "T-9f2c", first.master_id, 0, None, {}, "", "now")
    h.ledger.put(delivered, None, [])
    joined = h.send("wms", "A1", 1, {"sku": "A1", "gtin": GTIN, "brand": "Acme"})
    assert joined.master_id == first.master_id
    assert [p.rule for p in joined.problems] == []


def _gtin_owned_by_erp() -> Harness:
    doc = landscape_doc()
    item = doc["domains"]["item"]
    item["ownership"] = {**item["ownership"], "gtin": ["erp"]}
    item["quality"] = []  # the PIM's item has no name (the ERP owns it) until the ERP's comes
    return Harness(domains=doc["domains"])


OTHER_GTIN = "4012345000009"


def test_a_key_only_a_non_owner_sent_still_identifies_the_record() -> None:
    """The PIM had an item first, with the GTIN the ERP owns: the golden record lacked the
    GTIN (ownership), nothing indexed it, and the ERP's item of that GTIN became a second
    golden record -- one when the ERP came first. A golden record's natural key is its own
    value, else one its source records send."""
    h = _gtin_owned_by_erp()
    pim = h.send("pim", "P1", 1, {"gtin": GTIN, "description": "A fine pen"})
    assert "gtin" not in h.golden(pim.master_id)
    assert [(k.value, k.added) for k in pim.keys] == [(GTIN, True)]
    # Nothing to contradict: no inbox entry for each record linked so (review).
    assert pim.problems == []
    erp = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    assert erp.master_id == pim.master_id
    assert erp.detail["identified_by"] == "natural_key:gtin"
    assert h.golden(erp.master_id)["gtin"] == GTIN
    assert erp.keys == []  # the same key, now the golden record's own value
    # Either order, one golden record.
    other = _gtin_owned_by_erp()
    first = other.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    second = other.send("pim", "P1", 1, {"gtin": GTIN, "description": "A fine pen"})
    assert first.master_id == second.master_id


def test_a_sent_key_moves_with_the_record_and_never_takes_another_records_key() -> None:
    h = _gtin_owned_by_erp()
    pim = h.send("pim", "P1", 1, {"gtin": GTIN, "description": "A fine pen"})
    moved = h.send("pim", "P1", 2, {"gtin": OTHER_GTIN, "description": "A fine pen"})
    assert moved.problems == []
    assert sorted((k.value, k.added) for k in moved.keys) == [(GTIN, False), (OTHER_GTIN, True)]
    erp = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    assert erp.master_id != pim.master_id  # the PIM no longer says GTIN
    # A golden value a non-owner contradicts is still a violation.
    other = h.send("pim", "P2", 1, {"gtin": GTIN, "description": "Another pen"})
    assert other.master_id == erp.master_id and other.problems == []
    wrong = h.send("pim", "P2", 2, {"gtin": "4006381333931", "description": "Another pen"})
    assert [p.kind for p in wrong.problems] == [ProblemKind.OWNERSHIP_VIOLATION]
    # A sent key that already identifies another record is not taken (nor is the record
    # rejected for it: the golden record does not hold it).
    clash = h.send("pim", "P1", 3, {"gtin": GTIN, "description": "A fine pen"})
    assert clash.outcome is Outcome.ACCEPTED
    assert [(k.value, k.added) for k in clash.keys] == [(OTHER_GTIN, False)]
    assert h.ledger.natural[("item", "gtin", GTIN)] == erp.master_id


def test_the_owners_value_takes_a_key_another_record_has_only_from_a_source_record() -> None:
    """Review: the PIM sent a GTIN on one item, and the ERP then gave that GTIN to another
    item of its own: the ERP's record was rejected as an ambiguous match, its other
    changes with it. The owner's value takes the key; a steward is told."""
    h = _gtin_owned_by_erp()
    pim = h.send("pim", "P1", 1, {"gtin": GTIN, "description": "A fine pen"})
    erp = h.send("erp", "A9", 1, {"sku": "A9", "name": "Ink", "gtin": OTHER_GTIN})
    assert erp.master_id != pim.master_id
    moved = h.send("erp", "A9", 2, {"sku": "A9", "name": "Ink", "gtin": GTIN})
    assert moved.outcome is Outcome.ACCEPTED
    assert h.ledger.natural[("item", "gtin", GTIN)] == erp.master_id
    assert ("item", "gtin", OTHER_GTIN) not in h.ledger.natural
    [warning] = [p for p in moved.problems if p.rule == "sent_key"]
    assert not warning.is_error and pim.master_id in warning.message
    # Two golden values still may not share a key.
    other = h.send("erp", "A10", 1, {"sku": "A10", "name": "Pad", "gtin": OTHER_GTIN})
    clash = h.send("erp", "A10", 2, {"sku": "A10", "name": "Pad", "gtin": GTIN})
    assert clash.outcome is Outcome.REJECTED and other.master_id != erp.master_id


def test_a_non_owners_key_value_contradicting_the_owners_record_is_a_violation() -> None:
    """Review: the ERP's record is there but sends no GTIN (there is none); a PIM value
    then is a contradiction, not an identifier waiting for its owner."""
    h = _gtin_owned_by_erp()
    erp = h.send("erp", "A1", 1, {"sku": "A1", "name": "Pen", "gtin": GTIN})
    h.send("pim", "P1", 1, {"gtin": GTIN, "description": "A fine pen"})
    h.send("erp", "A1", 2, {"sku": "A1", "name": "Pen"})
    pim = h.send("pim", "P1", 2, {"gtin": OTHER_GTIN, "description": "A fine pen"})
    assert pim.master_id == erp.master_id
    assert [(p.kind, p.field) for p in pim.problems] == [(ProblemKind.OWNERSHIP_VIOLATION, "gtin")]


def _sku_and_gtin() -> Harness:
    doc = landscape_doc()
    item = doc["domains"]["item"]
    item["natural_keys"] = [["gtin"], ["sku"]]
    item["ownership"] = {**item["ownership"], "sku": ["erp"]}
    return Harness(domains=doc["domains"])


def test_a_sku_consolidated_by_a_shared_gtin_still_identifies_the_record() -> None:
    """Review: two ERP items of one GTIN are joined, and the golden record takes one SKU;
    the other one identified it no more, so the PIM's record of that SKU became an item of
    its own, refused with "name is required" (the ERP owns names) -- where it had joined
    had it come before the second ERP item. Each SKU the owner holds the record under
    identifies it."""
    h = _sku_and_gtin()
    first = h.send("erp", "A", 1, {"sku": "A", "name": "Pen", "gtin": GTIN})
    second = h.send("erp", "B", 1, {"sku": "B", "name": "Pen B", "gtin": GTIN})
    assert second.master_id == first.master_id
    assert [p.rule for p in second.problems] == ["same_system"]
    master = first.master_id
    (old,) = {"A", "B"} - {h.golden(master)["sku"]}
    assert h.ledger.natural[("item", "sku", old)] == master
    pim = h.send("pim", "P1", 1, {"sku": old, "description": "A fine pen"})
    assert pim.outcome is Outcome.ACCEPTED, pim.problems
    assert pim.master_id == master
    assert pim.detail["identified_by"] == "natural_key:sku"
    assert h.golden(master)["description"] == "A fine pen"
    # A SKU only a system that may not write it sends identifies nothing.
    h.send("pim", "P1", 2, {"sku": "Q", "description": "A fine pen"})
    assert ("item", "sku", "Q") not in h.ledger.natural
    # A PIM item of a SKU no record holds is still refused for its missing name.
    alone = h.send("pim", "P2", 1, {"sku": "Z", "description": "Another pen"})
    assert alone.outcome is Outcome.REJECTED
    assert [(p.field, p.rule) for p in alone.problems] == [("name", "required")]
