"""Write PRICAT catalogues and INVRPT inventory reports from simple dicts (see docs/edi.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from mastersync.connectors.edi.edifact.envelope import (
    EdifactEnvelope,
    SegmentSpec,
    Writer,
    render_interchange,
)
from mastersync.connectors.edi.errors import EdiWriteError
from mastersync.connectors.edi.values import (
    InputRecord,
    as_text,
    check_date,
    check_gtin,
    check_keys,
    check_number,
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
_NUMERIC = frozenset({"price", "pack", "quantity"})
_DATES = frozenset({"effective_date", "as_of"})
_TEXT_PART = 35  # an..35 per 7008 component


def _values(rec: InputRecord, allowed: frozenset[str], index: int, w: Writer) -> dict[str, str]:
    check_keys(rec, allowed, index)
    out: dict[str, str] = {}
    for key, raw in rec.items():
        value = as_text(raw, record_index=index, field=key)
        if key in _NUMERIC:
            value = w.number(check_number(value, record_index=index, field=key))
        elif key in _DATES:
            check_date(value, record_index=index, field=key)
        elif key == "gtin":
            check_gtin(value, record_index=index)
        w.escape(value, record_index=index, field=key)  # refuse early, naming the record
        if value:
            out[key] = value
    if not any(k in out for k in ("gtin", "vendor_item", "buyer_item")):
        raise EdiWriteError(
            "needs at least one of gtin, vendor_item, buyer_item", record_index=index
        )
    return out


def _item_lines(line: int, v: dict[str, str]) -> list[SegmentSpec]:
    segs: list[SegmentSpec] = [
        ("LIN", [str(line), "", (v.get("gtin", ""), "EN" if "gtin" in v else "")])
    ]
    extra = [(v[k], t) for k, t in (("vendor_item", "SA"), ("buyer_item", "IN")) if k in v]
    if extra:
        segs.append(("PIA", ["5", *extra]))
    if "description" in v:
        text = v["description"]
        segs.append(("IMD", ["F", "", ("", "", "", text[:_TEXT_PART], text[_TEXT_PART:])]))
    return segs


def _heading(doc_code: str, document_number: str, when: datetime) -> list[SegmentSpec]:
    return [
        ("BGM", [doc_code, document_number, "9"]),
        ("DTM", [("137", when.strftime("%Y%m%d"), "102")]),
    ]


def write_pricat(
    items: Sequence[InputRecord],
    envelope: EdifactEnvelope,
    *,
    document_number: str = "",
    message_version: str = "D:96A:UN:EAN008",
) -> str:
    """An interchange with one PRICAT per currency, one LIN group per item."""
    envelope = replace(envelope, created=envelope.created or datetime.now(UTC))
    assert envelope.created is not None
    w = Writer(envelope)
    values = [_values(rec, ITEM_FIELDS, i, w) for i, rec in enumerate(items)]
    for i, v in enumerate(values):
        if ("uom" in v or "price_qualifier" in v) and "price" not in v:
            raise EdiWriteError("uom and price_qualifier need a price", record_index=i)
    by_currency: dict[str, list[dict[str, str]]] = {}
    for v in values:
        by_currency.setdefault(v.get("currency", ""), []).append(v)
    messages = []
    for currency, chunk in by_currency.items():
        body = _heading("9", document_number, envelope.created)
        if currency:
            body.append(("CUX", [("2", currency, "8")]))
        for line, v in enumerate(chunk, start=1):
            body += _item_lines(line, v)
            if "pack" in v:
                body.append(("QTY", [("52", v["pack"])]))
            if "effective_date" in v:
                body.append(("DTM", [("157", v["effective_date"], "102")]))
            if "price" in v:
                qualifier = v.get("price_qualifier", "AAA")
                body.append(("PRI", [(qualifier, v["price"], "", "", "1", v.get("uom", ""))]))
        messages.append((f"PRICAT:{message_version}", body))
    return render_interchange(envelope, messages)


def write_invrpt(
    inventory: Sequence[InputRecord],
    envelope: EdifactEnvelope,
    *,
    document_number: str = "",
    message_version: str = "D:96A:UN:EAN008",
) -> str:
    """An interchange with one INVRPT: LIN, QTY, LOC and DTM 366 per inventory record."""
    envelope = replace(envelope, created=envelope.created or datetime.now(UTC))
    assert envelope.created is not None
    w = Writer(envelope)
    values = [_values(rec, INVENTORY_FIELDS, i, w) for i, rec in enumerate(inventory)]
    body = _heading("35", document_number, envelope.created)
    for line, v in enumerate(values, start=1):
        if "quantity" not in v:
            raise EdiWriteError("quantity is required", record_index=line - 1, field="quantity")
        body += _item_lines(line, v)
        qualifier = v.get("quantity_qualifier", "145")
        body.append(("QTY", [(qualifier, v["quantity"], v.get("uom", ""))]))
        if "location" in v:
            body.append(("LOC", ["18", (v["location"], "", "", v.get("location_name", ""))]))
        if "as_of" in v:
            body.append(("DTM", [("366", v["as_of"], "102")]))
    return render_interchange(envelope, [(f"INVRPT:{message_version}", body)])
