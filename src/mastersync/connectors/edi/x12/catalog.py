"""832 Price/Sales Catalog: one "item" record per LIN and one "price" record per CTP."""

from __future__ import annotations

from mastersync.connectors.edi.extract import Context, fill, put, settle_description
from mastersync.connectors.edi.model import Record, Segment
from mastersync.connectors.edi.x12.fields import (
    add_date,
    add_description,
    add_ids,
    add_party,
)

# PO4 element -> item field (pack, sizes, weights, dimensions).
PO4_FIELDS = {
    1: "pack",
    2: "pack_size",
    3: "pack_size_uom",
    4: "packaging_code",
    5: "weight_qualifier",
    6: "gross_weight",
    7: "weight_uom",
    8: "gross_volume",
    9: "volume_uom",
    10: "length",
    11: "width",
    12: "height",
    13: "dimension_uom",
    14: "inner_pack",
}
_PO4_NUMERIC = {1, 2, 6, 8, 10, 11, 12, 14}


def _header(ctx: Context, head: Record, seg: Segment) -> None:
    sid = seg.id
    if sid == "BCT":
        put(head, "catalog_purpose", seg.get(1))
        put(head, "catalog_number", seg.get(2))
        put(head, "catalog_version", seg.get(3))
        put(head, "catalog_revision", seg.get(4))
        put(head, "catalog_description", seg.get(9))
        put(head, "set_purpose", seg.get(10))
    elif sid == "G53":
        put(head, "maintenance_type", seg.get(1))
    elif sid == "CUR":
        put(head, "currency", seg.get(2))
    elif sid == "DTM":
        add_date(head, "header_date", seg)
    elif sid == "N1":
        add_party(head, seg)
    elif sid == "REF":
        put(head, f"header_ref_{seg.get(1)}", seg.get(2))


def _price(ctx: Context, item: Record, package: Record, seg: Segment) -> Record:
    rec = ctx.record("price", seg)
    for key, value in item.items():
        if key.startswith("id_") or key in ("gtin", "line_number"):
            rec[key] = value
    rec.update(package)
    put(rec, "class_of_trade", seg.get(1))
    put(rec, "price_qualifier", seg.get(2))
    ctx.number(rec, "price", seg, 3)
    ctx.number(rec, "price_quantity", seg, 4)
    put(rec, "price_uom", seg.get(5, 1))
    put(rec, "price_multiplier_qualifier", seg.get(6))
    ctx.number(rec, "price_multiplier", seg, 7)
    ctx.number(rec, "price_amount", seg, 8)
    put(rec, "price_basis", seg.get(9))
    if "price" not in rec and "price_multiplier" not in rec:
        ctx.error(
            "missing_element", "CTP has neither a unit price nor a multiplier", seg, element=3
        )
    return rec


def _detail(ctx: Context, item: Record, seg: Segment) -> None:
    sid = seg.id
    if sid == "PID":
        add_description(item, seg)
    elif sid == "PO4":
        for index, key in PO4_FIELDS.items():
            if index in _PO4_NUMERIC:
                ctx.number(item, key, seg, index)
            else:
                put(item, key, seg.get(index, 1))
    elif sid == "MEA":
        qualifier = seg.get(2)
        if qualifier:
            ctx.number(item, f"measure_{qualifier}", seg, 3)
            put(item, f"measure_{qualifier}_uom", seg.get(4, 1))
    elif sid == "REF":
        put(item, f"ref_{seg.get(1)}", seg.get(2))
    elif sid == "G53":
        put(item, "maintenance_type", seg.get(1))


def extract_832(ctx: Context) -> None:
    """Item and price records of an 832; BCT is required."""
    ctx.require("BCT")
    head: Record = {}
    items: list[Record] = []
    prices: list[tuple[Record, Record]] = []
    item: Record | None = None
    price: Record | None = None
    package: Record = {}
    for seg in ctx.body:
        sid = seg.id
        if sid == "CTT":
            break  # the summary: nothing after it belongs to an item
        if sid == "LIN":
            item = ctx.record("item", seg)
            put(item, "line_number", seg.get(1))
            add_ids(ctx, item, seg, 2)
            items.append(item)
            price, package = None, {}
        elif item is None:
            _header(ctx, head, seg)
        elif sid == "CTP":
            price = _price(ctx, item, package, seg)
            prices.append((item, price))
        elif sid == "DTM":
            add_date(price if price is not None else item, "date", seg)
        elif sid == "CUR":
            put(price if price is not None else item, "currency", seg.get(2))
        elif sid == "PKL":
            # A packaging level: the prices that follow are for that package.
            package = {}
            put(package, "package_id_qualifier", seg.get(1))
            put(package, "package_id", seg.get(2))
            put(package, "package_uom", seg.get(3))
            price = None
        else:
            _detail(ctx, item, seg)
    for owner, price in prices:
        # A CUR in the item's loop applies to its prices unless a price has its own.
        if "currency" not in price and "currency" in owner:
            price["currency"] = owner["currency"]
        # Item dates apply to its prices; a price's own DTM wins.
        fill(price, {k: v for k, v in owner.items() if k.startswith("date_")})
        fill(price, head)
    for item in items:
        settle_description(item)
        fill(item, head)
    ctx.records.extend(items)
    ctx.records.extend(p for _, p in prices)
