"""Ingest against real stores: bad records never stop a batch, and every accepted change is
written with its lineage and its outbox event."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mastersync.backends.sql.tables import natural_key
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.records import ExceptionStatus
from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.queries import NotFound, get_record, trace
from mastersync.ports.connector import ReadFailure, SourceRecord
from mastersync.ports.store import ExceptionFilter, Store
from tests.support import compiled, erp_item, landscape_doc

GTIN = "4006381333931"


def feed(rows: list[dict[str, Any]]) -> list[SourceRecord | ReadFailure]:
    return [SourceRecord(r, f"feed:{i + 1}") for i, r in enumerate(rows)]


@pytest.fixture
def ingestor(store: Store) -> Ingestor:
    return Ingestor(store, compiled(), chunk_size=3)


def outbox_and_lineage(store: Store, master: str) -> tuple[list[int], list[str]]:
    with store.unit_of_work(write=False) as uow:
        return (
            [e.version for e in uow.events(master)],
            [e.outcome for e in uow.lineage(master_id=master)],
        )


def test_a_batch_with_bad_records_keeps_the_good_ones(store: Store, ingestor: Ingestor) -> None:
    rows = [
        erp_item("A1", 1, name="Pen", gtin=GTIN, price="2.50"),
        erp_item("A2", 1, name="Ink", gtin="4006381333932"),  # bad check digit
        erp_item("A3", 1, name="Pad", price="cheap"),  # not a number
        {"v": 1, "name": "no key"},  # mapping: missing key field
        erp_item("A4", 1),  # required name missing
        erp_item("A5", 1, name="Tape"),
    ]
    items: list[SourceRecord | ReadFailure] = feed(rows)
    items.insert(2, ReadFailure("feed:x", "csv_columns", "expected 5 fields, got 7", "a,b"))
    report = ingestor.ingest("erp", "item", items, source="test")
    assert report.outcomes == Counter({"accepted": 2, "rejected": 5})
    assert set(report.problems) == {
        ("validation_error", "gtin", "gtin_check_digit"),
        ("mapping_error", "list_price", "number"),
        ("mapping_error", "sku", "missing_field"),
        ("mapping_error", "key", "missing_field"),
        ("validation_error", "name", "required"),
        ("parse_error", "-", "csv_columns"),
    }
    with store.unit_of_work(write=False) as uow:
        entries = uow.exceptions(ExceptionFilter(limit=100))
    by_rule = {(e.field, e.rule): e for e in entries}
    gtin = by_rule[("gtin", "gtin_check_digit")]
    assert gtin.source_key == "A2"
    assert gtin.locator == "feed:2"
    assert gtin.payload == rows[1]
    assert gtin.batch_id == report.batch_id
    assert "expected 1" in gtin.message
    assert by_rule[(None, "csv_columns")].payload == {"raw": "a,b"}
    assert get_record(store, "item", "erp:A1").golden.attributes["list_price"] == "2.5"


def test_numbers_no_system_means_fail_their_record_not_the_batch(
    store: Store, ingestor: Ingestor
) -> None:
    """ "NaN", "Infinity" and 1e30 are numbers to Python's Decimal: each fails its record with
    the field and rule named, and the records around it are applied."""
    rows = [
        erp_item("A1", 1, name="Pen", price="2.50"),
        erp_item("A2", 1, name="Ink", price="NaN"),
        erp_item("A3", 1, name="Pad", price="Infinity"),
        erp_item("A4", 1, name="Tape", price="1e30"),
        erp_item("A5", 1, name="Clip", price="0.10"),
    ]
    report = ingestor.ingest("erp", "item", feed(rows), source="test")
    assert report.outcomes == Counter({"accepted": 2, "rejected": 3})
    assert report.problems == Counter(
        {
            ("mapping_error", "list_price", "number"): 2,
            ("validation_error", "list_price", "number_too_large"): 1,
        }
    )
    assert get_record(store, "item", "erp:A5").golden.attributes["list_price"] == "0.1"


def test_a_key_too_long_for_an_index_fails_its_record_not_the_chunk(
    store: Store, ingestor: Ingestor
) -> None:
    """PostgreSQL refuses an index entry over 2,704 bytes: the inbox entry of a 3,000
    character key failed the whole chunk, its good records with it, in a traceback."""
    long_key = "K" * 3000
    rows = [
        erp_item("M1", 1, name="Pen"),
        erp_item(long_key, 1, name="Ink"),
        erp_item("M3", 1, name="Pad"),
    ]
    report = ingestor.ingest("erp", "item", feed(rows), source="test")
    assert report.outcomes == Counter({"accepted": 2, "rejected": 1})
    assert report.problems == Counter({("mapping_error", "key", "too_long"): 1})
    with store.unit_of_work(write=False) as uow:
        (entry,) = uow.exceptions(ExceptionFilter(limit=10))
    assert entry.source_key == "@feed:2" and entry.payload == rows[1]
    assert "3,000 characters long, over the 512 allowed" in entry.message


def test_a_second_record_of_one_system_with_a_natural_key_joins_with_a_warning(
    store: Store, ingestor: Ingestor
) -> None:
    """Two ERP items with one GTIN are consolidated like any duplicates (whichever comes
    first), but not silently: the newer one's values may win over the older one's."""
    ingestor.ingest("erp", "item", feed([erp_item("A1", 1, name="Pen", gtin=GTIN)]))
    report = ingestor.ingest("erp", "item", feed([erp_item("DUP1", 1, name="Other", gtin=GTIN)]))
    assert report.outcomes == Counter({"accepted": 1})
    assert report.problems == Counter({("ambiguous_match", "gtin", "same_system"): 1})
    master = get_record(store, "item", "erp:A1").golden.master_id
    assert get_record(store, "item", "erp:DUP1").golden.master_id == master
    with store.unit_of_work(write=False) as uow:
        (entry,) = uow.exceptions(ExceptionFilter(limit=10))
    assert (entry.kind, entry.source_key, entry.master_id) == ("ambiguous_match", "DUP1", master)
    assert f"joined erp DUP1 to {master}, which erp also holds as A1" in entry.message
    # Its next version comes by its cross-reference and does not raise the warning again:
    # the duplicate is still there, so the entry stays open (it was settled "superseded").
    ingestor.ingest("erp", "item", feed([erp_item("DUP1", 2, name="Other 2", gtin=GTIN)]))
    with store.unit_of_work(write=False) as uow:
        assert [e.id for e in uow.exceptions(ExceptionFilter(limit=10))] == [entry.id]
    # A record of another system with the GTIN joins as before, without a word.
    pim = {"id": "P1", "updated": "2026-01-01T00:00:00Z", "gtin": GTIN, "description": "d"}
    ingestor.ingest("pim", "item", feed([pim]))
    with store.unit_of_work(write=False) as uow:
        assert len(uow.exceptions(ExceptionFilter(limit=10))) == 1


@pytest.mark.parametrize("pim_first", [False, True], ids=["pim-last", "pim-first"])
def test_a_pim_record_of_a_sku_consolidated_by_a_shared_gtin_joins_its_record(
    store: Store, pim_first: bool
) -> None:
    """Review: ERP items A and B share a GTIN and are joined; the golden record takes one
    SKU, and the other identified it no more: the PIM's record of that SKU became a new
    item, refused with "name is required" (the ERP owns names). It joins, whichever came
    first; a PIM item of a SKU no record holds is still refused for its name."""
    doc = landscape_doc()
    item = doc["domains"]["item"]
    item["natural_keys"] = [["gtin"], ["sku"]]
    item["ownership"] = {**item["ownership"], "sku": ["erp"]}
    ingest = Ingestor(store, compile_landscape(Landscape.model_validate(doc))).ingest
    pim = {"id": "P1", "updated": "2026-01-01T00:00:00Z", "desc": "Blue ink"}
    ingest("erp", "item", feed([erp_item("A", 1, name="Pen", gtin=GTIN)]))
    if pim_first:
        assert ingest("pim", "item", feed([{**pim, "sku": "A"}])).outcomes == {"accepted": 1}
    ingest("erp", "item", feed([erp_item("B", 1, name="Pen B", gtin=GTIN)]))
    view = get_record(store, "item", "erp:A")
    assert view.golden.master_id == get_record(store, "item", "erp:B").golden.master_id
    (old,) = {"A", "B"} - {view.golden.attributes["sku"]}
    report = ingest("pim", "item", feed([{**pim, "id": "P2", "sku": old}]))
    assert report.outcomes == {"accepted": 1}, report.samples
    joined = get_record(store, "item", "pim:P2").golden
    assert joined.master_id == view.golden.master_id
    assert joined.attributes["description"] == "Blue ink"
    with store.unit_of_work(write=False) as uow:
        assert uow.load_natural_keys("item", {("sku", "A"), ("sku", "B")}) == {
            ("sku", "A"): joined.master_id,
            ("sku", "B"): joined.master_id,
        }
    report = ingest("pim", "item", feed([{**pim, "id": "P3", "sku": "Z"}]))
    assert report.outcomes == {"rejected": 1}
    assert report.problems == Counter({("validation_error", "name", "required"): 1})


@pytest.mark.parametrize("then", ["96385074", ""], ids=["corrected", "cleared"])
def test_a_natural_key_a_record_no_longer_has_identifies_it_no_more(
    store: Store, ingestor: Ingestor, then: str
) -> None:
    """A GTIN corrected (or cleared) at the source kept pointing at the record: the next
    item with the old GTIN, another product, was merged into it."""
    ingestor.ingest("erp", "item", feed([erp_item("K1", 1, name="Bolt M8", gtin=GTIN)]))
    ingestor.ingest("erp", "item", feed([erp_item("K1", 2, name="Bolt M8", gtin=then)]))
    report = ingestor.ingest("erp", "item", feed([erp_item("K2", 1, name="Nut M6", gtin=GTIN)]))
    assert report.problems == Counter()
    k1 = get_record(store, "item", "erp:K1").golden
    k2 = get_record(store, "item", "erp:K2").golden
    assert k1.master_id != k2.master_id
    assert (k2.attributes["name"], k2.attributes["gtin"]) == ("Nut M6", "0" + GTIN)
    with store.unit_of_work(write=False) as uow:
        assert uow.load_natural_keys("item", {("gtin", "0" + GTIN)}) == {
            ("gtin", "0" + GTIN): k2.master_id
        }


def test_values_no_json_column_holds_fail_or_pass_their_record_not_the_batch(
    store: Store, ingestor: Ingestor
) -> None:
    """A source that parses JSON with the standard library hands over integers beyond 64
    bits and lone surrogates, which orjson refuses to write, and NUL characters, which
    PostgreSQL refuses: the record is stored with the integer's exact digits as text and
    U+FFFD for the others, and the batch goes on."""
    rows = [
        erp_item("A1", 1, name="Pen", price="2.50"),
        erp_item("A2", 1, name="Ink", price=2**100, ext={"id": 2**65}),
        erp_item("A3", 1, name="Pad\ud800"),
        erp_item("A4", 1, name="Tape"),
        erp_item("A5\x00", 1, name="Glue\x00"),  # NUL: PostgreSQL's text and JSON refuse it
        # Types JSON has no place for, as a connector of one's own may hand them over.
        erp_item("A6", 1, price=Decimal("2.5"), tags={"x"}),  # no name: to the inbox
    ]
    report = ingestor.ingest("erp", "item", feed(rows), source="test")
    assert report.outcomes == Counter({"accepted": 4, "rejected": 2})
    with store.unit_of_work(write=False) as uow:
        entry, odd = sorted(uow.exceptions(ExceptionFilter(limit=10)), key=lambda e: e.source_key)
    assert odd.source_key == "A6" and odd.payload["price"] == "2.5"
    assert odd.payload["tags"] == "{'x'}"
    assert entry.source_key == "A2" and entry.field == "list_price"
    assert entry.payload["price"] == str(2**100) and entry.payload["ext"] == {"id": str(2**65)}
    assert get_record(store, "item", "erp:A3").golden.attributes["name"] == "Pad\ufffd"
    assert get_record(store, "item", "erp:A5\ufffd").golden.attributes["name"] == "Glue\ufffd"


def test_every_golden_version_has_its_event_and_lineage(store: Store, ingestor: Ingestor) -> None:
    ingestor.ingest(
        "erp",
        "item",
        feed(
            [
                erp_item("A1", 1, name="Pen", gtin=GTIN),
                erp_item("A1", 2, name="Pen 2", gtin=GTIN),  # same chunk as v1
                erp_item("B1", 1, name="B"),
                erp_item("A1", 3, name="Pen 3", gtin=GTIN),  # next chunk
            ]
        ),
    )
    ingestor.ingest(
        "pim",
        "item",
        feed([{"id": "P1", "updated": "2026-01-01T00:00:00Z", "gtin": GTIN, "desc": "Blue ink"}]),
    )
    view = get_record(store, "item", "erp:A1")
    assert view.golden.version == 4
    assert view.golden.attributes["description"] == "Blue ink"
    assert sorted(m.system for m in view.members) == ["erp", "pim"]
    events, lineage = outbox_and_lineage(store, view.golden.master_id)
    assert events == [1, 2, 3, 4]
    assert lineage == ["accepted"] * 4
    assert trace(store, view.golden.master_id).events[-1].changes == {
        "description": {"before": None, "after": "Blue ink"}
    }


def test_reingesting_the_same_records_changes_nothing(store: Store, ingestor: Ingestor) -> None:
    rows = [erp_item(f"A{i}", 1, name=f"N{i}") for i in range(7)]
    first = ingestor.ingest("erp", "item", feed(rows))
    again = ingestor.ingest("erp", "item", feed(rows))
    assert first.outcomes == Counter({"accepted": 7})
    assert again.outcomes == Counter({"unchanged": 7})
    master = get_record(store, "item", "erp:A3").golden.master_id
    assert outbox_and_lineage(store, master) == ([1], ["accepted"])


def test_the_same_version_in_another_spelling_is_unchanged_not_stale(
    store: Store, ingestor: Ingestor
) -> None:
    """A re-send of an applied version whose payload differs only in spelling (2.50 for
    2.5, the version as "007", a field the mapping does not read) was reported stale,
    "already applied with different content"; other content under that version still is."""
    ingestor.ingest("erp", "item", feed([erp_item("A1", 7, name="Bolt", price="2.5")]))
    report = ingestor.ingest(
        "erp",
        "item",
        feed([erp_item("A1", "007", name="Bolt", price="2.50", note="not mapped")]),
    )
    assert report.outcomes == Counter({"unchanged": 1})
    assert report.problems == Counter()
    report = ingestor.ingest("erp", "item", feed([erp_item("A1", 7, name="Nut", price="2.5")]))
    assert report.outcomes == Counter({"stale": 1})
    assert "version 7 was already applied with different content" in report.samples[0]
    master = get_record(store, "item", "erp:A1").golden.master_id
    assert outbox_and_lineage(store, master)[0] == [1]


def test_stale_changes_are_recorded_and_change_nothing(store: Store, ingestor: Ingestor) -> None:
    ingestor.ingest("erp", "item", feed([erp_item("A1", 5, name="Current")]))
    report = ingestor.ingest("erp", "item", feed([erp_item("A1", 4, name="Old")]))
    assert report.outcomes == Counter({"stale": 1})
    view = get_record(store, "item", "erp:A1")
    assert view.golden.attributes["name"] == "Current"
    assert view.golden.version == 1
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter(kind="stale_update"))
    assert entry.message == "version 4 is older than applied version 5"
    assert outbox_and_lineage(store, view.golden.master_id)[1] == ["accepted", "stale"]


def test_a_stale_entry_is_settled_by_a_later_version_not_by_the_applied_one_again(
    store: Store, ingestor: Ingestor
) -> None:
    """Re-applying the version a stale update lost to (a retry of another entry of the
    record, --reapply) closed the stale entry as superseded, though nothing later came."""
    ingestor.ingest("erp", "item", feed([erp_item("A1", 5, name="Current")]))
    ingestor.ingest("erp", "item", feed([erp_item("A1", 4, name="Old")]))
    ingestor.ingest("erp", "item", feed([erp_item("A1", 5, name="Contradiction")]))
    reapplied = [SourceRecord(erp_item("A1", 5, name="Current"), "feed:1", reapply=True)]
    ingestor.ingest("erp", "item", reapplied)
    with store.unit_of_work(write=False) as uow:
        stale = uow.exceptions(ExceptionFilter(kind="stale_update"))
    # One entry per record and rule: it says what came last.
    assert [e.message for e in stale] == ["version 5 was already applied with different content"]
    ingestor.ingest("erp", "item", feed([erp_item("A1", 6, name="Newer")]))
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter(kind="stale_update")) == []
        settled = uow.exceptions(
            ExceptionFilter(kind="stale_update", status=ExceptionStatus.RESOLVED)
        )
    assert [e.resolution["note"] for e in settled if e.resolution] == [
        "record A1 applied at source version 6"
    ]


def test_a_record_rejected_for_another_problem_settles_the_mapping_error_it_no_longer_has(
    store: Store, ingestor: Ingestor
) -> None:
    """Only an applied record settled its entries: one that now mapped but failed for
    something else kept its old mapping error open, and a retry called it still failing."""
    price = {"sku": "A9", "list": "LIST", "amount": "abc", "v": 1}
    ingestor.ingest("erp", "price", feed([price]))
    with store.unit_of_work(write=False) as uow:
        [mapping] = uow.exceptions(ExceptionFilter())
    assert (mapping.kind, mapping.field) == ("mapping_error", "amount")
    # The amount is fixed; the item it names has not arrived yet.
    ingestor.ingest("erp", "price", feed([{**price, "amount": "1.00", "v": 2}]))
    with store.unit_of_work(write=False) as uow:
        [waiting] = uow.exceptions(ExceptionFilter())
        settled = uow.exception(mapping.id or 0)
    assert waiting.kind == "unknown_reference"
    assert settled is not None and settled.status is ExceptionStatus.RESOLVED
    assert settled.resolution is not None
    assert settled.resolution["note"] == (
        "record A9|LIST no longer fails this at source version 2; it is rejected for other "
        "problems (their own entries)"
    )
    # A version older than the one an entry was raised for settles nothing of it: v2 is
    # applied once its item is there, v4 fails its mapping, and v3 arrives late, mapped but
    # invalid (review found the v4 entry closed by it).
    ingestor.ingest("erp", "item", feed([erp_item("A9", 1, name="Late")]))
    ingestor.ingest("erp", "price", feed([{**price, "amount": "1.00", "v": 2}]))
    ingestor.ingest("erp", "price", feed([{**price, "amount": "x", "v": 4}]))
    ingestor.ingest("erp", "price", feed([{**price, "amount": "-1", "v": 3}]))
    with store.unit_of_work(write=False) as uow:
        kinds = sorted(e.kind for e in uow.exceptions(ExceptionFilter()))
    assert kinds == ["mapping_error", "validation_error"]


def test_a_record_failing_another_field_of_its_mapping_settles_the_one_it_no_longer_fails(
    store: Store,
) -> None:
    """Mapping names every field it fails: a fixed field's entry stayed open while another
    field of the record failed, and a retry called it still failing."""
    doc = landscape_doc()
    fields = doc["systems"]["erp"]["inbound"]["item"]["fields"]
    fields["net_weight_kg"] = {"from": "weight", "optional": True, "number": True}
    ingestor = Ingestor(store, compile_landscape(Landscape.model_validate(doc)))
    ingestor.ingest("erp", "item", feed([erp_item("A6", 1, name="Pen", price="abc")]))
    ingestor.ingest("erp", "item", feed([erp_item("A6", 2, name="Pen", weight="heavy")]))
    with store.unit_of_work(write=False) as uow:
        [open_entry] = uow.exceptions(ExceptionFilter())
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert (open_entry.kind, open_entry.field) == ("mapping_error", "net_weight_kg")
    assert (settled.kind, settled.field) == ("mapping_error", "list_price")
    # An unknown reference is not settled by a record whose mapping failed: its references
    # were never looked up.
    ingestor.ingest("erp", "price", feed([{"sku": "Z1", "list": "L", "amount": "1", "v": 1}]))
    ingestor.ingest("erp", "price", feed([{"sku": "Z1", "list": "L", "amount": "x", "v": 2}]))
    with store.unit_of_work(write=False) as uow:
        kinds = sorted(e.kind for e in uow.exceptions(ExceptionFilter(domain="price")))
    assert kinds == ["mapping_error", "unknown_reference"]


def test_a_schema_error_fixed_by_a_version_rejected_for_another_reason_is_settled(
    store: Store, ingestor: Ingestor
) -> None:
    """The canonical schema checks a record whole before the merge: a bad GTIN fixed in a
    version that still waits for its reference stayed open, and a retry of it ran the old
    version again."""
    supplier = {"no": "S1", "v": 1, "name": "Bolt AG", "country": "DE", "vat": "DE136695976"}
    ingestor.ingest("erp", "supplier", feed([{**supplier, "iban": "DE00"}]))
    ingestor.ingest(
        "erp",
        "supplier",
        feed([{**supplier, "v": 2, "iban": "DE89370400440532013000", "vat": "DE999"}]),
    )
    with store.unit_of_work(write=False) as uow:
        [open_entry] = uow.exceptions(ExceptionFilter(domain="supplier"))
        [settled] = uow.exceptions(
            ExceptionFilter(domain="supplier", status=ExceptionStatus.RESOLVED)
        )
    assert (settled.field, open_entry.rule) == ("bank_account.iban", "tax_id")
    # A declared quality rule's failure is not settled by a record rejected before the
    # merge ran those rules.
    ingestor.ingest("erp", "supplier", feed([{**supplier, "v": 3, "iban": "DE00"}]))
    with store.unit_of_work(write=False) as uow:
        rules = sorted(e.rule for e in uow.exceptions(ExceptionFilter(domain="supplier")))
    assert rules == ["iban", "tax_id"]


def test_a_stale_record_settles_the_mapping_error_its_version_no_longer_has(
    store: Store, ingestor: Ingestor
) -> None:
    """A fixed mapping error of an old version stayed "still failing" because the version
    turned out stale once it mapped."""
    ingestor.ingest("erp", "item", feed([erp_item("A7", 5, name="Pen")]))
    ingestor.ingest("erp", "item", feed([erp_item("A7", 3, name="Pen", price="abc")]))
    ingestor.ingest("erp", "item", feed([erp_item("A7", 3, name="Pen", price="1.00")]))
    with store.unit_of_work(write=False) as uow:
        [open_entry] = uow.exceptions(ExceptionFilter())
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert open_entry.kind == "stale_update"
    assert (settled.kind, settled.field) == ("mapping_error", "list_price")


def test_a_record_rejected_at_the_merge_settles_the_mapping_error_it_no_longer_has(
    store: Store, ingestor: Ingestor
) -> None:
    """Rejected by a golden-record rule (a new item without the name it requires), the
    record's mapping and references had run whole: its fixed mapping error is settled."""
    ingestor.ingest("erp", "item", feed([erp_item("A5", 1, name="Pen", price="abc")]))
    ingestor.ingest("erp", "item", feed([erp_item("A5", 2, price="1.50")]))
    with store.unit_of_work(write=False) as uow:
        [open_entry] = uow.exceptions(ExceptionFilter())
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert (open_entry.kind, open_entry.rule) == ("validation_error", "required")
    assert (settled.kind, settled.field) == ("mapping_error", "list_price")


def test_a_mapping_error_of_the_version_itself_is_settled_by_a_record_that_maps(
    store: Store, ingestor: Ingestor
) -> None:
    """An entry whose version cannot be read (the version was the failure) is no newer than
    any: review found it kept open by every rejected record."""
    ingestor.ingest("erp", "item", feed([erp_item("A1", "abc", name="Pen")]))  # type: ignore[arg-type]
    ingestor.ingest("erp", "item", feed([erp_item("A1", 2, name="Pen", price="-1")]))
    with store.unit_of_work(write=False) as uow:
        [open_entry] = uow.exceptions(ExceptionFilter())
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert (open_entry.kind, open_entry.field) == ("validation_error", "list_price")
    assert (settled.kind, settled.field) == ("mapping_error", "version")


def test_references_resolve_and_unknown_ones_wait_in_the_inbox(
    store: Store, ingestor: Ingestor
) -> None:
    prices = [
        {"sku": "A1", "list": "LIST", "amount": "9.90", "v": 1},
        {"sku": "A9", "list": "LIST", "amount": "1.00", "v": 1},
    ]
    ingestor.ingest("erp", "item", feed([erp_item("A1", 1, name="Pen")]))
    report = ingestor.ingest("erp", "price", feed(prices))
    assert report.outcomes == Counter({"accepted": 1, "rejected": 1})
    item = get_record(store, "item", "erp:A1").golden.master_id
    price = get_record(store, "price", "erp:A1|LIST").golden
    assert price.attributes["item"] == item
    with store.unit_of_work(write=False) as uow:
        [waiting] = uow.exceptions(ExceptionFilter(kind="unknown_reference"))
    assert waiting.message == "no item record with erp key 'A9' (yet)"
    # The item arrives; retrying the price now succeeds and settles the entry.
    ingestor.ingest("erp", "item", feed([erp_item("A9", 1, name="Late")]))
    inbox = ExceptionsInbox(store, ingestor)
    result = inbox.retry(inbox.entries([waiting.id or 0]))
    assert result.resolved == [waiting.id]
    with store.unit_of_work(write=False) as uow:
        settled = uow.exception(waiting.id or 0)
    assert settled is not None
    assert settled.status is ExceptionStatus.RESOLVED
    assert get_record(store, "price", "erp:A9|LIST").golden.attributes["amount"] == "1"


def test_a_later_good_version_settles_the_records_open_failures(
    store: Store, ingestor: Ingestor
) -> None:
    ingestor.ingest("erp", "item", feed([erp_item("A1", 1, name="Pen", gtin="4006381333932")]))
    ingestor.ingest("erp", "item", feed([erp_item("A1", 2, name="Pen", gtin=GTIN)]))
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter()) == []
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert settled.resolution is not None
    assert settled.resolution["by"] == "superseded"


def test_a_record_whose_version_fails_is_filed_under_its_key_and_settled_by_the_next(
    store: Store, ingestor: Ingestor
) -> None:
    """Filed under where it was read ('@feed:1'), a record whose version did not parse was
    never settled by its next good version: the entry stayed open for ever."""
    ingestor.ingest("erp", "item", feed([erp_item("A3", "5.5", name="Pen")]))
    with store.unit_of_work(write=False) as uow:
        [failed] = uow.exceptions(ExceptionFilter())
    assert (failed.source_key, failed.field) == ("A3", "version")
    ingestor.ingest("erp", "item", feed([erp_item("A3", 6, name="Pen")]))
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter()) == []
        [settled] = uow.exceptions(ExceptionFilter(status=ExceptionStatus.RESOLVED))
    assert settled.id == failed.id and settled.resolution is not None


def test_a_repeated_failure_is_one_entry_with_attempts(store: Store, ingestor: Ingestor) -> None:
    bad = [erp_item("A1", 1, name="Pen", gtin="4006381333932")]
    ingestor.ingest("erp", "item", feed(bad))
    ingestor.ingest("erp", "item", feed(bad))
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter())
    assert entry.attempts == 2


def test_ownership_violations_are_in_the_inbox_and_the_rest_is_applied(
    store: Store, ingestor: Ingestor
) -> None:
    ingestor.ingest("erp", "item", feed([erp_item("A1", 1, name="Pen", gtin=GTIN)]))
    report = ingestor.ingest(
        "pim",
        "item",
        feed(
            [
                {
                    "id": "P1",
                    "updated": "2026-01-01T00:00:00Z",
                    "gtin": GTIN,
                    "name": "Stylo",
                    "desc": "Blue",
                }
            ]
        ),
    )
    assert report.outcomes == Counter({"accepted": 1})
    golden = get_record(store, "item", "erp:A1").golden
    assert golden.attributes["name"] == "Pen"
    assert golden.attributes["description"] == "Blue"
    with store.unit_of_work(write=False) as uow:
        [violation] = uow.exceptions(ExceptionFilter(kind="ownership_violation"))
    assert violation.field == "name"
    assert violation.master_id == golden.master_id
    assert "pim may not write name: owned by erp" in violation.message


def test_retry_runs_the_newest_version_any_open_entry_of_the_record_keeps(
    store: Store, ingestor: Ingestor
) -> None:
    """A retry of one entry ran the payload of the entries asked for only: an entry kept
    from a late older version ran that version, behind the newer one another entry kept."""
    price = {"sku": "P1", "list": "L", "v": 2, "amount": "x"}
    ingestor.ingest("erp", "price", feed([price]))  # v2: its amount does not map
    ingestor.ingest("erp", "price", feed([{**price, "v": 1, "amount": "-1"}]))  # late v1
    with store.unit_of_work(write=False) as uow:
        entries = {e.kind: e for e in uow.exceptions(ExceptionFilter(domain="price"))}
    assert set(entries) == {"mapping_error", "validation_error", "unknown_reference"}
    ingestor.ingest("erp", "item", feed([erp_item("P1", 1, name="Pen")]))
    inbox = ExceptionsInbox(store, ingestor)
    report = inbox.retry(inbox.entries([entries["unknown_reference"].id or 0]))
    assert report.still_failing == [entries["unknown_reference"].id]
    with store.unit_of_work(write=False) as uow:
        mapping = uow.exception(entries["mapping_error"].id or 0)
    # v2 ran again (and failed its mapping again); v1 was not applied behind it.
    assert mapping is not None and mapping.attempts == 2
    assert mapping.payload == price
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("price", "erp", "P1|L") is None


def test_retry_after_a_config_change_and_ignore(store: Store) -> None:
    strict = Ingestor(store, compiled())
    strict.ingest("erp", "item", feed([erp_item("A1", 1, name="Pen", gtin=GTIN)]))
    strict.ingest(
        "pim",
        "item",
        feed([{"id": "P1", "updated": "2026-01-01T00:00:00Z", "gtin": GTIN, "name": "Stylo"}]),
    )
    with store.unit_of_work(write=False) as uow:
        [violation] = uow.exceptions(ExceptionFilter(kind="ownership_violation"))
    assert violation.id is not None
    # Still a violation under the same landscape: the entry stays open, one more attempt.
    inbox = ExceptionsInbox(store, strict)
    assert inbox.retry(inbox.entries([violation.id])).still_failing == [violation.id]
    # Give the PIM the name (first priority) and retry: applied, settled.
    doc_domains = {"item": {"natural_keys": [["gtin"]], "ownership": {"name": ["pim", "erp"]}}}
    relaxed = ExceptionsInbox(store, Ingestor(store, compiled(domains=doc_domains)))
    assert relaxed.retry(relaxed.entries([violation.id])).resolved == [violation.id]
    assert get_record(store, "item", "erp:A1").golden.attributes["name"] == "Stylo"
    # Ignoring needs a reason and records who gave it.
    strict.ingest("erp", "item", feed([erp_item("B1", 1)]))
    with store.unit_of_work(write=False) as uow:
        [missing] = uow.exceptions(ExceptionFilter(kind="validation_error"))
    assert missing.id is not None
    assert inbox.ignore(inbox.entries([missing.id]), "ana", "test record") == [missing.id]
    with store.unit_of_work(write=False) as uow:
        done = uow.exception(missing.id)
    assert done is not None
    assert done.status is ExceptionStatus.IGNORED
    assert done.resolution is not None
    assert done.resolution["by"] == "ana"


@pytest.mark.parametrize("count", [0, 2, 3, 7])
def test_each_batch_has_one_finished_summary_with_its_counts(
    store: Store, ingestor: Ingestor, count: int
) -> None:
    """Empty, one chunk, exactly one chunk, several chunks (of 3): the summary written with
    the first and last chunks (or alone, when empty) ends finished with every outcome."""
    rows = [erp_item(f"B{i}", 1, name=f"Item {i}") for i in range(count)]
    report = ingestor.ingest("erp", "item", feed(rows), source="test")
    with store.unit_of_work(write=False) as uow:
        batches = [b for b in uow.batches() if b.batch_id == report.batch_id]
    assert len(batches) == 1 and batches[0].finished_at is not None
    assert batches[0].counts == ({"accepted": count} if count else {})


_ODD_VALUES = st.sampled_from(
    ["1e30", "NaN", "", " ", GTIN, "0", "-1", "2026-01-01T00:00:00Z", "DE89370400440532013000"]
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: hypothesis reads a lambda's source to see that it recurses, and a
    # lambda over several lines reads as "<unknown>" (a deprecation warning, an error here).
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


_RAW = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(st.characters(), max_size=6)  # NUL and lone surrogates included
    | _ODD_VALUES,
    _nested,
    max_leaves=5,
)
_SOURCES = {
    ("erp", "item"): ["sku", "v", "gtin", "name", "desc", "price", "brand"],
    ("erp", "supplier"): ["no", "v", "name", "vat", "country", "iban"],
    ("erp", "price"): ["sku", "list", "v", "amount"],
    ("pim", "item"): ["id", "updated", "sku", "gtin", "name", "desc", "price", "brand"],
    ("wms", "item"): ["sku", "seq", "gtin", "brand", "weight"],
}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(_SOURCES)).flatmap(
        lambda source: st.tuples(
            st.just(source),
            st.lists(
                st.fixed_dictionaries({}, optional=dict.fromkeys(_SOURCES[source], _RAW)),
                min_size=1,
                max_size=8,
            ),
        )
    )
)
def test_whatever_the_records_hold_the_batch_finishes_and_accounts_for_each(
    store: Store, ingestor: Ingestor, batch: tuple[tuple[str, str], list[dict[str, Any]]]
) -> None:
    """Bad input fails its own record, with field and rule, and never the batch: any mix of
    JSON-shaped values a source can send, into each source and domain, on each store."""
    (system, domain), rows = batch
    report = ingestor.ingest(system, domain, feed(rows), source="fuzz")
    assert report.received == len(rows)
    assert sum(report.outcomes.values()) == len(rows)


def test_trace_of_a_key_two_domains_share_asks_for_the_domain(
    store: Store, ingestor: Ingestor
) -> None:
    """ERP item 100 and ERP supplier 100: `trace erp:100` said there was no such record."""
    ingestor.ingest("erp", "item", feed([erp_item("100", 1, name="Pen")]))
    supplier = {"no": "100", "v": 1, "name": "Bolt AG", "country": "DE", "vat": "DE136695976"}
    ingestor.ingest("erp", "supplier", feed([supplier]))
    with pytest.raises(NotFound, match="erp key '100' names records in item and supplier: say"):
        trace(store, "erp:100")
    assert trace(store, "erp:100", "supplier").master_id.startswith("sup_")
    assert trace(store, "erp:100", "item").master_id.startswith("itm_")


def test_a_line_that_failed_to_parse_and_reads_now_closes_its_entry(
    store: Store, ingestor: Ingestor
) -> None:
    """`exceptions retry` says to fix the file and ingest it again; doing so left the entry
    open for good."""
    bad = ReadFailure("bad.csv:2", "csv_columns", "expected 3 fields, got 5", "A1,1,x,y,z")
    good = SourceRecord(erp_item("A1", 1, name="Pen"), "bad.csv:2")
    other = ReadFailure("bad.csv:5", "csv_columns", "expected 3 fields, got 4", "A4,1,x,y")

    def entries() -> list[tuple[str | None, str]]:
        with store.unit_of_work(write=False) as uow:
            found = uow.exceptions(ExceptionFilter(kind="parse_error", status=None))
        return sorted((e.locator, e.status.value) for e in found)

    ingestor.ingest("erp", "item", [bad], source="bad.csv")
    # Tomorrow's export of the same name has another record at line 2: it says nothing of
    # A1 (review found the entry closed, A1 never loaded).
    tomorrow = SourceRecord(erp_item("C9", 1, name="Clip"), "bad.csv:2")
    ingestor.ingest("erp", "item", [tomorrow], source="bad.csv")
    # Another file's line 2 read well says nothing of this one.
    ingestor.ingest(
        "erp", "item", [SourceRecord(erp_item("A1", 1), "other.csv:2")], source="other.csv"
    )
    assert entries() == [("bad.csv:2", "open")]
    ingestor.ingest("erp", "item", [good], source="bad.csv")
    assert entries() == [("bad.csv:2", "resolved")]
    # One open entry per rule stands at the line that failed last: line 2 fixed while
    # line 5 still fails leaves it open, at line 5.
    ingestor.ingest("erp", "item", [bad, other], source="bad.csv")
    ingestor.ingest("erp", "item", [good, other], source="bad.csv")
    assert entries()[-1] == ("bad.csv:5", "open")
    fixed = SourceRecord(erp_item("A4", 1), "bad.csv:5")
    ingestor.ingest("erp", "item", [good, fixed], source="bad.csv")
    assert {status for _, status in entries()} == {"resolved"}


def test_a_late_older_version_failing_the_same_way_leaves_the_newer_ones_entry_be(
    store: Store, ingestor: Ingestor
) -> None:
    """The entry took the late version's payload, and a retry then applied that old version:
    the newer one was lost."""
    price = {"sku": "Q1", "list": "L", "v": 2, "amount": "2.00"}
    ingestor.ingest("erp", "price", feed([price]))  # its item is not there yet
    report = ingestor.ingest("erp", "price", feed([{**price, "v": 1, "amount": "1.00"}]))
    assert report.outcomes["rejected"] == 1
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter(domain="price"))
    assert entry.kind == "unknown_reference" and entry.payload == price
    ingestor.ingest("erp", "item", feed([erp_item("Q1", 1, name="Pen")]))
    inbox = ExceptionsInbox(store, ingestor)
    assert inbox.retry([entry]).resolved == [entry.id]
    view = get_record(store, "price", "erp:Q1|L")
    assert view.golden.attributes["amount"] == "2"


def test_a_late_older_version_applied_leaves_a_newer_versions_entry_open(
    store: Store, ingestor: Ingestor
) -> None:
    """Review: v3 failed its mapping, a late v2 was applied and closed v3's entry as
    superseded; v3 was lost from the inbox."""
    ingestor.ingest("erp", "item", feed([erp_item("A8", 1, name="Pen")]))
    ingestor.ingest("erp", "item", feed([erp_item("A8", 3, name="Pen", price="cheap")]))
    report = ingestor.ingest("erp", "item", feed([erp_item("A8", 2, name="Pen v2")]))
    assert report.outcomes == Counter({"accepted": 1})
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter())
    assert (entry.kind, entry.field, entry.payload["v"]) == ("mapping_error", "list_price", 3)
    # Applying the version again (--reapply) leaves it open too.
    again = [SourceRecord(erp_item("A8", 2, name="Pen v2"), "feed:1", reapply=True)]
    ingestor.ingest("erp", "item", again)
    with store.unit_of_work(write=False) as uow:
        assert [e.id for e in uow.exceptions(ExceptionFilter())] == [entry.id]


def test_a_key_only_inside_another_value_of_the_line_does_not_settle_it(
    store: Store, ingestor: Ingestor
) -> None:
    """Review: the line kept 'A10,1,x,y,z' and a record A1 read there closed it."""
    a10 = ReadFailure("x.csv:3", "csv_columns", "expected 3 fields, got 5", "A10,1,x,y,z")
    ingestor.ingest("erp", "item", [a10], source="x.csv")
    ingestor.ingest("erp", "item", [SourceRecord(erp_item("A1", 1), "x.csv:3")], source="x.csv")
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter(kind="parse_error"))
    assert entry.locator == "x.csv:3"
    ingestor.ingest("erp", "item", [SourceRecord(erp_item("A10", 1), "x.csv:3")], source="x.csv")
    with store.unit_of_work(write=False) as uow:
        assert uow.exceptions(ExceptionFilter(kind="parse_error")) == []


def _customers(keys: list[list[str]] | None = None) -> Any:
    inbound = {
        "customer": {
            "key": "no",
            "version": {"from": "v", "kind": "counter"},
            "fields": {
                "name": "name",
                "country": {"const": "DE"},
                "customer_number": "cn",
                "tax_id": {"from": "vat", "optional": True},
            },
        }
    }
    doc = {
        "name": "crm-first",
        "systems": {
            "erp": {"kind": "erp", "inbound": inbound},
            "crm": {"kind": "crm", "inbound": inbound},
        },
        "domains": {
            "customer": {
                "natural_keys": keys or [["customer_number"]],
                "ownership": {"customer_number": ["erp"], "name": ["crm", "erp"]},
            }
        },
    }
    return compile_landscape(Landscape.model_validate(doc))


def test_a_crm_customer_with_the_erps_number_is_joined_by_the_erps_record(store: Store) -> None:
    """The CRM had the customer first, with the ERP's customer number (which the ERP owns):
    the ERP's record became a second golden record. And when the CRM's number changes,
    the old one no longer leads to it, in a later batch as in the same one."""
    ingest = Ingestor(store, _customers()).ingest
    crm = {"no": "K1", "v": 1, "name": "Acme", "cn": "10001"}
    report = ingest("crm", "customer", [SourceRecord(crm)])
    assert report.outcomes["accepted"] == 1
    ingest(
        "erp", "customer", [SourceRecord({"no": "10001", "v": 1, "name": "Acme", "cn": "10001"})]
    )
    with store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "crm", "K1")
        assert master is not None
        assert uow.find_master("customer", "erp", "10001") == master
    view = get_record(store, "customer", "erp:10001")
    assert view.golden.attributes["customer_number"] == "10001"
    # Another CRM customer with a number the ERP has not sent yet; then the number changes.
    ingest("crm", "customer", [SourceRecord({"no": "K2", "v": 1, "name": "Bolt", "cn": "20002"})])
    ingest("crm", "customer", [SourceRecord({"no": "K2", "v": 2, "name": "Bolt", "cn": "20003"})])
    ingest(
        "erp", "customer", [SourceRecord({"no": "20002", "v": 1, "name": "Bolt", "cn": "20002"})]
    )
    ingest(
        "erp", "customer", [SourceRecord({"no": "20003", "v": 1, "name": "Bolt", "cn": "20003"})]
    )
    with store.unit_of_work(write=False) as uow:
        k2 = uow.find_master("customer", "crm", "K2")
        assert uow.find_master("customer", "erp", "20003") == k2
        assert uow.find_master("customer", "erp", "20002") not in (None, k2)
    # Both versions in one batch.
    ingest(
        "crm",
        "customer",
        [
            SourceRecord({"no": "K3", "v": 1, "name": "Cog", "cn": "30003"}),
            SourceRecord({"no": "K3", "v": 2, "name": "Cog", "cn": "30004"}),
        ],
    )
    ingest("erp", "customer", [SourceRecord({"no": "30003", "v": 1, "name": "Cog", "cn": "30003"})])
    with store.unit_of_work(write=False) as uow:
        k3 = uow.find_master("customer", "crm", "K3")
        assert uow.find_master("customer", "erp", "30003") not in (None, k3)


def test_splitting_off_the_owners_record_takes_its_number_along(store: Store) -> None:
    """Review: the ERP's record split off from a customer whose CRM record also sends its
    customer number left the number identifying the CRM-only record; records of that
    number then joined it."""
    from mastersync.pipeline.matching.merging import split_record

    landscape = _customers()
    ingest = Ingestor(store, landscape).ingest
    ingest("crm", "customer", [SourceRecord({"no": "K1", "v": 1, "name": "Acme", "cn": "10001"})])
    ingest(
        "erp", "customer", [SourceRecord({"no": "10001", "v": 1, "name": "Acme", "cn": "10001"})]
    )
    new = split_record(store, landscape, "customer", "erp", "10001", actor="ana")
    with store.unit_of_work(write=False) as uow:
        assert uow.load_natural_keys("customer", [("customer_number", "10001")]) == {
            ("customer_number", "10001"): new
        }
    ingest("crm", "customer", [SourceRecord({"no": "K7", "v": 1, "name": "Acme", "cn": "10001"})])
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("customer", "crm", "K7") == new


GTIN_V = "04006381333931"
GTIN_G = "04012345000009"


def test_a_golden_value_from_another_source_record_is_checked_against_the_index(
    store: Store,
) -> None:
    """Review: the ERP's record stopped sending a GTIN, so the golden record took the
    PIM's, which another record holds. No record of the chunk carried that GTIN, so the
    chunk had not loaded its key, took it as free, and the insert failed the chunk for good
    ("another writer got there first") at every run. It is an ambiguous match now."""
    doc = landscape_doc()
    doc["domains"]["item"]["quality"] = []
    ingest = Ingestor(store, compile_landscape(Landscape.model_validate(doc))).ingest
    pim = {"sku": "P", "updated": "2026-01-01T00:00:00Z"}
    ingest("pim", "item", feed([{**pim, "id": "P2", "gtin": GTIN_V}]))
    ingest("erp", "item", feed([{"sku": "E1", "v": 1, "name": "Pen", "gtin": GTIN_G}]))
    ingest("pim", "item", feed([{**pim, "id": "P1", "gtin": GTIN_G}]))
    ingest("pim", "item", feed([{**pim, "id": "P1", "gtin": GTIN_V, "updated": "2026-02-01Z"}]))
    report = ingest(
        "erp", "item", feed([{"sku": "E1", "v": 2, "name": "Pen"}, erp_item("E5", 1, name="Pad")])
    )
    assert (report.outcomes["rejected"], report.outcomes["accepted"]) == (1, 1)
    assert "already identifies" in report.samples[0]


def test_a_moved_keys_warning_waits_for_a_person(store: Store) -> None:
    """Review: the `sent_key` warning (are these two one?) was settled by the ERP record's
    next version, a name change that settled nothing."""
    ingest = Ingestor(store, _customers()).ingest
    ingest("crm", "customer", [SourceRecord({"no": "K1", "v": 1, "name": "Acme", "cn": "10001"})])
    ingest("erp", "customer", [SourceRecord({"no": "E2", "v": 1, "name": "Bolt", "cn": "20002"})])
    ingest("erp", "customer", [SourceRecord({"no": "E2", "v": 2, "name": "Bolt", "cn": "10001"})])
    ingest(
        "erp", "customer", [SourceRecord({"no": "E2", "v": 3, "name": "Bolt AG", "cn": "10001"})]
    )
    with store.unit_of_work(write=False) as uow:
        entries = uow.exceptions(ExceptionFilter(status=None, system="erp"))
    assert [(e.rule, e.status) for e in entries] == [("sent_key", ExceptionStatus.OPEN)]


def test_every_number_a_customers_source_records_send_identifies_it(store: Store) -> None:
    """Review: only the first source record's number counted (by system and key). A second
    CRM record joining through the VAT number, with another customer number, took the first
    one's number out of the index, and the ERP's record of it became a second customer."""
    ingest = Ingestor(store, _customers([["customer_number"], ["tax_id"]])).ingest
    vat = "DE136695976"
    ingest(
        "crm",
        "customer",
        [SourceRecord({"no": "K2", "v": 1, "name": "A", "cn": "100", "vat": vat})],
    )
    ingest(
        "crm",
        "customer",
        [SourceRecord({"no": "K0", "v": 1, "name": "A", "cn": "200", "vat": vat})],
    )
    ingest("erp", "customer", [SourceRecord({"no": "E1", "v": 1, "name": "A", "cn": "100"})])
    with store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "crm", "K2")
        assert master is not None
        assert uow.find_master("customer", "crm", "K0") == master
        assert uow.find_master("customer", "erp", "E1") == master
        keys = {(n, v) for _, n, v, _ in uow.natural_keys_of([master])}
    # The ERP's number is the record's own now: the CRM's other number identifies it no more.
    assert keys == {("customer_number", "100"), ("tax_id", vat)}


def _keys_of(store: Store, master: str) -> set[tuple[str, str]]:
    with store.unit_of_work(write=False) as uow:
        return {(n, v) for _, n, v, _ in uow.natural_keys_of([master])}


def test_a_number_a_record_holds_that_nothing_indexes_is_taken_at_its_next_change(
    store: Store,
) -> None:
    """Review: a value the record already held was looked at only when new to it, so one
    left unindexed (stored when only the first source record's value counted) stayed so."""
    ingest = Ingestor(store, _customers([["customer_number"], ["tax_id"]])).ingest
    vat = "DE136695976"
    k2 = {"no": "K2", "v": 1, "name": "A", "cn": "100", "vat": vat}
    ingest("crm", "customer", [SourceRecord(k2)])
    ingest("crm", "customer", [SourceRecord({**k2, "no": "K0", "cn": "200"})])
    with store.unit_of_work() as uow:
        master = uow.find_master("customer", "crm", "K2")
        assert master is not None
        uow.conn.execute(  # type: ignore[attr-defined]
            sa.delete(natural_key).where(natural_key.c.value == "100")
        )
        uow.commit()
    ingest("crm", "customer", [SourceRecord({**k2, "v": 2, "name": "A2"})])
    assert ("customer_number", "100") in _keys_of(store, master)


def test_a_split_indexes_the_numbers_the_kept_record_is_left_with(store: Store) -> None:
    """Review: two CRM records (100, 200) joined by VAT, then the ERP's 100 made 100 the
    golden value (200 left the index). Splitting the ERP's record off left the kept record
    found by neither number: the ERP's record of 200 became a second customer."""
    from mastersync.pipeline.matching.merging import split_record

    landscape = _customers([["customer_number"], ["tax_id"]])
    ingest = Ingestor(store, landscape).ingest
    vat = "DE136695976"
    k2 = {"no": "K2", "v": 1, "name": "A", "cn": "100", "vat": vat}
    ingest("crm", "customer", [SourceRecord(k2)])
    ingest("crm", "customer", [SourceRecord({**k2, "no": "K0", "cn": "200"})])
    ingest("erp", "customer", [SourceRecord({"no": "E1", "v": 1, "name": "A", "cn": "100"})])
    with store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "crm", "K2")
    assert master is not None and ("customer_number", "200") not in _keys_of(store, master)
    created = split_record(store, landscape, "customer", "erp", "E1", actor="ops")
    assert _keys_of(store, created) == {("customer_number", "100")}
    assert _keys_of(store, master) == {("customer_number", "200"), ("tax_id", vat)}
    ingest("erp", "customer", [SourceRecord({"no": "E2", "v": 1, "name": "A", "cn": "200"})])
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("customer", "erp", "E2") == master


def test_a_composite_key_mixing_two_sources_is_an_ambiguous_match_not_a_failed_chunk(
    store: Store,
) -> None:
    """Review: the PIM wins the SKU and the ERP the brand, so a record's key [sku, brand]
    became a value no source sent whole; never loaded, it was taken as free, its insert
    collided with the record holding it, and the whole chunk failed at every run."""
    item = {"key": "sku", "fields": {"sku": "sku", "brand": "brand"}}
    doc = {
        "name": "mixed",
        "systems": {
            "erp": {
                "kind": "erp",
                "inbound": {"item": {**item, "version": {"from": "v", "kind": "counter"}}},
            },
            "pim": {"kind": "pim", "inbound": {"item": {**item, "key": "id"}}},
        },
        "domains": {
            "item": {
                "natural_keys": [["sku", "brand"]],
                "survivorship": {
                    "default": {"rule": "source_priority", "systems": ["erp", "pim"]},
                    "sku": {"rule": "source_priority", "systems": ["pim", "erp"]},
                },
                "matching": False,
            }
        },
    }
    ingestor = Ingestor(store, compile_landscape(Landscape.model_validate(doc)))
    erp = [{"sku": s, "v": 1, "brand": "B1"} for s in ("S1", "S2")]
    ingestor.ingest("erp", "item", [SourceRecord(r) for r in erp])
    ingestor.ingest("pim", "item", [SourceRecord({"id": "P1", "sku": "S1", "brand": "B1"})])
    first = get_record(store, "item", "erp:S1").golden.master_id
    second = get_record(store, "item", "erp:S2").golden.master_id
    assert get_record(store, "item", "pim:P1").golden.master_id == first
    # P1 now gives S2 (it wins the SKU) and B9 (the ERP's B1 wins the brand): S2|B1, which
    # the second record holds. One record is refused; the other in the chunk goes on.
    report = ingestor.ingest(
        "pim",
        "item",
        [
            SourceRecord({"id": "P1", "sku": "S2", "brand": "B9"}),
            SourceRecord({"id": "P2", "sku": "S7", "brand": "B7"}),
        ],
    )
    assert report.outcomes["rejected"] == 1 and report.outcomes["accepted"] == 1, report.outcomes
    with store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter(kind="ambiguous_match"))
    assert entry.source_key == "P1" and second in entry.message
    assert get_record(store, "item", "erp:S1").golden.attributes["sku"] == "S1"


def test_a_chunk_meeting_one_conflict_after_another_is_redone_after_growing_pauses(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a steward merging and unmerging a chunk's records moved them under it at
    every attempt; redone at once five times, the chunk stopped its batch for good."""
    from mastersync.pipeline.chunk import ChunkRun
    from mastersync.ports.store import ConcurrencyError

    real = ChunkRun.apply
    conflicts = iter(range(7))

    def apply(self: ChunkRun, uow: Any, items: Any) -> None:
        if next(conflicts, None) is not None:
            raise ConcurrencyError("a merge moved one of its records")
        real(self, uow, items)

    monkeypatch.setattr(ChunkRun, "apply", apply)
    pauses: list[float] = []
    ingestor = Ingestor(store, compiled(), pause=pauses.append)
    report = ingestor.ingest("erp", "item", [SourceRecord(erp_item("A1", 1, name="Pen"))])
    assert report.outcomes["accepted"] == 1
    assert len(pauses) == 7
    assert pauses[-1] > pauses[0] > 0  # growing, jittered (within half to one and a half)
    assert all(p <= 1.5 for p in pauses)
