"""The inbox's retry: which mapping a kept record goes through again."""

from __future__ import annotations

from typing import Any

import pytest

from mastersync.domain.records import ExceptionEntry
from mastersync.pipeline.exceptions import _api_shape


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
