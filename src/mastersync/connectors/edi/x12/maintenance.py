"""888 Item Maintenance: one "item" record per item loop (LX or G39), under its G53 type."""

from __future__ import annotations

from mastersync.connectors.edi.extract import Context, fill, put, settle_description
from mastersync.connectors.edi.model import Record, Segment
from mastersync.connectors.edi.x12.fields import (
    add_description,
    add_ids,
    add_party,
)

# G39 element -> item field: the vendor's selling unit.
G39_FIELDS = {
    1: "upc_case_code",
    5: "weight",
    6: "weight_qualifier",
    7: "weight_uom",
    8: "height",
    9: "height_uom",
    10: "width",
    11: "width_uom",
    12: "length",
    13: "length_uom",
    14: "volume",
    15: "volume_uom",
}
_G39_NUMERIC = {5, 8, 10, 12, 14}


def _g62(rec: Record, prefix: str, seg: Segment) -> None:
    """G62 (date qualifier, date, time qualifier, time) into `<prefix>_<qualifier>`."""
    qualifier, date = seg.get(1), seg.get(2)
    if qualifier and date:
        rec.setdefault(f"{prefix}_{qualifier}", date)
        put(rec, f"{prefix}_{qualifier}_time", seg.get(4))


def _g39(ctx: Context, item: Record, seg: Segment) -> None:
    for index, key in G39_FIELDS.items():
        if index in _G39_NUMERIC:
            ctx.number(item, key, seg, index)
        else:
            put(item, key, seg.get(index))
    if seg.get(1).isdigit():
        item.setdefault("gtin", seg.get(1))
    add_ids(ctx, item, seg, 2, pairs=1)


def _header(head: Record, seg: Segment) -> None:
    sid = seg.id
    if sid == "BGN":
        put(head, "purpose", seg.get(1))
        put(head, "reference_number", seg.get(2))
        put(head, "document_date", seg.get(3))
    elif sid == "N1":
        add_party(head, seg)
    elif sid in ("N9", "REF"):
        put(head, f"header_ref_{seg.get(1)}", seg.get(2))
    elif sid == "G62":
        _g62(head, "header_date", seg)


def _detail(ctx: Context, item: Record, consumer: bool, seg: Segment) -> None:
    sid = seg.id
    prefix = "consumer_description" if consumer else "description"
    if sid == "G69":
        put(item, prefix, item.get(prefix) or seg.get(1))
    elif sid == "PID":
        add_description(item, seg, prefix)
    elif sid == "LIN":
        put(item, "line_number", item.get("line_number") or seg.get(1))
        add_ids(ctx, item, seg, 2)
    elif sid == "QTY" and seg.get(1):
        ctx.number(item, f"quantity_{seg.get(1)}", seg, 2)
        put(item, f"quantity_{seg.get(1)}_uom", seg.get(3, 1))
    elif sid == "N1":
        add_party(item, seg)
    elif sid == "G62":
        _g62(item, "date", seg)


def extract_888(ctx: Context) -> None:
    """Item records of an 888; G53 is required."""
    ctx.require("G53")
    head: Record = {}
    maintenance: Record = {}
    items: list[Record] = []
    item: Record | None = None
    started_by_lx = False
    consumer = False
    for seg in ctx.body:
        sid = seg.id
        if sid == "G53":
            item, maintenance = None, {}
            put(maintenance, "maintenance_type", seg.get(1))
        elif sid == "LX" or (sid == "G39" and not (started_by_lx and item is not None)):
            item = ctx.record("item", seg)
            fill(item, maintenance)
            items.append(item)
            started_by_lx, consumer = sid == "LX", False
            if sid == "LX":
                put(item, "line_number", seg.get(1))
            else:
                _g39(ctx, item, seg)
        elif item is None and sid == "LIN" and maintenance:
            item = ctx.record("item", seg)
            fill(item, maintenance)
            items.append(item)
            started_by_lx, consumer = False, False
            _detail(ctx, item, False, seg)
        elif item is None:
            if maintenance and sid == "G62":
                _g62(maintenance, "maintenance_date", seg)
            elif not maintenance:
                _header(head, seg)
        elif sid == "G39":
            started_by_lx = False  # the LX's own selling unit
            _g39(ctx, item, seg)
        elif sid == "G55":
            # The consumer unit inside the selling unit: its ids and texts are kept apart.
            consumer = True
            if seg.get(1) and seg.get(2):
                item.setdefault(f"consumer_id_{seg.get(1)}", seg.get(2))
        else:
            _detail(ctx, item, consumer, seg)
    for item in items:
        settle_description(item)
        fill(item, head)
    ctx.records.extend(items)
