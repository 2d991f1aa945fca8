"""File exports and a field cleared at the hub (sent as null): an empty CSV cell, never the
text "None"; in JSON lines null for a record the partner has, left out of a new one."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from mastersync.connectors.files.connector import FilesConnector
from mastersync.connectors.files.settings import FileSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest


def exporting(tmp_path: Path, export: str) -> FilesConnector:
    settings = FileSettings.model_validate(
        {"type": "files", "exports": {"catalog": {"folder": "out", "format": export}}}
    )
    return FilesConnector(settings, ConnectorContext("partner", tmp_path))


def request(n: int, target_key: str | None, payload: dict[str, Any]) -> DeliveryRequest:
    return DeliveryRequest(
        "partner.catalog",
        "partner",
        "item",
        f"itm_{n}",
        2,
        Operation.UPSERT,
        f"itm_{n}:2",
        target_key,
        payload,
        "t",
    )


# The partner has itm_1 (the hub holds its key) and not itm_2 yet; both lack a title.
ROUND = [
    request(1, "itm_1", {"sku": "A1", "title": None, "price": "1.50"}),
    request(2, None, {"sku": "A2", "title": None, "price": "2.50"}),
]


def exported(tmp_path: Path, suffix: str) -> str:
    [written] = (tmp_path / "out").glob(f"catalog-*.{suffix}")
    return written.read_text(encoding="utf-8")


@pytest.mark.parametrize("export", ["csv", "jsonl"])
def test_a_cleared_field_is_never_the_text_none(tmp_path: Path, export: str) -> None:
    acks = asyncio.run(exporting(tmp_path, export).send_batch(ROUND))
    assert all(isinstance(a, DeliveryAck) for a in acks)
    assert "None" not in exported(tmp_path, export)


def test_a_cleared_field_is_an_empty_csv_cell(tmp_path: Path) -> None:
    asyncio.run(exporting(tmp_path, "csv").send_batch(ROUND))
    rows = list(csv.DictReader(exported(tmp_path, "csv").splitlines()))
    assert [(r["sku"], r["title"], r["price"]) for r in rows] == [
        ("A1", "", "1.50"),
        ("A2", "", "2.50"),
    ]


def test_a_csv_of_new_records_keeps_the_column_of_a_cleared_field(tmp_path: Path) -> None:
    """The header is the fields of the round's records: a null left out of new records
    would take the column away from the partner's file."""
    asyncio.run(exporting(tmp_path, "csv").send_batch(ROUND[1:]))
    assert exported(tmp_path, "csv").splitlines()[0].startswith("sku,title,price")


def test_a_cleared_field_is_null_for_a_record_the_partner_has_left_out_of_a_new_one(
    tmp_path: Path,
) -> None:
    """Review: a new record's line carried the null too; absent, the partner's own default
    applies (as a key left out of an update keeps the partner's value)."""
    asyncio.run(exporting(tmp_path, "jsonl").send_batch(ROUND))
    held, new = (orjson.loads(line) for line in exported(tmp_path, "jsonl").splitlines())
    assert held["title"] is None
    assert "title" not in new
    assert (held["sku"], new["sku"], new["price"]) == ("A1", "A2", "2.50")
