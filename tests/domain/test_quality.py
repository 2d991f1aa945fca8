"""Data-quality rules: each names its field and rule; required is checked on the golden record."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mastersync.domain.quality import QualityRule, compile_rule


def check(spec: dict[str, Any], record: dict[str, Any]) -> list[tuple[str, str, str]]:
    rule = compile_rule(QualityRule.model_validate(spec))
    return [(p.field or "", p.rule, p.severity) for p in rule.evaluate(record)]


def test_required_counts_empty_text_and_lists_as_missing() -> None:
    spec = {"field": "name", "rule": "required"}
    assert check(spec, {"name": "x"}) == []
    assert check(spec, {"name": ""}) == [("name", "required", "error")]
    assert (
        check(
            {"field": "addresses.city", "rule": "required"},
            {"addresses": [{"city": None}, {"city": "Lyon"}]},
        )
        == []
    )


def test_enum_range_length_pattern() -> None:
    assert check({"field": "st", "rule": "enum", "values": ["a", "b"]}, {"st": "c"}) == [
        ("st", "enum", "error")
    ]
    assert check({"field": "w", "rule": "range", "min": 0, "max": 10}, {"w": "10.5"}) == [
        ("w", "range", "error")
    ]
    assert check({"field": "w", "rule": "range", "min": 0}, {"w": "abc"}) == [
        ("w", "range", "error")
    ]
    assert check({"field": "n", "rule": "length", "max": 3}, {"n": "abcd"}) == [
        ("n", "length", "error")
    ]
    assert check({"field": "hs", "rule": "pattern", "regex": r"\d{6}"}, {"hs": "12345"}) == [
        ("hs", "pattern", "error")
    ]


def test_each_list_element_is_checked() -> None:
    spec = {"field": "contacts.email", "rule": "pattern", "regex": r".+@.+", "severity": "warning"}
    found = check(spec, {"contacts": [{"email": "a@b"}, {"email": "nope"}, {"email": "c"}]})
    assert found == [("contacts.email", "pattern", "warning")] * 2


def test_tax_ids_are_checked_by_country() -> None:
    spec = {"field": "tax_id", "rule": "tax_id"}
    assert check(spec, {"tax_id": "DE136695976"}) == []  # prefixed EU VAT
    assert check(spec, {"tax_id": "136695976", "country": "DE"}) == []
    assert check(spec, {"tax_id": "DE136695977"}) == [("tax_id", "tax_id", "error")]
    assert check(spec, {"tax_id": "123456789", "country": "DE"}) == [("tax_id", "tax_id", "error")]
    assert check(spec, {"tax_id": "12-3456789", "country": "US"}) == []  # an EIN shape
    # A VAT number prefixed by a country outside the EU checks on its own too (it was
    # "not a valid VAT number": stdnum.eu.vat no longer covers GB).
    assert check(spec, {"tax_id": "GB980780684"}) == []
    assert check(spec, {"tax_id": "GB980780685"}) == [("tax_id", "tax_id", "error")]


def test_gtin_and_iban_rules() -> None:
    assert check({"field": "g", "rule": "gtin"}, {"g": "4006381333932"}) == [("g", "gtin", "error")]
    assert check({"field": "i", "rule": "iban"}, {"i": "DE89370400440532013000"}) == []


def test_conditions_limit_where_a_rule_applies() -> None:
    spec = {"field": "tax_id", "rule": "required", "when": "country == 'DE'"}
    assert check(spec, {"country": "US"}) == []
    assert check(spec, {"country": "DE"}) == [("tax_id", "required", "error")]


def test_rules_need_their_arguments() -> None:
    for bad in (
        {"field": "a", "rule": "enum"},
        {"field": "a", "rule": "range"},
        {"field": "a", "rule": "pattern", "regex": "("},
    ):
        with pytest.raises(ValidationError):
            QualityRule.model_validate(bad)


def test_an_all_zeros_gtin_fails_the_gtin_rule() -> None:
    """All zeros passes the check digit, but is a "no GTIN" placeholder GS1 never issues."""
    spec = {"field": "g", "rule": "gtin"}
    for zeros in ("00000000", "0000000000000", "00000000000000"):
        assert check(spec, {"g": zeros}) == [("g", "gtin", "error")]
    rule = compile_rule(QualityRule.model_validate(spec))
    assert "is all zeros" in rule.evaluate({"g": "00000000000000"})[0].message
    assert check(spec, {"g": "04006381333931"}) == []
