"""The declarative mapping language: every operation, and failures that name field and rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mastersync.domain.mapping.mapper import Mapper, MappingFailed
from mastersync.domain.mapping.spec import MappingSpec
from mastersync.domain.mapping.values import Ref
from mastersync.domain.problems import ConfigError


def mapper(fields: dict[str, Any], domain: str = "item", **spec: Any) -> Mapper:
    doc = {"key": "id", "fields": fields, **spec}
    return Mapper("erp", domain, MappingSpec.model_validate(doc))


def values(fields: dict[str, Any], record: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return mapper(fields, **spec).map({"id": "1", **record}).values


def failures(fields: dict[str, Any], record: dict[str, Any]) -> set[tuple[str, str]]:
    with pytest.raises(MappingFailed) as exc:
        mapper(fields).map({"id": "1", **record})
    return {(p.field or "", p.rule) for p in exc.value.problems}


def test_rename_nested_path_and_constant() -> None:
    out = values(
        {"name": "title", "brand": "meta.brand", "category": {"const": "PPE"}},
        {"title": " Gloves ", "meta": {"brand": "Ansell"}},
    )
    assert out == {"name": "Gloves", "brand": "Ansell", "category": "PPE"}


def test_quoted_keys_with_spaces() -> None:
    assert values({"name": '"Item Name"'}, {"Item Name": "Tape"}) == {"name": "Tape"}


def test_jmespath_selects_a_localised_value() -> None:
    rec = {
        "values": {
            "description": [
                {"locale": "de_DE", "data": "Band"},
                {"locale": "en_US", "data": "Tape"},
            ]
        }
    }
    out = values({"description": "values.description[?locale=='en_US'].data | [0]"}, rec)
    assert out == {"description": "Tape"}


def test_value_map_and_what_happens_to_unmapped_values() -> None:
    spec = {"lifecycle_state": {"from": "st", "map": {"A": "active", "D": "discontinued"}}}
    assert values(spec, {"st": "A"}) == {"lifecycle_state": "active"}
    assert failures(spec, {"st": "Q"}) == {("lifecycle_state", "value_map")}
    keep = {"brand": {"from": "b", "map": {"3m": "3M"}, "map_other": "keep"}}
    assert values(keep, {"b": "Tesa"}) == {"brand": "Tesa"}


def test_number_parsing_by_locale_and_by_separators() -> None:
    out = values(
        {
            "list_price": {"from": "p", "number": {"locale": "de_DE"}},
            "cost_price": {"from": "c", "number": {"decimal": ",", "group": " "}},
        },
        {"p": "1.234,50", "c": "1 000,25"},
    )
    assert out == {"list_price": Decimal("1234.50"), "cost_price": Decimal("1000.25")}
    assert failures(
        {"list_price": {"from": "p", "number": {"locale": "de_DE"}}}, {"p": "twelve"}
    ) == {("list_price", "number")}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1.234,5", Decimal("1234.5")),
        ("12,50", Decimal("12.50")),
        ("1234,5", Decimal("1234.5")),
        ("-1.234.567,89", Decimal("-1234567.89")),
        ("7", Decimal(7)),
        ("1.234", Decimal(1234)),
        ("1,234.5", None),  # the other convention: read as 1.2345 before
        ("1.5", None),  # read as 15 before
        ("12.34,5", None),
        ("1,2,3", None),
    ],
)
def test_separators_read_only_numbers_written_that_way(text: str, number: Decimal | None) -> None:
    spec = {"list_price": {"from": "p", "number": {"decimal": ",", "group": "."}}}
    if number is not None:
        assert values(spec, {"p": text}) == {"list_price": number}
    else:
        assert failures(spec, {"p": text}) == {("list_price", "number")}


def test_a_decimal_separator_alone_refuses_grouped_numbers() -> None:
    spec = {"list_price": {"from": "p", "number": {"decimal": ","}}}
    assert values(spec, {"p": "0,5"}) == {"list_price": Decimal("0.5")}
    assert failures(spec, {"p": "1.234,5"}) == {("list_price", "number")}


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u202f", "\u2009"])
@pytest.mark.parametrize("locale", ["fr_FR", "nb_NO", "pl_PL"])
def test_locales_grouping_with_a_space_take_any_space(locale: str, space: str) -> None:
    """fr_FR groups digits with U+202F and babel took nothing else: '1 234,50' and
    '1\u00a0234,50', as exports write them, were 'not a number for locale fr_FR'."""
    spec = {"list_price": {"from": "p", "number": {"locale": locale}}}
    assert values(spec, {"p": f"1{space}234,50"}) == {"list_price": Decimal("1234.50")}


def test_a_locale_grouping_with_a_mark_still_refuses_a_space() -> None:
    spec = {"list_price": {"from": "p", "number": {"locale": "de_DE"}}}
    assert failures(spec, {"p": "1 234,50"}) == {("list_price", "number")}


@pytest.mark.parametrize(
    ("number", "said"),
    [
        ({"decimal": ",", "group": ","}, "'decimal' and 'group' are both ','"),
        ({"group": "."}, "'group' is '.', which is the default 'decimal'"),
        ({"locale": "de_DE", "decimal": ","}, "a 'locale' or the separators"),
    ],
)
def test_number_settings_that_would_parse_silently_wrong_are_refused(
    number: dict[str, str], said: str
) -> None:
    with pytest.raises(ValidationError, match=said):
        mapper({"list_price": {"from": "p", "number": number}})


@settings(max_examples=200)
@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    st.sampled_from(["de_DE", "en_US", "fr_FR", "de_CH", "en_IN"]),
)
def test_numbers_as_a_locale_writes_them_read_back_as_the_same_number(
    amount: Decimal, locale: str
) -> None:
    from babel.numbers import format_decimal

    text = format_decimal(amount, locale=locale)  # as a system set to that locale writes it
    assert values({"list_price": {"from": "p", "number": {"locale": locale}}}, {"p": text}) == {
        "list_price": amount
    }


def test_unit_conversion_fixed_and_per_record() -> None:
    out = values(
        {
            "net_weight_kg": {"from": "w", "number": True, "unit": {"from": "lb", "to": "kg"}},
            "dimensions.length_cm": {"from": "l", "unit": {"from_path": "lu", "to": "cm"}},
        },
        {"w": "2", "l": "10", "lu": "INH"},
    )
    assert out["net_weight_kg"] == Decimal("0.907185")
    assert out["dimensions"] == {"length_cm": Decimal("25.400000")}


@pytest.mark.parametrize("unit", ["stone-ish", "\x00", "(", "kg/"])
def test_unknown_unit_is_a_config_error(unit: str) -> None:
    """Whatever pint's parser raises on text that is no unit (an AssertionError on a NUL,
    found by the landscape fuzz test) is a config error naming the field."""
    with pytest.raises(ConfigError) as exc:
        mapper({"net_weight_kg": {"from": "w", "unit": {"from": unit, "to": "kg"}}})
    assert exc.value.loc[:2] == ("fields", "net_weight_kg")


def test_concatenation_skips_empty_parts() -> None:
    out = values(
        {"name": {"concat": ["a", "b", "c"], "sep": " - "}},
        {"a": "Nitrile", "b": "", "c": "gloves"},
    )
    assert out == {"name": "Nitrile - gloves"}


def test_dates_by_format_by_locale_and_iso() -> None:
    spec = {
        "valid_from": {"from": "a", "date": {"format": "%d.%m.%Y"}},
        "valid_to": {"from": "b", "date": {"locale": "en_US"}},
        "price_list": {"from": "c", "date": True},
    }
    out = (
        Mapper("erp", "price", MappingSpec.model_validate({"key": "id", "fields": spec}))
        .map({"id": "1", "a": "24.12.2026", "b": "12/31/26", "c": "2026-01-02"})
        .values
    )
    assert out == {
        "valid_from": dt.date(2026, 12, 24),
        "valid_to": dt.date(2026, 12, 31),
        "price_list": dt.date(2026, 1, 2),
    }


@pytest.mark.parametrize(
    ("locale", "text", "day"),
    [
        ("en_US", "12/01/2026", dt.date(2026, 12, 1)),
        ("en_US", "1/13/2026", dt.date(2026, 1, 13)),
        ("en_US", "13/01/2026", None),  # day first: was read as 13 January
        ("en_US", "2026-01-13", dt.date(2026, 1, 13)),  # ISO is read in any locale
        ("de_DE", "13.01.2026", dt.date(2026, 1, 13)),
        ("de_DE", "01.13.2026", None),  # month first: was read as 13 January
        ("en_GB", "01/13/2026", None),
        ("fr_CA", "04/03/2026", dt.date(2026, 3, 4)),  # short format orders y-M-d there
        ("en_CA", "03/04/2026", dt.date(2026, 3, 4)),
    ],
)
def test_a_locale_date_in_the_other_order_fails_not_swapped(
    locale: str, text: str, day: dt.date | None
) -> None:
    spec = {"valid_from": {"from": "a", "date": {"locale": locale}}}
    if day is None:
        assert failures(spec, {"a": text}) == {("valid_from", "date")}
    else:
        assert values(spec, {"a": text}) == {"valid_from": day}
    moment = {"as_of": {"from": "t", "datetime": {"locale": locale}}}
    if day is None:
        assert failures(moment, {"t": f"{text} 10:15"}) == {("as_of", "datetime")}


def test_a_datetime_by_locale_keeps_its_time() -> None:
    """babel parses dates and times, not both at once: the time after the date was dropped,
    and an inventory snapshot of 10:15 became one of midnight."""
    spec = {"as_of": {"from": "t", "datetime": {"locale": "de_DE"}}}
    at = dt.datetime(2026, 3, 1, 10, 15, tzinfo=dt.UTC)
    assert values(spec, {"t": "01.03.2026 10:15"}) == {"as_of": at}
    assert values(spec, {"t": "01.03.2026, 10:15:30"}) == {"as_of": at.replace(second=30)}
    assert values(spec, {"t": "01.03.2026"}) == {"as_of": at.replace(hour=0, minute=0)}
    us = {"as_of": {"from": "t", "datetime": {"locale": "en_US"}}}
    assert values(us, {"t": "3/1/2026 10:15 PM"}) == {"as_of": at.replace(hour=22)}
    assert failures(spec, {"t": "01.03.2026 25:99"}) == {("as_of", "datetime")}


def test_a_naive_datetime_is_read_in_the_zone_the_mapping_names() -> None:
    spec = {
        "as_of": {
            "from": "t",
            "datetime": {"format": "%d.%m.%Y %H:%M", "timezone": "Europe/Berlin"},
        }
    }
    summer = dt.datetime(2026, 7, 1, 10, 15, tzinfo=dt.UTC)
    assert values(spec, {"t": "01.07.2026 12:15"}) == {"as_of": summer}
    # A naive datetime as an SQL source hands it over, likewise; an aware one is kept.
    berlin = {"as_of": {"from": "t", "datetime": {"timezone": "Europe/Berlin"}}}
    assert values(berlin, {"t": dt.datetime(2026, 7, 1, 12, 15)}) == {"as_of": summer}
    assert values(berlin, {"t": summer}) == {"as_of": summer}
    assert values({"as_of": {"from": "t", "datetime": True}}, {"t": "2026-07-01T10:15"}) == {
        "as_of": summer
    }
    with pytest.raises(ValidationError, match="unknown time zone"):
        mapper({"as_of": {"from": "t", "datetime": {"timezone": "Mars/Base"}}})


def test_defaults_and_missing_fields() -> None:
    assert values({"brand": {"from": "b", "default": "Generic"}}, {}) == {"brand": "Generic"}
    assert values({"brand": {"from": "b", "optional": True}}, {}) == {}
    # A mapping that reads a field the record lacks is an error that names both.
    assert failures({"brand": "b"}, {}) == {("brand", "missing_field")}


def test_each_maps_a_list_of_objects() -> None:
    spec = {
        "contacts": {
            "each": "people",
            "fields": {"name": {"concat": ["f", "l"]}, "email": {"from": "e", "optional": True}},
        }
    }
    rec = {"people": [{"f": "Ana", "l": "Lima", "e": "ana@x.example"}, {"f": "Bo", "l": "Ek"}]}
    out = (
        Mapper("crm", "customer", MappingSpec.model_validate({"key": "id", "fields": spec}))
        .map({"id": "1", **rec})
        .values
    )
    assert out == {"contacts": [{"name": "Ana Lima", "email": "ana@x.example"}, {"name": "Bo Ek"}]}


def test_list_templates_with_conditions_and_scalar_lists() -> None:
    spec = {
        "pack_levels": [
            {"level": {"const": "each"}, "uom": {"const": "EA"}, "quantity": {"const": 1}},
            {"when": "cq", "level": {"const": "case"}, "uom": {"const": "CS"}, "quantity": "cq"},
        ],
        "images": ["img1", "img2"],
    }
    without = values(spec, {"cq": "", "img1": "a.jpg"})
    assert without == {
        "pack_levels": [{"level": "each", "uom": "EA", "quantity": 1}],
        "images": ["a.jpg"],
    }
    with_case = values(spec, {"cq": "12", "img1": None})
    assert with_case["pack_levels"][1] == {"level": "case", "uom": "CS", "quantity": "12"}


def test_object_with_a_condition() -> None:
    spec = {
        "credit_limit": {"fields": {"amount": "cl", "currency": {"const": "EUR"}}, "when": "cl"}
    }
    m = Mapper("crm", "customer", MappingSpec.model_validate({"key": "id", "fields": spec}))
    assert m.map({"id": "1", "cl": None}).values == {}
    assert m.map({"id": "1", "cl": 5}).values == {"credit_limit": {"amount": 5, "currency": "EUR"}}


def test_references_are_left_for_the_pipeline_to_resolve() -> None:
    m = Mapper(
        "erp",
        "price",
        MappingSpec.model_validate(
            {"key": "id", "fields": {"item": {"from": "sku", "ref": {"domain": "item"}}}}
        ),
    )
    assert m.map({"id": "1", "sku": "A1"}).values == {"item": Ref("item", "erp", "A1")}


def test_versions_of_each_kind() -> None:
    counter = mapper({}, version={"from": "v", "kind": "counter"})
    assert counter.map({"id": "1", "v": "42"}).version == 42
    stamp = mapper({}, version={"from": "t", "kind": "timestamp", "timezone": "Europe/Berlin"})
    mapped = stamp.map({"id": "1", "t": "2026-03-01 10:00:00"})
    assert mapped.version == "2026-03-01T09:00:00.000000Z"
    assert mapped.timestamp == mapped.version
    assert mapper({}).map({"id": "1"}).version is None  # arrival order
    with pytest.raises(MappingFailed) as exc:
        counter.map({"id": "1", "v": "x"})
    assert [(p.field, p.rule) for p in exc.value.problems] == [("version", "counter")]


def test_all_failures_of_a_record_are_reported_together() -> None:
    spec = {
        "name": "n",
        "list_price": {"from": "p", "number": True},
        "lifecycle_state": {"from": "s", "map": {"A": "active"}},
    }
    assert failures(spec, {"p": "x", "s": "Z"}) == {
        ("name", "missing_field"),
        ("list_price", "number"),
        ("lifecycle_state", "value_map"),
    }


def test_empty_key_is_refused() -> None:
    with pytest.raises(MappingFailed) as exc:
        mapper({}).map({"id": " "})
    assert [(p.field, p.rule) for p in exc.value.problems] == [("key", "required")]


def test_strict_mapping_reports_unmapped_source_fields() -> None:
    m = mapper({"name": "n"}, strict=True, ignore=["audit"])
    with pytest.raises(MappingFailed) as exc:
        m.map({"id": "1", "n": "x", "audit": "y", "colour": "red"})
    assert [(p.field, p.rule) for p in exc.value.problems] == [("colour", "unknown_field")]


def test_header_check_lists_required_columns_only() -> None:
    m = mapper(
        {"name": "n", "brand": {"from": "b", "optional": True}, "description": "values.d[0]"}
    )
    assert m.missing_columns(["id", "x"]) == ["n"]


def test_header_check_needs_the_timestamp_and_a_needed_values_unit_column() -> None:
    """A file without them failed every record ("timestamp [missing_field]", "no unit in
    'LE'") instead of being refused whole."""
    m = mapper(
        {
            "dimensions.length_cm": {"from": "l", "unit": {"from_path": "lu", "to": "cm"}},
            "net_weight_kg": {
                "from": "w",
                "optional": True,
                "unit": {"from_path": "wu", "to": "kg"},
            },
        },
        timestamp="changed",
    )
    assert m.missing_columns(["id", "l", "w"]) == ["changed", "lu"]
    optional = mapper({"name": "n"}, timestamp={"from": "changed", "optional": True})
    assert optional.missing_columns(["id", "n"]) == []


def test_invalid_expression_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as exc:
        mapper({"name": "Item Name"})
    assert "double quotes" in exc.value.message
    assert exc.value.loc == ("fields", "name")


def test_one_source_per_value() -> None:
    with pytest.raises(ValueError, match="exactly one source"):
        MappingSpec.model_validate({"key": "id", "fields": {"name": {"from": "a", "const": 1}}})


_ODD = st.sampled_from(["1e30", "NaN", "Infinity", "-inf", "1e400000000", "12,5", "lb", "x"])
_RAW = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | _ODD,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=3)
    ),
    max_leaves=6,
)
_EVERY_KIND = {
    "sku": "k",
    "list_price": {"from": "p", "number": True},
    "cost_price": {"from": "c", "number": {"locale": "de_DE"}},
    "net_weight_kg": {"from": "w", "number": True, "unit": {"from": "lb", "to": "kg"}},
    "gross_weight_kg": {"from": "g", "number": True, "unit": {"from_path": "gu", "to": "kg"}},
    "name": {"concat": ["n", "a.b"], "sep": " "},
    "lifecycle_state": {"from": "s", "map": {"A": "active"}, "map_other": "keep"},
    "description": "length(d)",
    "brand": {"from": "b", "default": "none"},
}


@settings(max_examples=300)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys("pcwgunasdb", _RAW)))
def test_whatever_a_record_holds_mapping_it_fails_only_as_a_mapping_failure(
    record: dict[str, Any],
) -> None:
    """Bad input fails its own record with field and rule named, never the batch: no value
    escapes as another exception (Decimal's InvalidOperation, JMESPath's type errors)."""
    record = {"k": "K1", **{("gu" if k == "u" else k): v for k, v in record.items()}}
    try:
        mapper(_EVERY_KIND).map({"id": "1", **record})
    except MappingFailed as exc:
        problems = exc.problems
    else:
        problems = []
    assert all(p.field and p.rule for p in problems)


def test_out_of_range_numbers_and_expression_type_errors_name_field_and_rule() -> None:
    weight = {"net_weight_kg": {"from": "w", "number": True, "unit": {"from": "lb", "to": "kg"}}}
    assert failures(weight, {"w": "1e30"}) == {("net_weight_kg", "unit")}
    assert failures(weight, {"w": "NaN"}) == {("net_weight_kg", "number")}
    assert failures({"description": "length(d)"}, {"d": None}) == {("description", "unexpected")}


def message(fields: dict[str, Any], record: dict[str, Any], **spec: Any) -> str:
    with pytest.raises(MappingFailed) as exc:
        mapper(fields, **spec).map({"id": "1", **record})
    (problem,) = exc.value.problems
    return problem.message


@pytest.mark.parametrize(
    ("fields", "record", "said"),
    [
        # Values as JSON writes them, not Python's repr ("Decimal('2.5')", "True").
        ({"list_price": {"from": "p", "number": True}}, {"p": True}, "expected a number, got true"),
        (
            {
                "net_weight_kg": {
                    "from": "w",
                    "number": True,
                    "unit": {"from_path": "u", "to": "kg"},
                }
            },
            {"w": "2.5", "u": ""},
            "no unit in 'u' to convert 2.5 from",
        ),
        (
            {"net_weight_kg": {"from": "w", "number": True, "unit": {"from": "g", "to": "kg"}}},
            {"w": "1E+400"},
            "1E+400 is out of range to convert",
        ),
        # It has the format's shape; the day is what does not exist.
        (
            {"launch_date": {"from": "d", "date": {"format": "%d.%m.%Y"}}},
            {"d": "31.02.2024"},
            "'31.02.2024' is no date: day is out of range for month",
        ),
        (
            {"launch_date": {"from": "d", "date": {"format": "%d.%m.%Y"}}},
            {"d": "2024-02-01"},
            "'2024-02-01' does not match %d.%m.%Y",
        ),
    ],
)
def test_messages_quote_values_as_the_source_wrote_them(
    fields: dict[str, Any], record: dict[str, Any], said: str
) -> None:
    assert message(fields, record) == said


def test_a_missing_version_field_is_not_called_empty() -> None:
    spec = {"version": {"from": "updated", "kind": "counter"}}
    assert (
        message({"name": "n"}, {"n": "x"}, **spec)
        == "source version 'updated' is not in the record"
    )
    assert message({"name": "n"}, {"n": "x", "updated": ""}, **spec) == (
        "source version 'updated' is empty"
    )


def test_root_fields_of_paths_with_slices_functions_and_projections() -> None:
    """A slice's bounds are numbers in the JMESPath tree: the walk failed on them, and a
    landscape with `images[:2]` in a subscription no longer loaded."""
    from mastersync.domain.mapping.paths import root_fields

    assert root_fields("images[:2]") == {"images"}
    assert root_fields("length(pack_levels[0:1]) > `0`") == {"pack_levels"}
    assert root_fields("sort_by(addresses, &city)[0].city") == {"addresses"}
    assert root_fields("items[?qty > `1`].sku | [0]") == {"items"}
    assert root_fields("{a: name, b: brand.x}") == {"name", "brand"}
    assert root_fields("length(@)") == set()


def test_a_sources_numbers_for_text_fields_are_their_digits() -> None:
    """JSON exports write ids and EANs as numbers: 'Input should be a valid string (got
    10001)' rejected the record. Numbers for numeric fields and booleans stay as they are."""
    out = values(
        {"sku": "no", "gtin": "ean", "net_weight_kg": "kg", "name": "flag"},
        {"no": 10001, "ean": 4006381333931, "kg": 2, "flag": True},
    )
    assert out == {"sku": "10001", "gtin": "4006381333931", "net_weight_kg": 2, "name": True}
    customer = mapper({"customer_number": "no"}, domain="customer").map({"id": "1", "no": 7})
    assert customer.values == {"customer_number": "7"}


def test_a_sources_whole_floats_for_text_fields_are_their_digits_while_exact() -> None:
    """A JSON export writing 4006381333931.0 (a float column) was refused as no string; a
    float past 2**53 is left as sent (its digits may not be the source's), and refused."""
    out = values(
        {"sku": "no", "gtin": "ean", "name": "big", "description": "half"},
        {"no": 12.0, "ean": 4006381333931.0, "big": 1e17, "half": 2.5},
    )
    assert out == {"sku": "12", "gtin": "4006381333931", "name": 1e17, "description": 2.5}


def test_numbers_for_nested_text_fields_are_their_digits_too() -> None:
    """An Excel export's numeric postcode or case EAN rejected every record ('addresses.0.
    postal_code [string_type]', 'pack_levels.1.gtin'): only top-level fields were turned."""
    customer = mapper(
        {
            "addresses": [{"postal_code": "zip", "city": "city", "lines": ["street"]}],
            "credit_limit.amount": "limit",
        },
        domain="customer",
    ).map({"id": "1", "zip": 37028, "city": "Göttingen", "street": 12, "limit": 5000})
    assert customer.values == {
        "addresses": [{"postal_code": "37028", "city": "Göttingen", "lines": ["12"]}],
        "credit_limit": {"amount": 5000},
    }
    item = values(
        {"pack_levels": [{"level": {"const": "case"}, "gtin": "case_ean", "quantity": "qty"}]},
        {"case_ean": 4006381333931, "qty": 12},
    )
    assert item == {"pack_levels": [{"level": "case", "gtin": "4006381333931", "quantity": 12}]}


def test_turning_nested_numbers_into_digits_leaves_the_source_record_as_sent() -> None:
    """Review: a nested value copied whole from the source had its number turned in the
    source record itself, which the inbox and lineage keep as it was sent."""
    source = {"id": "1", "addr": [{"postal_code": 37028, "city": "Göttingen"}]}
    out = mapper({"addresses": "addr"}, domain="customer").map(source)
    assert out.values["addresses"] == [{"postal_code": "37028", "city": "Göttingen"}]
    assert source["addr"] == [{"postal_code": 37028, "city": "Göttingen"}]


def test_round_reads_a_float_by_the_digits_written_as_number_does() -> None:
    """Decimal(2.675) is 2.67499999...: rounding the float's binary value made 2.67 of a
    JSON 2.675, while `number: true` read it as 2.675 and rounded to 2.68."""
    for spec in ({"from": "p", "round": 2}, {"from": "p", "number": True, "round": 2}):
        assert values({"list_price": spec}, {"p": 2.675}) == {"list_price": Decimal("2.68")}
    assert values({"list_price": {"from": "p", "round": 1}}, {"p": 7}) == {
        "list_price": Decimal("7.0")
    }


def test_round_of_what_is_no_number_names_the_value_and_the_rule() -> None:
    """Text with a decimal comma failed as 'unexpected': "InvalidOperation: [<class
    'decimal.ConversionSyntax'>]", naming neither the value nor what to do."""
    price = {"list_price": {"from": "p", "round": 2}}
    assert failures(price, {"p": "2,5"}) == {("list_price", "round")}
    assert message(price, {"p": "2,5"}) == "'2,5' is not a number (add a 'number' step)"
    assert message(price, {"p": "Infinity"}) == "'Infinity' is not a finite number"
    assert message(price, {"p": "1E+400"}) == "'1E+400' is out of range to round"
    assert message(price, {"p": True}) == "expected a number to round, got true"


@pytest.mark.parametrize(
    ("text", "day"),
    [("13/1/2026 10:15", None), ("1/13/2026 10:15", dt.date(2026, 1, 13))],
)
def test_a_locale_date_with_a_time_part_is_checked_for_its_order_too(
    text: str, day: dt.date | None
) -> None:
    """The check against babel's day-month swap ran on texts of exactly three numbers: a
    time after the date let 13/1/2026 10:15 through as 13 January for en_US."""
    spec = {"valid_from": {"from": "d", "date": {"locale": "en_US"}}}
    if day is None:
        assert failures(spec, {"d": text}) == {("valid_from", "date")}
    else:
        assert values(spec, {"d": text}) == {"valid_from": day}


def test_concat_with_trim_false_keeps_its_parts_spaces() -> None:
    """Every part was stripped whatever `trim` said: fixed-width parts lost their padding."""
    kept = {"name": {"concat": ["a", "b"], "sep": "", "trim": False}}
    assert values(kept, {"a": "AB  ", "b": "12"}) == {"name": "AB  12"}
    # A part that says how it trims keeps its own say.
    own = {"name": {"concat": [{"from": "a", "trim": True}, "b"], "sep": "|", "trim": False}}
    assert values(own, {"a": "AB  ", "b": " 12"}) == {"name": "AB| 12"}
    trimmed = {"name": {"concat": ["a", "b"], "sep": "|"}}
    assert values(trimmed, {"a": "AB  ", "b": " 12"}) == {"name": "AB|12"}
