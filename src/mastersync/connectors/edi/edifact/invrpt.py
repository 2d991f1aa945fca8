"""INVRPT inventory report: one "inventory" record per QTY, located by LOC (or the heading)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mastersync.connectors.edi.edifact.fields import (
    add_dtm,
    add_header,
    add_imd,
    add_lin,
    add_pia,
)
from mastersync.connectors.edi.extract import Context, fill, put, settle_description
from mastersync.connectors.edi.model import Record, Segment

# NAD qualifiers that name the stock location when no LOC does: warehouse, reporting party.
LOCATION_PARTIES = ("WH", "GY")
AS_OF_QUALIFIER = "366"  # inventory report date


def _location(seg: Segment) -> Record:
    loc: Record = {}
    put(loc, "location", seg.get(2, 1) or seg.get(2, 4))
    put(loc, "location_qualifier", seg.get(1))
    put(loc, "location_name", seg.get(2, 4))
    return loc


@dataclass(slots=True)
class _Line:
    item: Record
    records: list[Record] = field(default_factory=list)
    location: Record = field(default_factory=dict)  # a LOC before any QTY of the line
    last: Record | None = None
    last_has_loc: bool = False
    last_has_inv: bool = False
    pending_inv: Record = field(default_factory=dict)


def _inv(line: _Line, seg: Segment) -> None:
    fields: Record = {}
    put(fields, "movement_direction", seg.get(1))
    put(fields, "inventory_type", seg.get(2))
    put(fields, "movement_reason", seg.get(3))
    put(fields, "balance_method", seg.get(4))
    # INV leads its QTY group in later EANCOM releases and follows the QTY in D.96A.
    if line.last is not None and not line.last_has_inv:
        line.last.update(fields)
        line.last_has_inv = True
    else:
        line.pending_inv = fields


def _quantity(ctx: Context, line: _Line, seg: Segment) -> None:
    rec = ctx.record("inventory", seg)
    put(rec, "quantity_qualifier", seg.get(1, 1))
    ctx.number(rec, "quantity", seg, 1, 2)
    put(rec, "uom", seg.get(1, 3))
    rec.update(line.pending_inv)
    line.last_has_inv, line.pending_inv = bool(line.pending_inv), {}
    line.records.append(rec)
    line.last, line.last_has_loc = rec, False


def _finish(line: _Line, head: Record, default_location: Record, out: list[Record]) -> None:
    settle_description(line.item)
    for rec in line.records:
        if "location" not in rec:
            # Every location field from one place: a record that names its own location
            # (SDQ, a LOC after the quantity) takes nothing from another one (it took the
            # header location's name and qualifier beside its own id).
            fill(rec, line.location or default_location)
        as_of = (
            rec.get(f"date_{AS_OF_QUALIFIER}")
            or line.item.get(f"date_{AS_OF_QUALIFIER}")
            or head.get(f"header_date_{AS_OF_QUALIFIER}")
            or head.get("header_date_137", "")
        )
        put(rec, "as_of", as_of)
        fill(rec, line.item)
        fill(rec, head)
        out.append(rec)


def extract_invrpt(ctx: Context) -> None:
    """Inventory records of an INVRPT; BGM is required."""
    ctx.require("BGM")
    head: Record = {}
    heading_location: Record = {}
    out: list[Record] = []
    line: _Line | None = None
    for seg in ctx.body:
        sid = seg.id
        if sid == "UNS":
            break
        if sid == "LIN":
            if line is not None:
                _finish(line, head, heading_location or _party_location(head), out)
            item: Record = {}
            add_lin(item, seg)
            line = _Line(item)
        elif line is None:
            if sid == "LOC":
                heading_location = heading_location or _location(seg)
            else:
                add_header(head, seg)
        elif sid == "QTY":
            _quantity(ctx, line, seg)
        elif sid == "LOC":
            if line.last is not None and not line.last_has_loc:
                line.last.update(_location(seg))
                line.last_has_loc = True
            elif line.last is None:
                line.location = _location(seg)
        elif sid == "INV":
            _inv(line, seg)
        elif sid == "DTM":
            add_dtm(line.last if line.last is not None else line.item, "date", seg)
        elif sid == "PIA":
            add_pia(line.item, seg)
        elif sid == "IMD":
            add_imd(line.item, seg)
    if line is not None:
        _finish(line, head, heading_location or _party_location(head), out)
    ctx.records.extend(out)


def _party_location(head: Record) -> Record:
    for qualifier in LOCATION_PARTIES:
        if f"party_{qualifier}_id" in head:
            loc: Record = {
                "location": head[f"party_{qualifier}_id"],
                "location_qualifier": qualifier,
            }
            put(loc, "location_name", head.get(f"party_{qualifier}_name", ""))
            return loc
    return {}
