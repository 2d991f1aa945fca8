"""Write 832 catalogs and 846 inventory advices from simple dicts (see docs/edi.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from mastersync.connectors.edi.errors import EdiWriteError
from mastersync.connectors.edi.values import (
    InputRecord,
    as_text,
    check_date,
    check_gtin,
    check_keys,
    check_number,
    clean,
)
from mastersync.connectors.edi.x12.envelope import (
    GroupSpec,
    SegmentSpec,
    X12Envelope,
    active_delimiters,
    render_interchange,
)

ITEM_FIELDS = frozenset(
    {
        "gtin",
        "vendor_item",
        "buyer_item",
        "description",
        "price",
        "price_qualifier",
        "currency",
        "uom",
        "pack",
        "pack_size",
        "pack_size_uom",
        "inner_pack",
        "effective_date",
    }
)
INVENTORY_FIELDS = frozenset(
    {
        "gtin",
        "vendor_item",
        "buyer_item",
        "description",
        "location",
        "location_name",
        "quantity",
        "quantity_qualifier",
        "uom",
        "as_of",
    }
)
_NUMERIC = frozenset({"price", "pack", "pack_size", "inner_pack", "quantity"})
_DATES = frozenset({"effective_date", "as_of"})


def _values(
    rec: InputRecord, allowed: frozenset[str], index: int, env: X12Envelope
) -> dict[str, str]:
    """Validated text values of one input record, by field name."""
    check_keys(rec, allowed, index)
    d = active_delimiters(env)
    forbidden = d.element + d.component + d.segment + d.repetition
    out: dict[str, str] = {}
    for key, raw in rec.items():
        value = as_text(raw, record_index=index, field=key)
        value = clean(value, forbidden, env.on_invalid, record_index=index, field=key)
        if key in _NUMERIC:
            check_number(value, record_index=index, field=key)
        elif key in _DATES:
            check_date(value, record_index=index, field=key)
        elif key == "gtin":
            check_gtin(value, record_index=index)
        if value:
            out[key] = value
    if not any(k in out for k in ("gtin", "vendor_item", "buyer_item")):
        raise EdiWriteError(
            "needs at least one of gtin, vendor_item, buyer_item", record_index=index
        )
    return out


def _gtin_qualifier(gtin: str) -> str:
    return {12: "UP", 14: "UK"}.get(len(gtin), "EN")


def _lin(line: int, v: dict[str, str]) -> SegmentSpec:
    elements = [str(line)]
    for key, qualifier in (("gtin", ""), ("vendor_item", "VN"), ("buyer_item", "BP")):
        if key in v:
            elements += [qualifier or _gtin_qualifier(v[key]), v[key]]
    return ("LIN", elements)


def _split(values: list[dict[str, str]], key: str) -> list[list[dict[str, str]]]:
    """Records grouped by `key` (first-seen order): one set per currency or location."""
    groups: dict[str, list[dict[str, str]]] = {}
    for v in values:
        groups.setdefault(v.get(key, ""), []).append(v)
    return list(groups.values())


def _catalog_set(items: list[dict[str, str]], catalog_number: str) -> list[SegmentSpec]:
    body: list[SegmentSpec] = [("BCT", ["PC", catalog_number])]
    if "currency" in items[0]:
        body.append(("CUR", ["SE", items[0]["currency"]]))
    for line, v in enumerate(items, start=1):
        body.append(_lin(line, v))
        if "description" in v:
            body.append(("PID", ["F", "", "", "", v["description"]]))
        if any(k in v for k in ("pack", "pack_size", "inner_pack")):
            po4 = [v.get("pack", ""), v.get("pack_size", ""), v.get("pack_size_uom", "")]
            body.append(("PO4", [*po4, *[""] * 10, v.get("inner_pack", "")]))
        if "price" in v:
            qualifier = v.get("price_qualifier", "CAT")
            body.append(("CTP", ["", qualifier, v["price"], "1", v.get("uom", "EA")]))
            if "effective_date" in v:
                body.append(("DTM", ["007", v["effective_date"]]))
    body.append(("CTT", [str(len(items))]))
    return body


def write_832(
    items: Sequence[InputRecord], envelope: X12Envelope, *, catalog_number: str = ""
) -> str:
    """An interchange with one 832 per currency, one LIN loop per item."""
    values = [_values(rec, ITEM_FIELDS, i, envelope) for i, rec in enumerate(items)]
    for i, v in enumerate(values):
        if ("uom" in v or "effective_date" in v or "price_qualifier" in v) and "price" not in v:
            raise EdiWriteError(
                "uom, effective_date and price_qualifier need a price", record_index=i
            )
    group = _group(envelope, "SC")
    for chunk in _split(values, "currency") if values else []:
        group.sets.append(("832", _catalog_set(chunk, catalog_number)))
    return render_interchange(envelope, [group])


def _inventory_set(
    records: list[dict[str, str]], report_number: str, date: str
) -> list[SegmentSpec]:
    body: list[SegmentSpec] = [("BIA", ["00", "DD", report_number, date])]
    if "location" in records[0]:
        loc = records[0]
        body.append(
            ("N1", ["WH", loc.get("location_name", loc["location"]), "92", loc["location"]])
        )
    for line, v in enumerate(records, start=1):
        body.append(_lin(line, v))
        if "description" in v:
            body.append(("PID", ["F", "", "", "", v["description"]]))
        qualifier = v.get("quantity_qualifier", "33")
        body.append(("QTY", [qualifier, v["quantity"], v.get("uom", "EA")]))
        if "as_of" in v:
            body.append(("DTM", ["007", v["as_of"]]))
    body.append(("CTT", [str(len(records))]))
    return body


def write_846(
    inventory: Sequence[InputRecord], envelope: X12Envelope, *, report_number: str = ""
) -> str:
    """An interchange with one 846 per location (named in its N1*WH), one LIN per record."""
    values = [_values(rec, INVENTORY_FIELDS, i, envelope) for i, rec in enumerate(inventory)]
    for i, v in enumerate(values):
        if "quantity" not in v:
            raise EdiWriteError("quantity is required", record_index=i, field="quantity")
    # One clock reading for BIA04 and the envelope dates.
    envelope = replace(envelope, created=envelope.created or datetime.now(UTC))
    group = _group(envelope, "IB")
    date = envelope.created.strftime("%Y%m%d") if envelope.created else ""
    for chunk in _split(values, "location") if values else []:
        group.sets.append(("846", _inventory_set(chunk, report_number, date)))
    return render_interchange(envelope, [group])


def _group(env: X12Envelope, functional_id: str) -> GroupSpec:
    return GroupSpec(
        functional_id,
        env.app_sender or env.sender_id,
        env.app_receiver or env.receiver_id,
        env.group_version,
    )
