"""The reconciliation diff: every record in exactly one bucket, formatting is no drift, real
differences are named by field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.delivery import idempotency_key
from mastersync.domain.mapping.spec import MappingSpec
from mastersync.domain.reconciliation import (
    Bucket,
    DriftEntry,
    DriftReport,
    FieldDiff,
    Normalisation,
    OwnFields,
    classify,
    comparable,
    diff,
    field_diffs,
    source_missing_entry,
)

# --- examples ---------------------------------------------------------------------------


def test_numbers_agree_whatever_their_spelling() -> None:
    assert comparable("12.50") == comparable(12.5) == comparable(Decimal("12.5000"))
    assert comparable(3) == comparable("3.0") == comparable(Decimal("3"))
    assert comparable(True) == comparable(1) and comparable(False) == comparable(0)
    assert comparable(0.1) == comparable("0.1")


def test_times_with_a_zone_agree_as_instants() -> None:
    # Review: a PostgreSQL timestamptz column read back '+00:00' where the hub sent 'Z':
    # drift for ever, which no repair could clear.
    sent = comparable("2024-01-01T09:00:00Z")
    assert sent == comparable("2024-01-01T09:00:00+00:00") == comparable("2024-01-01 10:00+01")
    assert sent == comparable(dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC))
    assert sent != comparable("2024-01-01T09:00:01Z")
    # Without a zone the instant is not written down: text as it is.
    assert comparable("2024-01-01T09:00:00") == "2024-01-01T09:00:00"


def test_text_that_only_looks_numeric_keeps_its_zeros() -> None:
    assert comparable("00123") != comparable("123")
    assert comparable("04006381333931") != comparable(4006381333931)
    assert comparable("1e3") != comparable(1000)
    assert comparable("1,5") != comparable("1.5")


def test_blank_is_null_and_spaces_count_only_where_the_mapping_keeps_them() -> None:
    assert comparable("") is None and comparable("   ") is None
    assert comparable([]) is None and comparable({"a": None}) is None
    assert comparable(" Pen ") == comparable("Pen")
    assert comparable(" Pen ", strip=False) != comparable("Pen", strip=False)
    keep = Normalisation(keep_spaces=frozenset({"code"}))
    diffs = field_diffs({"code": "A1 ", "name": "Pen"}, {"code": "A1", "name": "Pen  "}, norm=keep)
    assert [d.field for d in diffs] == ["code"]


def test_mismatches_name_each_field_with_both_values() -> None:
    expected = {"sku": "A1", "title": "Pen", "price": "12.5", "product": {"status": "active"}}
    actual = {"sku": "A1", "title": "Pencil", "price": 12.5, "product": {"status": "archived"}}
    entry = classify("T-1", expected, actual, master_id="itm_1")
    assert entry.bucket is Bucket.MISMATCHED and entry.master_id == "itm_1"
    assert [(d.field, d.expected, d.actual) for d in entry.diffs] == [
        ("product.status", "active", "archived"),
        ("title", "Pen", "Pencil"),
    ]
    assert entry.as_dict()["fields"][1] == {"field": "title", "expected": "Pen", "actual": "Pencil"}


def test_a_field_the_hub_has_no_value_for_is_drift_where_the_mapping_writes_it() -> None:
    # Outbound payloads leave nulls out; the system still holding a value is drift there.
    expected = {"title": "Pen"}
    actual = {"title": "Pen", "email": "old@example.com", "updated_at": "2026-01-01"}
    assert field_diffs(expected, actual) == []
    [d] = field_diffs(expected, actual, fields=["title", "email"])
    assert (d.field, d.expected, d.actual) == ("email", None, "old@example.com")


def test_objects_in_lists_are_compared_on_the_hubs_keys_in_order() -> None:
    sent = {"addresses": [{"city": "Berlin", "zip": "10115"}, {"city": "Köln"}]}
    held = {"addresses": [{"id": 7, "city": "Berlin ", "zip": 10115}, {"id": 8, "city": "Köln"}]}
    assert field_diffs(sent, held) == []
    moved = {"addresses": [{"city": "Köln"}, {"city": "Berlin", "zip": "10115"}]}
    assert [d.field for d in field_diffs(sent, moved)] == ["addresses"]
    fewer = {"addresses": [{"city": "Berlin", "zip": "10115"}]}
    assert [d.field for d in field_diffs(sent, fewer)] == ["addresses"]


def test_a_link_read_back_through_the_field_it_was_sent_by_is_that_field() -> None:
    sent = {"addresses": [{"city": "München", "country": "DE"}]}
    read = {"addresses": [{"id": 1, "city": "München", "country": {"id": 1, "code": "DE"}}]}
    assert field_diffs(sent, read) == []
    moved = {"addresses": [{"id": 1, "city": "München", "country": {"id": 2, "code": "AT"}}]}
    assert [d.field for d in field_diffs(sent, moved)] == ["addresses"]
    vague = {"addresses": [{"city": "München", "country": {"code": "DE", "name": "DE"}}]}
    assert [d.field for d in field_diffs(sent, vague)] == ["addresses"]


def test_the_report_counts_everything_and_keeps_only_a_few_examples() -> None:
    report = DriftReport(limit=2)
    for i in range(5):
        report.add(classify(f"K{i}", {"a": 1}, None))
    report.add(classify("X", None, {"a": 1}))
    report.add(classify("M", {"a": 1}, {"a": 1}))
    assert report.counts[Bucket.MISSING] == 5 and report.keys(Bucket.MISSING) == ["K0", "K1"]
    assert report.drift == 6 and not report.clean
    assert report.count_dict() == {
        "matched": 1,
        "missing": 5,
        "extra": 1,
        "mismatched": 0,
        "retired": 0,
        "sourced": 0,
        "changed_at_source": 0,
        "errors": 0,
    }
    assert set(report.as_dict()["examples"]) == {"missing", "extra"}


def test_a_record_gone_from_its_source_is_an_inbox_entry_naming_system_domain_key_master() -> None:
    entry = source_missing_entry(
        "tryton", "customer", "42", "cus_1", {"name": "Geht AG"}, "rcn_1", "2026-11-28T00:00:00Z"
    )
    assert (entry.kind, entry.rule, entry.system, entry.domain) == (
        "drift",
        "source_record_missing",
        "tryton",
        "customer",
    )
    assert (entry.source_key, entry.master_id) == ("42", "cus_1")
    assert "'42'" in entry.message and "cus_1" in entry.message and "tryton" in entry.message
    assert entry.payload["last_seen"] == {"name": "Geht AG"}
    # One signature for every record gone from the same system and domain: grouped in the inbox.
    other = source_missing_entry("tryton", "customer", "43", "cus_2", {}, "rcn_2", "t")
    assert entry.signature == other.signature


def test_a_source_missing_entry_keeps_when_the_hub_read_the_record() -> None:
    """What ignoring the entry accepts: the deletion of the record as read then, so a record
    made anew and read later is not covered (reconcile compares the xref's time with it)."""
    entry = source_missing_entry(
        "legacy", "item", "L1", "itm_1", {}, "rcn_1", "t", read_at="2026-11-27T10:00:00.000000Z"
    )
    assert entry.payload["read_at"] == "2026-11-27T10:00:00.000000Z"
    assert (
        source_missing_entry("legacy", "item", "L1", "itm_1", {}, "rcn_1", "t").payload["read_at"]
        is None
    )


def test_a_repair_delivery_has_a_key_of_its_own_and_a_replay_does_not() -> None:
    assert idempotency_key("itm_1", 3) == "itm_1:3"
    assert idempotency_key("itm_1", 3, "rpl_ab") == "itm_1:3"
    assert idempotency_key("itm_1", 3, "rpr_ab") == "itm_1:3:rpr_ab"


# --- properties ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6
    ),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=6,
)
records = st.dictionaries(
    st.sampled_from(["sku", "name", "price", "tags", "x"]), values, max_size=5
)
keyed = st.dictionaries(st.text("ABCK0123", min_size=1, max_size=3), records, max_size=8)


@settings(deadline=None)  # a shared machine: no wall-clock limits
@given(keyed)
def test_a_report_of_identical_sides_is_empty(records_: dict[str, dict[str, Any]]) -> None:
    report = diff(records_, records_)
    assert report.clean and report.drift == 0
    assert report.counts[Bucket.MATCHED] == len(records_)


@settings(deadline=None)
@given(keyed, keyed)
def test_every_key_lands_in_exactly_one_bucket(
    expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]
) -> None:
    report = diff(expected, actual)
    placed = [key for bucket in Bucket for key in report.keys(bucket)]
    assert sorted(placed) == sorted(set(expected) | set(actual))
    assert sum(report.counts.values()) == len(placed)
    assert set(report.keys(Bucket.MISSING)) == set(expected) - set(actual)
    assert set(report.keys(Bucket.EXTRA)) == set(actual) - set(expected)


@settings(deadline=None)
@given(keyed, keyed)
def test_swapping_the_sides_swaps_missing_and_extra(
    expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]
) -> None:
    there, back = diff(expected, actual), diff(actual, expected)
    assert there.keys(Bucket.MISSING) == back.keys(Bucket.EXTRA)
    assert there.keys(Bucket.EXTRA) == back.keys(Bucket.MISSING)
    # Not symmetric beyond that: fields only the system has are its own, never compared.
    both = set(expected) & set(actual)
    assert set(there.keys(Bucket.MISMATCHED)) <= both


@settings(deadline=None)
@given(values)
def test_normalising_twice_changes_nothing(value: Any) -> None:
    once = comparable(value)
    assert comparable(once) == once


amounts = st.decimals(
    allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6
)
words = st.text("abc xyz-ÄÖ", max_size=10)


@st.composite
def reformatted(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A record as the hub writes it, and the same record as a system might give it back."""
    amount, count, name = draw(amounts), draw(st.integers(0, 10**6)), draw(words)
    expected = {"price": str(amount), "stock": count, "name": name.strip() or None}
    actual = {
        "price": draw(st.sampled_from([float(amount), f"{amount:f}0", amount])),
        "stock": draw(st.sampled_from([str(count), f"{count}.00", Decimal(count), count])),
        "name": f" {name}  ",
    }
    return {k: v for k, v in expected.items() if v is not None}, actual


@settings(deadline=None)
@given(reformatted())
def test_formatting_is_no_drift(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    expected, actual = pair
    assert field_diffs(expected, actual, fields=["price", "stock", "name"]) == []


@settings(deadline=None)
@given(reformatted(), words.filter(lambda w: w.strip() != ""))
def test_a_changed_value_is_named(pair: tuple[dict[str, Any], dict[str, Any]], other: str) -> None:
    expected, actual = pair
    actual["name"] = f"{expected.get('name', '')}#{other}"
    entry = classify("K", expected, actual, fields=["price", "stock", "name"])
    assert entry.bucket is Bucket.MISMATCHED
    assert [d.field for d in entry.diffs] == ["name"]


def test_a_sources_own_fields_are_where_its_mapping_reads_fields_it_may_write() -> None:
    spec = MappingSpec.model_validate(
        {
            "key": "code",
            "fields": {
                "sku": "code",
                "name": "title",
                "description": {"concat": ["descr.short", {"from": "descr.long"}]},
                "brand": {"from": "vendor", "when": "has_vendor"},
                "addresses": {"each": "addr", "fields": {"city": "town"}},
                "tags": ["tag1", {"label": "tag2", "when": "tagged"}],
            },
        }
    )
    # Field ownership lets this system write all but the name.
    own = OwnFields.of("pim", spec, ["sku", "description", "brand", "addresses", "tags"])
    # Conditions decide whether there is a value and are none: not its fields.
    assert dict(own.paths) == {
        "addr": {"addresses"},
        "code": {"sku"},
        "descr.long": {"description"},
        "descr.short": {"description"},
        "tag1": {"tags"},
        "tag2": {"tags"},
        "vendor": {"brand"},
    }
    assert own.fields_at("title") == frozenset()  # read into the name, which it may not write
    assert own.fields_at("descr.short") == {"description"}
    assert own.fields_at("descr") == {"description"}  # holds its own fields
    assert own.fields_at("addr.0.city") == {"addresses"}  # inside one
    assert own.fields_at("vendor_note") == frozenset()  # a prefix of the name is no path
    diffs = [FieldDiff("title", "Bolt", "Bolty"), FieldDiff("descr.short", "M8", "M8 zinc")]
    mine, other = own.split(diffs)
    assert ([d.field for d in mine], [d.field for d in other]) == (["descr.short"], ["title"])
    assert own.describe(mine) == "descr.short (description)"


def test_a_change_at_a_source_is_no_drift() -> None:
    report = DriftReport()
    report.add(DriftEntry("A1", Bucket.CHANGED_AT_SOURCE, "m1", note="changed at pim"))
    assert report.clean and report.drift == 0
    assert report.count_dict()["changed_at_source"] == 1
    assert report.as_dict()["examples"]["changed_at_source"][0]["note"] == "changed at pim"
