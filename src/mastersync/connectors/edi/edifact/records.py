"""Dispatch EDIFACT messages to their record extractors."""

from __future__ import annotations

from collections.abc import Callable

from mastersync.connectors.edi.edifact.fields import message_context
from mastersync.connectors.edi.edifact.invrpt import extract_invrpt
from mastersync.connectors.edi.edifact.model import EdifactGroup, EdifactInterchange, Message
from mastersync.connectors.edi.edifact.pricat import extract_pricat
from mastersync.connectors.edi.extract import Context

EXTRACTORS: dict[str, Callable[[Context], None]] = {
    "PRICAT": extract_pricat,
    "INVRPT": extract_invrpt,
}


def extract_records(ic: EdifactInterchange, group: EdifactGroup | None, msg: Message) -> None:
    """Fill `msg.records` for the message types that have a record mapping."""
    extractor = EXTRACTORS.get(msg.type)
    if extractor is not None:
        extractor(message_context(ic, group, msg))
