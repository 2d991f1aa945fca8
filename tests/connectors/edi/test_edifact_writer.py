"""EDIFACT writers: UNA, counts, release-character escaping, decimal mark, round trips."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.connectors.edi import (
    EdifactDelimiters,
    EdifactEnvelope,
    EdiWriteError,
    parse_edifact,
    write_invrpt,
    write_pricat,
)
from tests.connectors.edi.strategies import codes, dates, gtins, prices, quantities

WHEN = datetime(2024, 5, 1, 9, 30)
ENV = EdifactEnvelope(
    "5412345000013",
    "5498765000019",
    "IC7",
    sender_qualifier="14",
    recipient_qualifier="14",
    created=WHEN,
    delimiters=EdifactDelimiters(decimal=","),
)


def test_pricat_layout() -> None:
    items = [
        {
            "gtin": "4006381333931",
            "vendor_item": "W+1",
            "description": "IT'S 50% OFF?",
            "price": "12.5",
            "currency": "EUR",
            "uom": "PCE",
            "pack": 6,
            "effective_date": "20240601",
        },
        {"vendor_item": "X-2", "price": "3", "currency": "CHF"},
    ]
    text = write_pricat(items, ENV, document_number="CAT-1")
    assert text.splitlines() == [
        "UNA:+,? '",
        "UNB+UNOC:3+5412345000013:14+5498765000019:14+240501:0930+IC7'",
        "UNH+1+PRICAT:D:96A:UN:EAN008'",
        "BGM+9+CAT-1+9'",
        "DTM+137:20240501:102'",
        "CUX+2:EUR:8'",
        "LIN+1++4006381333931:EN'",
        "PIA+5+W?+1:SA'",
        "IMD+F++:::IT?'S 50% OFF??'",
        "QTY+52:6'",
        "DTM+157:20240601:102'",
        "PRI+AAA:12,5:::1:PCE'",
        "UNT+11+1'",
        "UNH+2+PRICAT:D:96A:UN:EAN008'",
        "BGM+9+CAT-1+9'",
        "DTM+137:20240501:102'",
        "CUX+2:CHF:8'",
        "LIN+1'",
        "PIA+5+X-2:SA'",
        "PRI+AAA:3:::1'",
        "UNT+8+2'",
        "UNZ+2+IC7'",
    ]
    doc = parse_edifact(text)
    assert doc.all_errors == []
    first = doc.records("item")[0]
    assert (first["gtin"], first["id_SA"], first["description"], first["quantity_52"]) == (
        "4006381333931",
        "W+1",
        "IT'S 50% OFF?",
        "6",
    )
    assert [(p["price"], p["currency"]) for p in doc.records("price")] == [
        ("12.5", "EUR"),
        ("3", "CHF"),
    ]


def test_invrpt_layout_and_syntax_4() -> None:
    env = EdifactEnvelope(
        "S", "R", "IC8", syntax_version="4", created=WHEN, write_una=False, test=True
    )
    rows = [
        {
            "gtin": "4006381333931",
            "quantity": "-2.25",
            "uom": "PCE",
            "location": "DC:1",
            "location_name": "MAIN",
            "as_of": "20240430",
        }
    ]
    text = write_invrpt(rows, env, document_number="INV-1")
    assert text.splitlines() == [
        "UNB+UNOC:4+S+R+20240501:0930+IC8++++++1'",
        "UNH+1+INVRPT:D:96A:UN:EAN008'",
        "BGM+35+INV-1+9'",
        "DTM+137:20240501:102'",
        "LIN+1++4006381333931:EN'",
        "QTY+145:-2.25:PCE'",
        "LOC+18+DC?:1:::MAIN'",
        "DTM+366:20240430:102'",
        "UNT+8+1'",
        "UNZ+1+IC8'",
    ]
    doc = parse_edifact(text)
    assert doc.all_errors == []
    [rec] = doc.records("inventory")
    assert (rec["location"], rec["quantity"], rec["as_of"], rec["test_indicator"]) == (
        "DC:1",
        "-2.25",
        "20240430",
        "1",
    )
    # Without a UNA a reader of syntax 4 splits repetitions at "*": a value's "*" is
    # released (review: "BAY 2*4" read back "BAY 2", silently).
    starred = write_invrpt([{**rows[0], "location": "BAY 2*4"}], env, document_number="INV-2")
    assert "BAY 2?*4" in starred
    [back] = parse_edifact(starred).records("inventory")
    assert back["location"] == "BAY 2*4"


def test_unoa_refuses_or_blanks_lower_case() -> None:
    env = EdifactEnvelope("S", "R", "IC9", syntax_id="UNOA", created=WHEN)
    with pytest.raises(EdiWriteError) as info:
        write_pricat([{"gtin": "4006381333931"}, {"vendor_item": "ab"}], env)
    assert (info.value.record_index, info.value.field) == (1, "vendor_item")
    env = EdifactEnvelope("S", "R", "IC9", syntax_id="UNOA", created=WHEN, on_invalid="replace")
    doc = parse_edifact(write_pricat([{"vendor_item": "Ab"}], env))
    assert doc.all_errors == []
    assert doc.records("item")[0]["id_SA"] == "A "


def test_service_character_without_release_is_refused() -> None:
    env = EdifactEnvelope("S", "R", "I", created=WHEN, delimiters=EdifactDelimiters(release=" "))
    with pytest.raises(EdiWriteError) as info:
        write_invrpt([{"vendor_item": "A+B", "quantity": 1}], env)
    assert info.value.field == "vendor_item"
    with pytest.raises(EdiWriteError):
        write_invrpt([{"gtin": "4006381333931"}], ENV)  # no quantity


LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",))
latin_text = st.text(alphabet=LATIN1, min_size=1, max_size=80)
service_codes = st.text(alphabet="AB12-:+?'* ", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"gtin": gtins, "price": prices},
            optional={
                "vendor_item": service_codes,
                "buyer_item": codes,
                "description": latin_text,
                "currency": st.sampled_from(["EUR", "USD"]),
                "uom": st.sampled_from(["PCE", "KGM"]),
                "pack": st.integers(min_value=1, max_value=99).map(str),
                "effective_date": dates,
            },
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([".", ","]),
)
def test_pricat_round_trip(items: list[dict[str, str]], decimal: str) -> None:
    env = EdifactEnvelope(
        "S", "R", "IC1", created=WHEN, delimiters=EdifactDelimiters(decimal=decimal)
    )
    doc = parse_edifact(write_pricat(items, env))
    assert doc.all_errors == []
    by_currency: dict[str, list[dict[str, str]]] = {}
    for item in items:
        by_currency.setdefault(item.get("currency", ""), []).append(item)
    expected = [i for chunk in by_currency.values() for i in chunk]
    got_items, got_prices = doc.records("item"), doc.records("price")
    for want, item, price in zip(expected, got_items, got_prices, strict=True):
        assert item["gtin"] == price["gtin"] == want["gtin"]
        assert item.get("id_SA") == want.get("vendor_item")
        assert item.get("id_IN") == want.get("buyer_item")
        assert item.get("description") == want.get("description")
        assert item.get("quantity_52") == want.get("pack")
        assert item.get("date_157") == want.get("effective_date")
        assert price["price"] == want["price"]
        assert price.get("currency") == want.get("currency")
        assert price.get("price_unit") == want.get("uom")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"gtin": gtins, "quantity": quantities},
            optional={
                "location": service_codes,
                "location_name": latin_text,
                "uom": st.sampled_from(["PCE", "KGM"]),
                "as_of": dates,
                "quantity_qualifier": st.sampled_from(["145", "198"]),
            },
        ),
        min_size=1,
        max_size=5,
    )
)
def test_invrpt_round_trip(rows: list[dict[str, str]]) -> None:
    doc = parse_edifact(write_invrpt(rows, ENV))
    assert doc.all_errors == []
    got = doc.records("inventory")
    for want, rec in zip(rows, got, strict=True):
        assert (rec["gtin"], rec["quantity"]) == (want["gtin"], want["quantity"])
        assert rec["quantity_qualifier"] == want.get("quantity_qualifier", "145")
        assert rec.get("uom") == want.get("uom")
        assert rec["as_of"] == want.get("as_of", "20240501")
        if "location" in want:
            assert rec["location"] == want["location"]
            assert rec.get("location_name") == want.get("location_name")
