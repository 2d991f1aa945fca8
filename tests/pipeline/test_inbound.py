"""Incremental pollers: pages after a saved cursor, and what a page's batch tells people."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mastersync.bootstrap import build_hub
from mastersync.pipeline.inbound import incremental_poller, parked_poller
from mastersync.ports.connector import Page, SourceRecord
from tests.support import misspelt_pim, pim_products


class _Pages:
    """An IncrementalSource over fixed records, ``limit`` at a time, the cursor an offset."""

    def __init__(self, records: list[dict[str, object]]) -> None:
        self.records = records

    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        start = int(cursor or 0)
        page = self.records[start : start + limit]
        end = start + len(page)
        return Page([SourceRecord(r) for r in page], str(end), end < len(self.records))


def test_a_field_no_record_filled_through_an_expression_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(misspelt_pim())
    records: list[dict[str, object]] = list(pim_products(60))
    hub = build_hub(landscape)
    poll = incremental_poller(hub.ingestor, _Pages(records), "pim", "item", every=0, page_size=30)
    with caplog.at_level("WARNING", logger="mastersync.inbound"):
        assert asyncio.run(poll()) == 60
    [warning] = [r.getMessage() for r in caplog.records]  # two pages, said once
    assert warning.startswith("pim.item in:pim.item: brand ('values.brnad[0].data') was empty")
    with hub.store.unit_of_work(write=False) as uow:
        assert uow.cursor_state("in:pim.item") == "60"
    hub.close()


def test_a_poller_that_is_not_due_returns_none_not_zero(tmp_path: Path) -> None:
    """A poll between polls did nothing (it did not ask the store): 0 made the hub take it
    for a poll that went through, and reset its count of failures during an outage."""
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(misspelt_pim())
    hub = build_hub(landscape)
    records: list[dict[str, object]] = list(pim_products(3))
    poll = incremental_poller(hub.ingestor, _Pages(records), "pim", "item", every=60, page_size=30)
    parked = parked_poller(hub.inbox, every=60)

    async def polls() -> list[int | None]:
        return [await poll(), await poll(), await parked(), await parked()]

    assert asyncio.run(polls()) == [3, None, 0, None]
    hub.close()
