"""Helpers shared by the EDIFACT record extractors: envelope fields, ids, texts, dates."""

from __future__ import annotations

from mastersync.connectors.edi.edifact.model import EdifactGroup, EdifactInterchange, Message
from mastersync.connectors.edi.edifact.scanner import normalise_number
from mastersync.connectors.edi.extract import Context, Ids, put
from mastersync.connectors.edi.model import Record, Segment

# Item number types that carry a GS1 GTIN (EN EAN, SRV GS1 item number, UP UPC).
GTIN_TYPES = frozenset({"EN", "SRV", "UP"})


def message_context(ic: EdifactInterchange, group: EdifactGroup | None, msg: Message) -> Context:
    """The extraction context of one message; numbers are normalised to a dot decimal mark."""
    base = {
        "set_id": msg.type,
        "interchange_control": ic.control_reference,
        "group_control": group.reference if group else "",
        "set_control": msg.reference,
        "sender_qualifier": ic.sender_qualifier,
        "sender_id": ic.sender_id,
        "receiver_qualifier": ic.recipient_qualifier,
        "receiver_id": ic.recipient_id,
        "interchange_date": ic.date,
        "interchange_time": ic.time,
        "version": msg.identifier.partition(":")[2],
        "syntax": f"{ic.syntax_id}:{ic.syntax_version}",
        "test_indicator": ic.test_indicator,
    }
    return Context(
        msg.segments,
        msg.trailer is not None,
        msg.errors,
        msg.records,
        Ids.of(base),
        base,
        normalise=normalise_number,
        header_position=(msg.header.file_position, msg.header.offset),
    )


def add_item_number(rec: Record, number: str, kind: str) -> None:
    """An item number and its type (C212 7140/7143) into id_<type> (and gtin)."""
    if number and kind:
        rec.setdefault(f"id_{kind}", number)
        if kind in GTIN_TYPES and number.isdigit():
            rec.setdefault("gtin", number)


def add_lin(rec: Record, seg: Segment) -> None:
    """LIN: line number, action code, and the item number of C212."""
    put(rec, "line_number", seg.get(1))
    put(rec, "action", seg.get(2))
    put(rec, "item_number", seg.get(3, 1))
    put(rec, "item_number_type", seg.get(3, 2))
    add_item_number(rec, seg.get(3, 1), seg.get(3, 2))


def add_pia(rec: Record, seg: Segment) -> None:
    """PIA: up to five additional item numbers (C212) by type."""
    for index in range(2, 7):
        add_item_number(rec, seg.get(index, 1), seg.get(index, 2))


def add_imd(rec: Record, seg: Segment) -> None:
    """IMD: text to `description` (or `description_<characteristic>`), codes to `_code`."""
    characteristic = seg.get(2, 1)
    key = f"description_{characteristic}" if characteristic else "description"
    # The two 7008 components continue one another (35 characters each).
    text = seg.get(3, 4) + seg.get(3, 5)
    if text:
        rec.setdefault(key, text)
    put(rec, f"{key}_code", rec.get(f"{key}_code") or seg.get(3, 1))


def add_dtm(rec: Record, prefix: str, seg: Segment) -> None:
    """DTM C507 (qualifier, value, format) into `<prefix>_<qualifier>` (+ `_format`)."""
    qualifier, value, fmt = seg.get(1, 1), seg.get(1, 2), seg.get(1, 3)
    if qualifier and value:
        rec.setdefault(f"{prefix}_{qualifier}", value)
        put(rec, f"{prefix}_{qualifier}_format", fmt)


def add_nad(rec: Record, seg: Segment) -> None:
    """NAD: party_<qualifier>_id (C082), _id_agency, _name (C080 or C058)."""
    qualifier = seg.get(1)
    if not qualifier:
        return
    put(rec, f"party_{qualifier}_id", seg.get(2, 1))
    put(rec, f"party_{qualifier}_id_agency", seg.get(2, 3))
    put(rec, f"party_{qualifier}_name", seg.get(4, 1) or seg.get(3, 1))


def add_header(rec: Record, seg: Segment) -> bool:
    """BGM, DTM, NAD, CUX, RFF of a message heading; False for other segments."""
    sid = seg.id
    if sid == "BGM":
        put(rec, "document_type", seg.get(1, 1))
        put(rec, "document_number", seg.get(2, 1))
        put(rec, "message_function", seg.get(3))
    elif sid == "DTM":
        add_dtm(rec, "header_date", seg)
    elif sid == "NAD":
        add_nad(rec, seg)
    elif sid == "CUX":
        put(rec, "currency", seg.get(1, 2))
    elif sid == "RFF":
        put(rec, f"header_ref_{seg.get(1, 1)}", seg.get(1, 2))
    else:
        return False
    return True


def add_quantity(ctx: Context, rec: Record, seg: Segment) -> None:
    """QTY C186 into quantity_<qualifier> and quantity_<qualifier>_unit."""
    qualifier = seg.get(1, 1)
    if qualifier:
        ctx.number(rec, f"quantity_{qualifier}", seg, 1, 2)
        put(rec, f"quantity_{qualifier}_unit", seg.get(1, 3))


def add_measure(ctx: Context, rec: Record, seg: Segment) -> None:
    """MEA: measure_<dimension> = value (C174 6314), measure_<dimension>_unit (6411)."""
    dimension = seg.get(2, 1) or seg.get(1)
    if dimension:
        ctx.number(rec, f"measure_{dimension}", seg, 3, 2)
        put(rec, f"measure_{dimension}_unit", seg.get(3, 1))
