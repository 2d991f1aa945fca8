"""Dispatch accepted transaction sets to their record extractors."""

from __future__ import annotations

from collections.abc import Callable

from mastersync.connectors.edi.extract import Context
from mastersync.connectors.edi.x12.catalog import extract_832
from mastersync.connectors.edi.x12.fields import set_context
from mastersync.connectors.edi.x12.inventory import extract_846
from mastersync.connectors.edi.x12.maintenance import extract_888
from mastersync.connectors.edi.x12.model import FunctionalGroup, Interchange, TransactionSet

EXTRACTORS: dict[str, Callable[[Context], None]] = {
    "832": extract_832,
    "846": extract_846,
    "888": extract_888,
}


def extract_records(ic: Interchange, group: FunctionalGroup, ts: TransactionSet) -> None:
    """Fill `ts.records` for the set types that have a record mapping; others keep segments."""
    extractor = EXTRACTORS.get(ts.id)
    if extractor is not None:
        extractor(set_context(ic, group, ts))
