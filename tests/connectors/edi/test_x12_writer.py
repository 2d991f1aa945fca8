"""X12 writers: valid envelopes, refused or replaced delimiter characters, and round trips."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.connectors.edi import (
    EdiWriteError,
    X12Delimiters,
    X12Envelope,
    parse_x12,
    write_832,
    write_846,
)
from tests.connectors.edi.strategies import codes, dates, gtins, prices, quantities, texts

ENV = X12Envelope(
    "ACME", "BIGSTORE", interchange_control=17, group_control=5, created=datetime(2024, 5, 1, 9, 30)
)


def test_832_envelope_counts_and_control_numbers() -> None:
    items = [
        {
            "gtin": "012345678905",
            "vendor_item": "W-100",
            "description": "WIDGET",
            "price": "12.50",
            "currency": "USD",
            "uom": "EA",
            "pack": 12,
            "inner_pack": 3,
            "effective_date": "20240601",
        },
        {"gtin": "4006381333931", "price": Decimal("1.99"), "currency": "EUR"},
        {"vendor_item": "X-1", "buyer_item": "B-1", "price": "5", "currency": "USD"},
    ]
    text = write_832(items, ENV, catalog_number="CAT-9")
    assert text.splitlines()[:3] == [
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*BIGSTORE       *240501*0930*U*00401"
        "*000000017*0*P*:~",
        "GS*SC*ACME*BIGSTORE*20240501*0930*5*X*004010~",
        "ST*832*0001~",
    ]
    assert "LIN*2*VN*X-1*BP*B-1~" in text
    assert "PO4*12*************3~" in text
    assert text.endswith("GE*2*5~\nIEA*1*000000017~\n")
    doc = parse_x12(text)
    assert doc.all_errors == []
    assert [(ts.control_number, len(ts.segments)) for ts in doc.sets] == [("0001", 12), ("0002", 7)]
    usd = [r["currency"] for r in doc.records("price")]
    assert usd == ["USD", "USD", "EUR"]  # one set per currency, USD first as first seen
    first = doc.records("item")[0]
    assert (first["gtin"], first["id_VN"], first["pack"], first["inner_pack"]) == (
        "012345678905",
        "W-100",
        "12",
        "3",
    )
    assert doc.records("price")[0]["date_007"] == "20240601"


def test_846_one_set_per_location() -> None:
    rows = [
        {
            "gtin": "012345678905",
            "location": "DC1",
            "location_name": "CENTRAL",
            "quantity": 40,
            "uom": "EA",
            "as_of": "20240430",
        },
        {"vendor_item": "P-2", "location": "DC2", "quantity": "-2.5", "quantity_qualifier": "QH"},
        {"gtin": "4006381333931", "location": "DC1", "quantity": "0"},
    ]
    doc = parse_x12(write_846(rows, ENV, report_number="R-1"))
    assert doc.all_errors == []
    got = [
        (
            r["location"],
            r.get("gtin", r.get("id_VN")),
            r["quantity_qualifier"],
            r["quantity"],
            r["as_of"],
        )
        for r in doc.records("inventory")
    ]
    assert got == [
        ("DC1", "012345678905", "33", "40", "20240430"),
        ("DC1", "4006381333931", "33", "0", "20240501"),
        ("DC2", "P-2", "QH", "-2.5", "20240501"),
    ]
    assert doc.records()[0]["location_name"] == "CENTRAL"
    assert doc.records()[0]["report_number"] == "R-1"


def test_delimiter_in_data_is_refused_with_its_place() -> None:
    items = [{"gtin": "012345678905"}, {"vendor_item": "A*B"}]
    with pytest.raises(EdiWriteError) as info:
        write_832(items, ENV)
    assert (info.value.record_index, info.value.field) == (1, "vendor_item")
    assert "'*'" in str(info.value)


def test_delimiter_in_data_can_be_replaced() -> None:
    env = X12Envelope("ACME", "BIGSTORE", 1, 1, on_invalid="replace")
    text = write_832([{"vendor_item": "A*B:C~D", "description": "TAB\tHERE"}], env)
    doc = parse_x12(text)
    assert doc.all_errors == []
    item = doc.records("item")[0]
    assert (item["id_VN"], item["description"]) == ("A B C D", "TAB HERE")


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"gtin": "012345678906"}, "gtin"),  # wrong check digit
        ({"gtin": "012345678905", "price": 1.5}, "price"),  # floats are refused
        ({"gtin": "012345678905", "price": "1,50"}, "price"),
        ({"gtin": "012345678905", "colour": "red"}, "colour"),
        ({"description": "no id"}, ""),
        ({"gtin": "012345678905", "effective_date": "2024-06-01"}, "effective_date"),
    ],
)
def test_invalid_input_is_refused(record: dict[str, Any], field: str) -> None:
    with pytest.raises(EdiWriteError) as info:
        write_832([record], ENV)
    assert info.value.record_index == 0
    assert info.value.field == field


def test_bad_envelope_is_refused() -> None:
    with pytest.raises(EdiWriteError):
        write_832([{"gtin": "012345678905"}], X12Envelope("A" * 16, "B", 1, 1))
    clash = X12Envelope("A", "B", 1, 1, delimiters=X12Delimiters(element="~", segment="~"))
    with pytest.raises(EdiWriteError):
        write_832([{"gtin": "012345678905"}], clash)


def test_version_00501_declares_the_repetition_separator() -> None:
    env = X12Envelope("A", "B", 1, 1, version="00501", group_version="005010")
    text = write_846([{"gtin": "012345678905", "quantity": 1}], env)
    assert "*^*00501*" in text.splitlines()[0]
    doc = parse_x12(text)
    assert doc.all_errors == []
    assert doc.interchanges[0].delimiters.repetition == "^"


DELIMS = "*:~^"
items_strategy = st.lists(
    st.fixed_dictionaries(
        {"gtin": gtins, "price": prices},
        optional={
            "vendor_item": codes,
            "description": texts(DELIMS),
            "currency": st.sampled_from(["USD", "EUR", "GBP"]),
            "uom": st.sampled_from(["EA", "CA", "BX"]),
            "pack": st.integers(min_value=1, max_value=999).map(str),
            "effective_date": dates,
        },
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(items_strategy)
def test_832_round_trip(items: list[dict[str, str]]) -> None:
    doc = parse_x12(write_832(items, ENV))
    assert doc.all_errors == []
    by_currency: dict[str, list[dict[str, str]]] = {}
    for item in items:
        by_currency.setdefault(item.get("currency", ""), []).append(item)
    expected = [i for chunk in by_currency.values() for i in chunk]
    got_items, got_prices = doc.records("item"), doc.records("price")
    assert len(got_items) == len(got_prices) == len(items)
    for want, item, price in zip(expected, got_items, got_prices, strict=True):
        assert item["gtin"] == price["gtin"] == want["gtin"]
        assert item.get("id_VN") == want.get("vendor_item")
        assert item.get("description") == want.get("description")
        assert item.get("pack") == want.get("pack")
        assert price["price"] == want["price"]
        assert price.get("currency") == want.get("currency")
        assert price["price_uom"] == want.get("uom", "EA")
        assert price.get("date_007") == want.get("effective_date")


inventory_strategy = st.lists(
    st.fixed_dictionaries(
        {"gtin": gtins, "quantity": quantities},
        optional={
            "location": codes,
            "uom": st.sampled_from(["EA", "CA"]),
            "as_of": dates,
            "description": texts(DELIMS),
        },
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(inventory_strategy)
def test_846_round_trip(rows: list[dict[str, str]]) -> None:
    doc = parse_x12(write_846(rows, ENV))
    assert doc.all_errors == []
    by_location: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_location.setdefault(row.get("location", ""), []).append(row)
    expected = [r for chunk in by_location.values() for r in chunk]
    got = doc.records("inventory")
    assert len(got) == len(rows)
    for want, rec in zip(expected, got, strict=True):
        assert (rec["gtin"], rec["quantity"]) == (want["gtin"], want["quantity"])
        assert rec.get("location") == want.get("location")
        assert rec["uom"] == want.get("uom", "EA")
        assert rec["as_of"] == want.get("as_of", "20240501")
        assert rec.get("description") == want.get("description")
