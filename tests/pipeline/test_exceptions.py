"""The inbox's retry: which mapping a kept record goes through again, and what it reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.pipeline.exceptions import ExceptionsInbox, _api_shape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import ExceptionFilter, Store
from tests.support import compiled, erp_item, landscape_doc

GTIN = "4006381333931"


def _entry(locator: str | None, payload: Any) -> ExceptionEntry:
    return ExceptionEntry(
        "validation_error", "portal", "item", "r", "m", "s", payload, "now", locator=locator
    )


@pytest.mark.parametrize(
    ("locator", "payload", "shape"),
    [
        ("api 01a2", {"key": "A1", "attributes": {"name": "x"}}, False),
        ("api 01a2", {"key": "A1", "version": 3, "attributes": {}}, True),
        # A file named "api items.csv" gives its lines such locators: its records are read
        # through the landscape's mapping, as before.
        ("api items.csv:3", {"sku": "A1", "name": "x"}, None),
        ("api items.csv:4", {"key": "A1", "attributes": {}, "brand": "b"}, None),
        ("items.csv:3", {"key": "A1", "attributes": {}}, None),
        (None, {"key": "A1", "attributes": {}}, None),
        ("api 01a2", ["not", "a", "record"], None),
    ],
)
def test_only_records_the_api_wrote_retry_in_its_shape(
    locator: str | None, payload: Any, shape: bool | None
) -> None:
    assert _api_shape(_entry(locator, payload)) is shape


def test_a_retried_record_rejected_under_another_rule_is_still_failing(store: Store) -> None:
    """Review: a mapping error retried after its value map was fixed, then rejected by the
    schema with a new entry, was reported "resolved: 1, still failing: 0"."""
    ingestor = Ingestor(store, compiled())
    bad = erp_item("A1", 1, name="Pen", gtin="4006381333932", price="cheap")
    ingestor.ingest("erp", "item", [SourceRecord(bad, "feed:1")])
    with store.unit_of_work(write=False) as uow:
        [mapping] = uow.exceptions(ExceptionFilter())
    assert (mapping.kind, mapping.field) == ("mapping_error", "list_price")
    # The price maps now; the GTIN's check digit fails the schema instead.
    doc = copy.deepcopy(landscape_doc())  # its field specs are shared
    fields = doc["systems"]["erp"]["inbound"]["item"]["fields"]
    fields["list_price"] = {"from": "price", "optional": True, "map": {"cheap": "1.00"}}
    relaxed = ExceptionsInbox(
        store, Ingestor(store, compile_landscape(Landscape.model_validate(doc)))
    )
    report = relaxed.retry(relaxed.entries([mapping.id or 0]))
    with store.unit_of_work(write=False) as uow:
        [gtin] = uow.exceptions(ExceptionFilter())
        closed = uow.exception(mapping.id or 0)
    assert (gtin.kind, gtin.rule) == ("validation_error", "gtin_check_digit")
    assert (report.resolved, report.still_failing) == ([], [mapping.id])
    assert report.failing_as == {mapping.id: [gtin.id]}
    # The old entry is closed as superseded, saying the record fails otherwise.
    assert closed is not None and closed.status is ExceptionStatus.RESOLVED
    assert closed.resolution is not None and closed.resolution["by"] == "superseded"
    assert "rejected for other problems" in closed.resolution["note"]
    # Applied at last: resolved, nothing named.
    fields["gtin"] = {"from": "gtin", "optional": True, "map": {"4006381333932": "4006381333931"}}
    fixed = ExceptionsInbox(
        store, Ingestor(store, compile_landscape(Landscape.model_validate(doc)))
    )
    report = fixed.retry(fixed.entries([gtin.id or 0]))
    assert (report.resolved, report.still_failing, report.failing_as) == ([gtin.id], [], {})


def test_a_retried_record_applied_with_a_warning_is_resolved(store: Store) -> None:
    """A warning the retry raises (an ownership violation: the record is applied) is no
    rejection: the entry retried counts as resolved."""
    ingestor = Ingestor(store, compiled())
    pen = erp_item("A1", 1, name="Pen", gtin=GTIN)
    ingestor.ingest("erp", "item", [SourceRecord(pen, "f:1")])
    pim = {"id": "P1", "updated": "2026-01-01T00:00:00Z", "gtin": GTIN, "name": "Stylo"}
    pim["price"] = "cheap"
    ingestor.ingest("pim", "item", [SourceRecord(pim, "f:1")])
    with store.unit_of_work(write=False) as uow:
        [mapping] = uow.exceptions(ExceptionFilter())
    assert mapping.kind == "mapping_error"
    doc = copy.deepcopy(landscape_doc())  # its field specs are shared
    fields = doc["systems"]["pim"]["inbound"]["item"]["fields"]
    fields["list_price"] = {"from": "price", "optional": True, "map": {"cheap": "1.00"}}
    relaxed = ExceptionsInbox(
        store, Ingestor(store, compile_landscape(Landscape.model_validate(doc)))
    )
    report = relaxed.retry(relaxed.entries([mapping.id or 0]))
    with store.unit_of_work(write=False) as uow:
        kinds = {e.kind for e in uow.exceptions(ExceptionFilter())}
    assert kinds == {"ownership_violation"}
    assert (report.resolved, report.still_failing) == ([mapping.id], [])
