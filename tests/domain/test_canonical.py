"""Canonical models: identifiers checked by python-stdnum, numbers normalised, schemas versioned."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, get_args, get_origin

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from stdnum import ean

from mastersync.domain.canonical import DOMAINS, FieldShape, domain_spec
from mastersync.domain.canonical.customer import Customer
from mastersync.domain.canonical.item import Item
from mastersync.domain.canonical.supplier import Supplier
from mastersync.domain.canonical.types import GTIN, Amount
from mastersync.domain.validation import validate


def test_gtin_is_stored_as_fourteen_digits() -> None:
    assert Item(gtin="4006381333931").gtin == "04006381333931"
    assert Item(gtin="96385074").gtin == "00000096385074"  # GTIN-8


def test_gtin_with_wrong_check_digit_names_the_expected_digit() -> None:
    with pytest.raises(ValidationError) as exc:
        Item(gtin="4006381333932")
    err = exc.value.errors()[0]
    assert err["type"] == "gtin_check_digit"
    assert "expected 1" in err["msg"]


@pytest.mark.parametrize("bad", ["12345", "40063813339AB", ""])
def test_gtin_of_wrong_shape_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        Item(gtin=bad)


def test_iban_is_checked_and_compacted() -> None:
    s = Supplier.model_validate({"bank_account": {"iban": "DE89 3704 0044 0532 0130 00"}})
    assert s.bank_account is not None
    assert s.bank_account.iban == "DE89370400440532013000"
    with pytest.raises(ValidationError) as exc:
        Supplier.model_validate({"bank_account": {"iban": "DE89370400440532013001"}})
    assert exc.value.errors()[0]["type"] == "iban"


def test_decimal_spellings_of_one_amount_normalise_to_one_value() -> None:
    values = {
        Item(list_price=p).model_dump(mode="json")["list_price"]
        for p in ("2.50", "2.5", 2.5, Decimal("2.500"))
    }
    assert values == {"2.5"}
    assert Item(list_price="10.00").model_dump(mode="json")["list_price"] == "10"


def test_unknown_field_and_bad_country_name_the_field_and_rule() -> None:
    _, problems = validate(domain_spec("customer"), {"nam": "x", "country": "Germany"})
    found = {(p.field, p.rule) for p in problems}
    assert found == {("nam", "unknown_field"), ("country", "country_code")}


def test_customer_money_requires_amount_and_currency() -> None:
    with pytest.raises(ValidationError):
        Customer.model_validate({"credit_limit": {"amount": "100"}})
    c = Customer.model_validate({"credit_limit": {"amount": "100.0", "currency": "eur"}})
    assert c.model_dump(mode="json")["credit_limit"] == {"amount": "100", "currency": "EUR"}


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_domain_exports_a_versioned_json_schema(name: str) -> None:
    schema = DOMAINS[name].json_schema()
    assert schema["x-schema-version"] == DOMAINS[name].schema_version
    assert schema["$id"].endswith(f"/{name}/{DOMAINS[name].schema_version}")
    assert set(DOMAINS[name].fields) <= set(schema["properties"])


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_bounds_on_amounts_are_json_schema_patterns(name: str) -> None:
    """Amounts go out as text, and pydantic wrote their bounds as "ge": 0, which is no JSON
    Schema keyword: validators ignored it and took "-5" for a price."""
    for node in _nodes(DOMAINS[name].json_schema()):
        assert not {"ge", "gt", "le", "lt"} & set(node), node


def test_an_amounts_pattern_takes_what_the_model_writes_and_refuses_negatives() -> None:
    prop = DOMAINS["item"].json_schema()["properties"]["list_price"]
    pattern = next(n["pattern"] for n in prop["anyOf"] if n.get("type") == "string")
    for text in ("0", "2.5", "10", "0.001"):
        assert re.fullmatch(pattern, text)
    for text in ("-5", "abc", "1e3", ""):
        assert not re.fullmatch(pattern, text)


def test_a_price_valid_to_before_its_start_and_a_negative_credit_limit_fail() -> None:
    _, problems = validate(
        DOMAINS["price"],
        {"item": "itm_1", "amount": "1", "valid_from": "2024-02-01", "valid_to": "2024-01-31"},
    )
    assert [(p.field, p.rule, p.message) for p in problems] == [
        ("valid_to", "date_order", "valid_to 2024-01-31 is before valid_from 2024-02-01")
    ]
    _, ok = validate(DOMAINS["price"], {"valid_from": "2024-02-01", "valid_to": "2024-02-01"})
    assert ok == []
    _, problems = validate(
        DOMAINS["customer"], {"credit_limit": {"amount": "-100", "currency": "EUR"}}
    )
    assert [(p.field, p.rule) for p in problems] == [("credit_limit", "greater_than_equal")]
    assert "cannot be negative (got -100)" in problems[0].message


def test_item_carries_pack_levels_dimensions_and_lifecycle() -> None:
    item = Item.model_validate(
        {
            "pack_levels": [
                {"level": "each", "uom": "ea", "quantity": 1},
                {"level": "case", "uom": "CS", "quantity": "12", "gtin": "4006381333931"},
            ],
            "dimensions": {"length_cm": "10.50"},
            "lifecycle_state": "approved",
        }
    )
    dumped = item.model_dump(mode="json", exclude_none=True)
    assert dumped["pack_levels"][1] == {
        "level": "case",
        "uom": "CS",
        "quantity": "12",
        "gtin": "04006381333931",
    }
    assert dumped["dimensions"] == {"length_cm": "10.5"}
    with pytest.raises(ValidationError):
        Item.model_validate({"pack_levels": [{"level": "case", "uom": "CS", "quantity": 0}]})


# Digits of other scripts pass str.isdigit() but are no GTIN: Arabic-Indic, superscript,
# fullwidth; a GTIN stored with them would never meet the same GTIN from another system.
_GTIN_TEXT = st.text(alphabet="0123456789 -x\u0664\u0660\u00b2\uff13", min_size=0, max_size=16)


@given(
    st.one_of(
        _GTIN_TEXT,
        st.builds(
            lambda d: d + ean.calc_check_digit(d), st.from_regex(r"[0-9]{12}", fullmatch=True)
        ),
    )
)
def test_a_gtin_is_accepted_exactly_when_python_stdnum_says_it_is_valid(value: str) -> None:
    adapter = TypeAdapter(GTIN)
    try:
        stored = adapter.validate_python(value)
    except ValidationError:
        # All zeros checks with python-stdnum but is a "no GTIN" placeholder: refused too.
        assert not ean.is_valid(value) or not ean.compact(value).strip("0")
    else:
        assert ean.is_valid(value) and ean.compact(value).strip("0")
        assert stored == ean.compact(value).zfill(14) and stored.isascii()


def test_a_gtin_in_other_digits_than_ascii_is_refused_as_a_format_error() -> None:
    with pytest.raises(ValidationError, match="GTIN must have 8, 12, 13 or 14 digits"):
        Item.model_validate({"sku": "A", "gtin": "٤٠٠٦٣٨١٣٣٣٩٣١"})
    with pytest.raises(ValidationError, match="GTIN must have 8, 12, 13 or 14 digits"):
        Item.model_validate({"sku": "A", "gtin": "²" * 13})


def test_a_bound_failure_quotes_the_number_as_written() -> None:
    _, problems = validate(DOMAINS["item"], {"list_price": Decimal("-5")})  # as mapped
    assert [p.message for p in problems] == ["Input should be greater than or equal to 0 (got -5)"]


def test_negative_zero_is_zero() -> None:
    values, problems = validate(DOMAINS["item"], {"list_price": "-0.00"})
    assert problems == [] and values["list_price"] == "0"


def test_canonical_text_fields_take_no_numbers() -> None:
    """The API's published schema says text; a source's numbers are turned into text by
    its mapping (tests/domain/test_mapping.py)."""
    assert validate(DOMAINS["item"], {"sku": 3})[1][0].rule == "string_type"


def test_text_is_one_unicode_form() -> None:
    """'Müller' written with a combining diaeresis and with the precomposed letter were two
    values: a re-send in the other form made a new golden version."""
    composed, _ = validate(DOMAINS["customer"], {"name": "M\u00fcller GmbH"})
    decomposed, _ = validate(DOMAINS["customer"], {"name": "Mu\u0308ller GmbH"})
    assert composed == decomposed == {"name": "M\u00fcller GmbH"}


def test_an_instant_is_one_value_whatever_its_offset() -> None:
    """10:00+01:00 re-sent as 09:00Z made a new golden version (event: as_of updated)."""
    base = {"item": "itm_1", "location": "loc_1"}
    spelt = ["2026-03-01T10:00:00+01:00", "2026-03-01T09:00:00Z", "2026-03-01T09:00:00"]
    found = {validate(DOMAINS["inventory"], {**base, "as_of": s})[0]["as_of"] for s in spelt}
    assert found == {"2026-03-01T09:00:00Z"}


@pytest.mark.parametrize(
    ("tax_id", "country", "stored"),
    [
        ("136695976", "DE", "DE136695976"),  # the CRM's spelling of the ERP's DE136695976
        ("094259216", "GR", "EL094259216"),  # Greece's VAT prefix is EL
        ("DE136695976", None, "DE136695976"),
        ("123", "DE", "123"),  # not a German VAT number: kept as sent
        ("12-3456789", "US", "123456789"),  # not in the EU: compacted only
        ("411905847", "BE", "BE0411905847"),  # review: one spelling with BE0411905847
        ("BE411905847", "BE", "BE0411905847"),
        ("GR094259216", None, "EL094259216"),
    ],
)
def test_an_eu_vat_number_without_its_prefix_gets_it_from_the_country(
    tax_id: str, country: str | None, stored: str
) -> None:
    """The same company's VAT number with and without its prefix made two golden records:
    natural keys compare the stored spelling."""
    for model in (Customer, Supplier):
        assert model.model_validate({"tax_id": tax_id, "country": country}).tax_id == stored


@pytest.mark.parametrize(
    ("tax_id", "country", "stored"),
    [
        ("AJ732829320", "FR", "FRAJ732829320"),  # France's check characters may be letters
        ("FRAJ732829320", "FR", "FRAJ732829320"),
        ("FRAJ732829320", None, "FRAJ732829320"),
        ("AJ732829320", None, "AJ732829320"),  # no country to prefix: kept as sent
        # DE is an EU prefix, but DE732829387 is no German VAT number: French, with FR.
        ("DE732829387", "FR", "FRDE732829387"),
        ("DE732829387", None, "DE732829387"),
    ],
)
def test_a_vat_number_starting_with_letters_is_prefixed_unless_they_are_its_prefix(
    tax_id: str, country: str | None, stored: str
) -> None:
    """A French VAT number with letter check characters (AJ732829320) was taken as already
    prefixed: the CRM's AJ732829320 with FR never joined the ERP's FRAJ732829320."""
    for model in (Customer, Supplier):
        assert model.model_validate({"tax_id": tax_id, "country": country}).tax_id == stored


@pytest.mark.parametrize("zeros", ["00000000", "000000000000", "0000000000000", "00000000000000"])
def test_an_all_zeros_gtin_is_refused(zeros: str) -> None:
    """All zeros passes the check digit, but is a "no GTIN" placeholder: as a natural key it
    joined every unrelated item carrying it into one golden record."""
    _, problems = validate(DOMAINS["item"], {"sku": "A", "gtin": zeros})
    assert [(p.field, p.rule) for p in problems] == [("gtin", "gtin_zero")]
    assert "is all zeros" in problems[0].message
    _, problems = validate(
        DOMAINS["item"],
        {"pack_levels": [{"level": "case", "uom": "CS", "quantity": 12, "gtin": zeros}]},
    )
    assert [p.rule for p in problems] == ["gtin_zero"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("12345678901234567890.123456789", "12345678901234567890.123456789"),  # 29 digits
        ("12345678901234567890.1234567890000", "12345678901234567890.123456789"),
        ("0.12345678901234567890123456789012345", "0.12345678901234567890123456789012345"),
        ("123456789012345678901234.000000000000", "123456789012345678901234"),
    ],
)
def test_an_amount_with_more_than_28_digits_is_kept_exactly(sent: str, stored: str) -> None:
    """Normalising under the default 28-digit context stored 12345678901234567890.123456789
    as 12345678901234567890.12345679: another amount, with no error."""
    values, problems = validate(DOMAINS["item"], {"list_price": sent})
    assert problems == [] and values["list_price"] == stored


@given(st.integers(-(10**40), 10**40), st.integers(-45, 30))
def test_an_amount_is_kept_exactly_or_refused_as_too_large(digits: int, exponent: int) -> None:
    """Any number of digits is kept as sent (one spelling); only 10^24 and more is refused."""
    value = Decimal(f"{digits}E{exponent}")  # built from text: exact, whatever its digits
    adapter = TypeAdapter(Amount)
    if value and value.adjusted() >= 24:
        with pytest.raises(ValidationError, match="too large for an amount"):
            adapter.validate_python(value)
        return
    stored = adapter.validate_python(value)
    assert stored == value and Decimal(adapter.dump_python(stored, mode="json")) == value


# Amounts in the exported schema: every one a pattern of the text the model writes, with
# the field's bounds, so the published schema refuses what the API refuses.

# Values for the required fields next to an amount, so only the amount decides.
_REQUIRED = {"level": "case", "uom": "CS", "currency": "EUR", "quantity": "1", "amount": "1"}


def _is_amount(annotation: Any) -> bool:
    """Whether a field holds an Amount (a Decimal, through Optional and Annotated)."""
    return annotation is Decimal or any(_is_amount(a) for a in get_args(annotation))


def _is_list(annotation: Any) -> bool:
    """Whether a field holds a list (through Optional)."""
    return get_origin(annotation) is list or any(_is_list(a) for a in get_args(annotation))


def _amount_records(model: type[BaseModel], value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, smallest record holding value there) for every amount of a model."""
    for name, info in model.model_fields.items():
        base = {
            f: _REQUIRED[f] for f, i in model.model_fields.items() if i.is_required() and f != name
        }
        if _is_amount(info.annotation):
            yield name, {**base, name: value}
        elif (nested := FieldShape(info.annotation).model) is not None:
            for path, inner in _amount_records(nested, value):
                yield (
                    f"{name}.{path}",
                    {**base, name: [inner] if _is_list(info.annotation) else inner},
                )


_AMOUNT_PATHS = [
    (domain, path)
    for domain in sorted(DOMAINS)
    for path, _ in _amount_records(DOMAINS[domain].model, "1")
]


def _amount_record(domain: str, path: str, value: Any) -> dict[str, Any]:
    return dict(_amount_records(DOMAINS[domain].model, value))[path]


def _string_nodes(
    schema: dict[str, Any], node: dict[str, Any], path: list[str]
) -> Iterator[dict[str, Any]]:
    """The string-typed schema nodes a value at path may meet (through $ref, anyOf, items)."""
    if "$ref" in node:
        yield from _string_nodes(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[1]], path)
    for branch in node.get("anyOf", []):
        yield from _string_nodes(schema, branch, path)
    if "items" in node:
        yield from _string_nodes(schema, node["items"], path)
    if path and path[0] in node.get("properties", {}):
        yield from _string_nodes(schema, node["properties"][path[0]], path[1:])
    if not path and node.get("type") == "string":
        yield node


@functools.cache
def _validator(domain: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(DOMAINS[domain].json_schema())


def test_the_amounts_walked_are_every_amount() -> None:
    """The walk the tests below use reaches amounts in nested models and lists too."""
    found = {f"{d}:{p}" for d, p in _AMOUNT_PATHS}
    assert {
        "item:pack_levels.quantity",
        "item:pack_levels.dimensions.length_cm",
        "item:list_price",
        "customer:credit_limit.amount",
        "price:amount",
        "inventory:on_hand",
        "inventory:available",
    } <= found


@pytest.mark.parametrize(("domain", "path"), _AMOUNT_PATHS)
def test_every_amount_in_the_exported_schema_has_a_pattern(domain: str, path: str) -> None:
    """A required amount (pack_levels[].quantity) and one without bounds (on_hand) went out
    as a bare string: the schema took "0", "-3" and "lots" that the API refuses."""
    schema = DOMAINS[domain].json_schema()
    nodes = list(_string_nodes(schema, schema, path.split(".")))
    assert nodes, f"{domain}.{path} not found in the schema"
    for node in nodes:
        assert re.fullmatch(r"\^.*\$", node.get("pattern", "")), (path, node)


@pytest.mark.parametrize(
    ("domain", "path", "refused"),
    [
        ("item", "pack_levels.quantity", "0"),
        ("item", "pack_levels.quantity", "-3"),
        ("item", "pack_levels.quantity", "lots"),
        ("customer", "credit_limit.amount", "-100"),
        ("inventory", "on_hand", "lots"),
        ("inventory", "available", "1e3"),
        ("customer", "credit_limit.amount", "any"),
        ("item", "dimensions.width_cm", "-1"),
    ],
)
def test_the_exported_schema_refuses_amounts_the_model_refuses_or_never_writes(
    domain: str, path: str, refused: str
) -> None:
    record = _amount_record(domain, path, refused)
    assert not _validator(domain).is_valid(record)


@pytest.mark.parametrize(
    ("domain", "path", "accepted"),
    [
        ("item", "pack_levels.quantity", "0.5"),
        ("item", "list_price", "0"),
        ("customer", "credit_limit.amount", "0"),
        ("customer", "credit_limit.amount", "2500.75"),
        ("inventory", "available", "-3"),
        ("inventory", "on_hand", "0.001"),
        ("price", "amount", "123456789012345678901234"),
    ],
)
def test_the_exported_schema_takes_amounts_as_the_model_writes_them(
    domain: str, path: str, accepted: str
) -> None:
    record = _amount_record(domain, path, accepted)
    assert (
        DOMAINS[domain].model.model_validate(record).model_dump(mode="json", exclude_none=True)
        == record
    )
    assert _validator(domain).is_valid(record)


def test_a_credit_limits_bound_stays_on_the_credit_limit() -> None:
    """The bound a field validator puts on credit_limit is no bound on Money elsewhere."""
    schema = DOMAINS["customer"].json_schema()
    money_amount = schema["$defs"]["Money"]["properties"]["amount"]
    assert re.fullmatch(money_amount["pattern"], "-100")


_AMOUNT_TEXT = st.one_of(
    st.text(alphabet="0123456789.-+eE ", max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: format(d, "f")),
    st.integers(-(10**26), 10**26).map(str),
    st.text(max_size=4),
)


@given(st.sampled_from(_AMOUNT_PATHS), _AMOUNT_TEXT)
def test_the_exported_schema_takes_an_amount_only_as_the_model_writes_it(
    where: tuple[str, str], text: str
) -> None:
    """Schema and model agree: the schema takes a text only if the model takes it and writes
    it back unchanged (its one spelling), and it takes whatever the model writes."""
    domain, path = where
    record = _amount_record(domain, path, text)
    try:
        written = (
            DOMAINS[domain].model.model_validate(record).model_dump(mode="json", exclude_none=True)
        )
    except ValidationError:
        assert not _validator(domain).is_valid(record), f"{path}={text!r} is refused by the model"
        return
    assert _validator(domain).is_valid(written), f"{path}: the model wrote {written}"
    assert _validator(domain).is_valid(record) == (written == record)


def test_a_bound_declared_for_a_field_validator_names_an_amount() -> None:
    """DomainSpec.validator_bounds is kept by hand next to the validators: a path that no
    longer names an amount would bound nothing (or break the export)."""
    declared = {(d, p) for d in DOMAINS for p in DOMAINS[d].validator_bounds}
    assert declared and declared <= set(_AMOUNT_PATHS)
