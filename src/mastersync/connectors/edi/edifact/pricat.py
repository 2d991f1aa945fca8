"""PRICAT price/sales catalogue: one "item" record per LIN and one "price" record per PRI."""

from __future__ import annotations

from mastersync.connectors.edi.edifact.fields import (
    add_dtm,
    add_header,
    add_imd,
    add_lin,
    add_measure,
    add_nad,
    add_pia,
    add_quantity,
)
from mastersync.connectors.edi.extract import Context, fill, put, settle_description
from mastersync.connectors.edi.model import Record, Segment


def _price(ctx: Context, item: Record, seg: Segment) -> Record:
    rec = ctx.record("price", seg)
    for key, value in item.items():
        if key.startswith("id_") or key in ("gtin", "line_number", "item_number"):
            rec[key] = value
    put(rec, "price_qualifier", seg.get(1, 1))
    ctx.number(rec, "price", seg, 1, 2)
    put(rec, "price_type", seg.get(1, 3))
    put(rec, "price_type_qualifier", seg.get(1, 4))
    ctx.number(rec, "price_basis", seg, 1, 5)
    put(rec, "price_unit", seg.get(1, 6))
    if "price" not in rec:
        ctx.error("missing_element", "PRI has no price (5118)", seg, element=1, component=2)
    return rec


def _item_detail(ctx: Context, item: Record, seg: Segment) -> None:
    sid = seg.id
    if sid == "PIA":
        add_pia(item, seg)
    elif sid == "IMD":
        add_imd(item, seg)
    elif sid == "QTY":
        add_quantity(ctx, item, seg)
    elif sid == "MEA":
        add_measure(ctx, item, seg)
    elif sid == "RFF":
        put(item, f"ref_{seg.get(1, 1)}", seg.get(1, 2))
    elif sid == "NAD":
        add_nad(item, seg)


def extract_pricat(ctx: Context) -> None:
    """Item and price records of a PRICAT; BGM is required."""
    ctx.require("BGM")
    head: Record = {}
    product_group: Record = {}
    items: list[Record] = []
    prices: list[tuple[Record, Record]] = []
    item: Record | None = None
    price: Record | None = None
    for seg in ctx.body:
        sid = seg.id
        if sid == "UNS":
            break  # the summary section follows
        if sid == "PGI":
            # A product group: it holds the LINs that follow, until the next PGI.
            item, price, product_group = None, None, {}
            put(product_group, "product_group_type", seg.get(1))
            put(product_group, "product_group", seg.get(2, 1) or seg.get(2, 4))
        elif sid == "LIN":
            item = ctx.record("item", seg)
            add_lin(item, seg)
            fill(item, product_group)
            items.append(item)
            price = None
        elif item is None:
            if not add_header(product_group if product_group else head, seg) and sid == "DTM":
                add_dtm(product_group, "date", seg)
        elif sid == "PRI":
            price = _price(ctx, item, seg)
            prices.append((item, price))
        elif sid == "DTM":
            add_dtm(price if price is not None else item, "date", seg)
        elif sid == "CUX":
            put(price if price is not None else item, "currency", seg.get(1, 2))
        else:
            _item_detail(ctx, item, seg)
    for owner, price in prices:
        if "currency" not in price and "currency" in owner:
            price["currency"] = owner["currency"]
        # Item dates (e.g. 157 valid from) apply to its prices; a price's own DTM wins.
        fill(price, {k: v for k, v in owner.items() if k.startswith("date_")})
        fill(price, head)
    for item in items:
        settle_description(item)
        fill(item, head)
    ctx.records.extend(items)
    ctx.records.extend(p for _, p in prices)
