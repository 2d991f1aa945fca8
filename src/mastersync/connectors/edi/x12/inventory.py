"""846 Inventory Inquiry/Advice: one "inventory" record per quantity (QTY, or SDQ breakdown)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mastersync.connectors.edi.extract import Context, fill, put, settle_description
from mastersync.connectors.edi.model import Record, Segment
from mastersync.connectors.edi.x12.fields import (
    add_date,
    add_description,
    add_ids,
    add_party,
)

# N1 entity codes that name a stock location, most specific first.
LOCATION_ENTITIES = ("WH", "SN", "RL", "ST", "SF", "DA", "LO", "FA")
# DTM qualifiers that date a stock figure: 007 effective, 194 period end.
AS_OF_QUALIFIERS = ("007", "194")


def _location(seg: Segment) -> Record:
    loc: Record = {}
    put(loc, "location", seg.get(4) or seg.get(2))
    put(loc, "location_qualifier", seg.get(1))
    put(loc, "location_id_qualifier", seg.get(3))
    put(loc, "location_name", seg.get(2))
    return loc


def _as_of(*levels: Record) -> str:
    for level in levels:
        for qualifier in AS_OF_QUALIFIERS:
            if f"date_{qualifier}" in level:
                return level[f"date_{qualifier}"]
    return ""


@dataclass(slots=True)
class _Line:
    """One LIN loop: its item fields, its quantity records and the location it names."""

    item: Record
    records: list[Record] = field(default_factory=list)
    location: Record = field(default_factory=dict)
    first_location: Record = field(default_factory=dict)
    last: Record | None = None
    last_has_sdq: bool = False


def _quantity(ctx: Context, line: _Line, seg: Segment) -> None:
    rec = ctx.record("inventory", seg)
    put(rec, "quantity_qualifier", seg.get(1))
    ctx.number(rec, "quantity", seg, 2)
    put(rec, "uom", seg.get(3, 1))
    if not seg.get(1):
        ctx.error("missing_element", "QTY01 quantity qualifier is empty", seg, element=1)
    rec.update(line.location)
    line.records.append(rec)
    line.last, line.last_has_sdq = rec, False


def _destinations(ctx: Context, line: _Line, seg: Segment) -> None:
    """SDQ breaks the preceding QTY down by location; the breakdown replaces the total."""
    total = line.last
    if total is not None and not line.last_has_sdq and total in line.records:
        line.records.remove(total)
    line.last_has_sdq = True
    uom, id_qualifier = seg.get(1), seg.get(2)
    for i in range(3, 23, 2):
        location, quantity = seg.get(i), seg.get(i + 1)
        if not location and not quantity:
            continue
        rec = ctx.record("inventory", seg)
        if total is not None:
            put(rec, "quantity_qualifier", total.get("quantity_qualifier", ""))
            fill(rec, {k: v for k, v in total.items() if k.startswith("date_")})
        ctx.number(rec, "quantity", seg, i + 1)
        put(rec, "uom", uom or (total or {}).get("uom", ""))
        put(rec, "location", location)
        put(rec, "location_id_qualifier", id_qualifier)
        line.records.append(rec)


def _header(head: Record, seg: Segment, locations: dict[str, Record]) -> None:
    sid = seg.id
    if sid == "BIA":
        put(head, "report_purpose", seg.get(1))
        put(head, "report_type", seg.get(2))
        put(head, "report_number", seg.get(3))
        put(head, "report_date", seg.get(4))
        put(head, "report_time", seg.get(5))
    elif sid == "CUR":
        put(head, "currency", seg.get(2))
    elif sid == "DTM":
        add_date(head, "header_date", seg)
    elif sid == "REF":
        put(head, f"header_ref_{seg.get(1)}", seg.get(2))
    elif sid == "N1":
        add_party(head, seg)
        if seg.get(1) in LOCATION_ENTITIES:
            locations.setdefault(seg.get(1), _location(seg))


def _finish(line: _Line, head: Record, default_location: Record, out: list[Record]) -> None:
    settle_description(line.item)
    header_dates = {k[len("header_") :]: v for k, v in head.items() if k.startswith("header_date_")}
    for rec in line.records:
        if "location" not in rec:
            # Every location field from one place: a record that names its own location
            # (SDQ, a LOC after the quantity) takes nothing from another one (it took the
            # header location's name and qualifier beside its own id).
            fill(rec, line.first_location or default_location)
        as_of = _as_of(rec, line.item, header_dates) or head.get("report_date", "")
        put(rec, "as_of", as_of)
        fill(rec, line.item)
        fill(rec, head)
        out.append(rec)


def extract_846(ctx: Context) -> None:
    """Inventory records of an 846; BIA is required."""
    ctx.require("BIA")
    head: Record = {}
    locations: dict[str, Record] = {}
    out: list[Record] = []
    line: _Line | None = None
    default_location: Record = {}
    for seg in ctx.body:
        sid = seg.id
        if sid == "CTT":
            break
        if sid == "LIN":
            if line is None:
                default_location = next(
                    (locations[c] for c in LOCATION_ENTITIES if c in locations), {}
                )
            else:
                _finish(line, head, default_location, out)
            item: Record = {}
            put(item, "line_number", seg.get(1))
            add_ids(ctx, item, seg, 2)
            line = _Line(item)
        elif line is None:
            _header(head, seg, locations)
        elif sid == "QTY":
            _quantity(ctx, line, seg)
        elif sid == "SDQ":
            _destinations(ctx, line, seg)
        elif sid == "UIT" and line.last is not None:
            if "uom" not in line.last:
                put(line.last, "uom", seg.get(1, 1))
        elif sid == "DTM":
            add_date(line.last if line.last is not None else line.item, "date", seg)
        elif sid == "PID":
            add_description(line.item, seg)
        elif sid == "LDT":
            put(line.item, "lead_time_code", seg.get(1))
            ctx.number(line.item, "lead_time", seg, 2)
            put(line.item, "lead_time_unit", seg.get(3, 1))
        elif sid == "N1" and seg.get(1) in LOCATION_ENTITIES:
            line.location = _location(seg)
            line.first_location = line.first_location or line.location
        elif sid == "N1":
            add_party(line.item, seg)
        elif sid == "REF":
            put(line.item, f"ref_{seg.get(1)}", seg.get(2))
    if line is not None:
        _finish(line, head, default_location, out)
    ctx.records.extend(out)
