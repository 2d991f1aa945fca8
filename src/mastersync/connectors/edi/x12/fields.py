"""Helpers shared by the X12 record extractors: envelope fields, ids, dates, parties."""

from __future__ import annotations

import re

from mastersync.connectors.edi.extract import Context, Ids, put
from mastersync.connectors.edi.model import Record, Segment
from mastersync.connectors.edi.x12.model import FunctionalGroup, Interchange, TransactionSet

# Product id qualifiers that carry a GS1 GTIN (UPC-A, EAN, GTIN-14, UPC/EAN case code).
GTIN_QUALIFIERS = frozenset({"UP", "EN", "UK", "UA", "UN", "EO"})
_QUALIFIER = re.compile(r"[A-Z0-9]{1,3}\Z")


def set_context(ic: Interchange, group: FunctionalGroup, ts: TransactionSet) -> Context:
    """The extraction context of one transaction set."""
    base = {
        "set_id": ts.id,
        "interchange_control": ic.control_number,
        "group_control": group.control_number,
        "set_control": ts.control_number,
        "sender_qualifier": ic.sender_qualifier,
        "sender_id": ic.sender_id,
        "receiver_qualifier": ic.receiver_qualifier,
        "receiver_id": ic.receiver_id,
        "app_sender": group.application_sender,
        "app_receiver": group.application_receiver,
        "interchange_date": ic.date,
        "interchange_time": ic.time,
        "group_date": group.date,
        "group_time": group.time,
        "version": group.version,
        "usage_indicator": ic.usage_indicator,
    }
    return Context(
        ts.segments,
        ts.trailer is not None,
        ts.errors,
        ts.records,
        Ids.of(base),
        base,
        header_position=(ts.header.file_position, ts.header.offset),
    )


def add_ids(ctx: Context, rec: Record, seg: Segment, first: int, pairs: int = 15) -> None:
    """Copy qualifier/id pairs starting at element `first` into id_<qualifier> (and gtin)."""
    for i in range(first, first + 2 * pairs, 2):
        qualifier, value = seg.get(i), seg.get(i + 1)
        if not qualifier and not value:
            continue
        if not _QUALIFIER.match(qualifier):
            ctx.error(
                "invalid_qualifier",
                f"{seg.id}{i:02d} {qualifier!r} is not a product id qualifier",
                seg,
                element=i,
                value=qualifier,
            )
            continue
        if not value:
            ctx.error(
                "missing_element",
                f"{seg.id}{i + 1:02d} has no id for {qualifier}",
                seg,
                element=i + 1,
            )
            continue
        rec.setdefault(f"id_{qualifier}", value)
        if qualifier in GTIN_QUALIFIERS and value.isdigit():
            rec.setdefault("gtin", value)


def add_date(rec: Record, prefix: str, seg: Segment) -> None:
    """DTM (qualifier, date, time) into `<prefix>_<qualifier>` (+ `_time`)."""
    qualifier, date, time = seg.get(1), seg.get(2), seg.get(3)
    if qualifier and date:
        rec.setdefault(f"{prefix}_{qualifier}", date)
        put(rec, f"{prefix}_{qualifier}_time", time)


def add_party(rec: Record, seg: Segment) -> None:
    """N1 (entity, name, id qualifier, id) into party_<entity>_name/_id/_id_qualifier."""
    entity = seg.get(1)
    if not entity:
        return
    put(rec, f"party_{entity}_name", seg.get(2))
    put(rec, f"party_{entity}_id_qualifier", seg.get(3))
    put(rec, f"party_{entity}_id", seg.get(4))


def add_description(rec: Record, seg: Segment, prefix: str = "description") -> None:
    """PID: free text goes to `description`, coded characteristics to `description_<code>`."""
    code, text = seg.get(2), seg.get(5)
    if not text:
        return
    key = prefix if code in ("", "08", "GEN") else f"{prefix}_{code}"
    rec.setdefault(key, text)
