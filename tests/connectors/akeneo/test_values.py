"""Akeneo's standard format both ways: values flattened for the inbound mapping, and plain
values built back for a PATCH."""

from __future__ import annotations

import pytest

from mastersync.connectors.akeneo.values import (
    Attribute,
    ValueProblem,
    build_values,
    flatten,
    pick,
    product_body,
)
from tests.connectors.akeneo.support import document

ATTRIBUTES = {
    "name": Attribute("name", localizable=True),
    "description": Attribute("description", localizable=True, scopable=True),
    "weight": Attribute("weight"),
    "print_only": Attribute("print_only", scopable=True),
}


def test_a_product_is_flattened_to_one_value_per_attribute_for_its_locale_and_channel() -> None:
    record = flatten(document("product.json"), "en_US", "ecommerce")
    assert record["identifier"] == "HX-220"
    assert record["family"] == "hand_tools"
    assert record["categories"] == ["tools", "hex_keys"]
    assert "_links" not in record
    assert record["values"] == {
        "name": "Hex key set, 9 pieces",
        "description": "Ball-end hex keys in a folding holder.",
        # Metrics and prices keep their shape: the mapping picks amount, unit, currency.
        "weight": {"amount": "0.240", "unit": "KILOGRAM"},
        "price": [{"amount": "14.90", "currency": "EUR"}],
        # The channel's value wins over the one for every channel.
        "meta_title": "Hex key set | Shop",
    }


def test_other_locales_and_channels_never_count() -> None:
    german_print = flatten(document("product.json"), "de_DE", "print")["values"]
    assert german_print["name"] == "Innensechskant-Satz, 9-teilig"
    assert german_print["print_only"] == "catalogue page 212"
    assert german_print["german_only"] == "nur Deutsch"
    assert "description" not in german_print  # German exists for ecommerce only
    # No scope configured: values scoped by channel are left out.
    unscoped = flatten(document("product.json"), "en_US", None)["values"]
    assert "description" not in unscoped
    assert unscoped["meta_title"] == "Hex keys"


def test_pick_prefers_the_exact_entry_and_says_whether_it_found_one() -> None:
    entries = [
        {"locale": None, "scope": None, "data": "any"},
        {"locale": None, "scope": "ecommerce", "data": "channel"},
        {"locale": "en_US", "scope": None, "data": "locale"},
        {"locale": "en_US", "scope": "ecommerce", "data": "exact"},
    ]
    assert pick(entries, "en_US", "ecommerce") == (True, "exact")
    assert pick(entries[:3], "en_US", "ecommerce") == (True, "locale")
    assert pick(entries[:2], "en_US", "ecommerce") == (True, "channel")
    assert pick(entries[:1], "en_US", "ecommerce") == (True, "any")
    # An empty value is a value (null data); no entry at all is not.
    assert pick([{"locale": "en_US", "scope": None, "data": None}], "en_US", None) == (True, None)
    assert pick([], "en_US", None) == (False, None)
    assert pick("not a list", "en_US", None) == (False, None)
    # Some exports say "channel" for the scope.
    assert pick([{"locale": None, "channel": "print", "data": 1}], "en_US", "print") == (True, 1)


def test_plain_values_are_built_as_the_attribute_requires() -> None:
    built = build_values(
        {
            "name": "Hex key set",
            "description": "Ball end.",
            "weight": {"amount": "0.24", "unit": "KILOGRAM"},
            # Already in the standard format: passed as it is.
            "meta_title": [{"locale": "de_DE", "scope": None, "data": "Sechskant"}],
        },
        ATTRIBUTES.__getitem__,
        "en_US",
        "ecommerce",
    )
    assert built == {
        "name": [{"locale": "en_US", "scope": None, "data": "Hex key set"}],
        "description": [{"locale": "en_US", "scope": "ecommerce", "data": "Ball end."}],
        "weight": [{"locale": None, "scope": None, "data": {"amount": "0.24", "unit": "KILOGRAM"}}],
        "meta_title": [{"locale": "de_DE", "scope": None, "data": "Sechskant"}],
    }


def test_a_scopable_attribute_needs_a_scope() -> None:
    with pytest.raises(ValueProblem, match="print_only"):
        build_values({"print_only": "x"}, ATTRIBUTES.__getitem__, "en_US", None)


def test_the_patch_body_keeps_properties_and_adds_the_family_unless_given() -> None:
    body = product_body(
        {"identifier": "HX-220", "enabled": True, "values": {"name": "Hex key set"}},
        ATTRIBUTES.__getitem__,
        "en_US",
        None,
        family="hand_tools",
    )
    assert body == {
        "identifier": "HX-220",
        "enabled": True,
        "family": "hand_tools",
        "values": {"name": [{"locale": "en_US", "scope": None, "data": "Hex key set"}]},
    }
    given = product_body(
        {"identifier": "HX-220", "family": "tools"}, ATTRIBUTES.__getitem__, "en_US", None, "x"
    )
    assert given == {"identifier": "HX-220", "family": "tools", "values": {}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"values": {"name": "x"}}, "identifier"),
        ({"identifier": ""}, "identifier"),
        ({"identifier": "A", "values": ["name"]}, "values"),
    ],
)
def test_a_body_without_identifier_or_with_odd_values_is_refused(
    payload: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueProblem, match=message):
        product_body(payload, ATTRIBUTES.__getitem__, "en_US", None)


def test_an_attribute_is_read_from_its_api_document() -> None:
    attribute = Attribute.of({"code": "name", "type": "pim_catalog_text", "localizable": True})
    assert attribute == Attribute("name", localizable=True, scopable=False)
