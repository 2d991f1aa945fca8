"""Experience APIs (v1): shaped for the people who use them, not for the canonical model.

* sales: sellable items of a channel with price and availability; a sales rep's customers
  with their terms (terms only with ``customer:credit``);
* procurement: a supplier with its items and lead time, and whether it may be paid.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from mastersync.api.auth import Caller, need
from mastersync.api.context import ApiContext, context
from mastersync.api.errors import ApiError
from mastersync.api.records import load_visible
from mastersync.domain.canonical.types import _decimal_text, _normalise_decimal
from mastersync.domain.governance.access import ObjectRule, visible
from mastersync.pipeline.governance.approvals import payment_blocked

router = APIRouter(prefix="/v1")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SellableItem(_Doc):
    """An item as a sales channel shows it."""

    master_id: str
    sku: str | None
    name: str | None
    gtin: str | None
    uom: str | None
    images: list[str]
    price: dict[str, Any] | None
    available: str | None


class SellablePage(_Doc):
    """A page of sellable items."""

    channel: str
    items: list[SellableItem]
    next_cursor: str | None


class RepCustomer(_Doc):
    """A customer as its sales rep sees it."""

    master_id: str
    customer_number: str | None
    name: str | None
    country: str | None
    currency: str | None
    lifecycle_state: str | None
    terms: dict[str, Any] | None


class SupplierItem(_Doc):
    """An item bought from a supplier."""

    master_id: str
    sku: str | None
    name: str | None
    supplier_item_number: str | None
    cost_price: str | None


class SupplierView(_Doc):
    """A supplier as procurement sees it."""

    master_id: str
    name: str | None
    country: str | None
    currency: str | None
    payment_terms: str | None
    lead_time_days: int | None
    lifecycle_state: str | None
    payment_blocked: bool
    bank_account: dict[str, Any] | None
    items: list[SupplierItem]


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


# Price lists the Tryton connector fills with what the hub pays a supplier: never a sales price.
PURCHASE_LIST_PREFIX = "PURCHASE:"


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def _amount_text(value: Decimal) -> str:
    """A quantity in the canonical amount spelling (plain digits, no trailing zeros)."""
    try:
        return _decimal_text(_normalise_decimal(value))
    except PydanticCustomError:
        # Beyond any canonical amount (a sum can be): still plain digits, never "1E+30".
        return format(value, "f")


def _prices(
    ctx: ApiContext,
    ids: list[str],
    price_list: str | None = None,
    currency: str | None = None,
    today: dt.date | None = None,
) -> dict[str, dict[str, Any]]:
    """The sales price valid today of each item, of one list or currency if asked."""
    today = today or dt.datetime.now(dt.UTC).date()
    where: dict[str, Any] = {"item": ids}
    if price_list is not None:
        where["price_list"] = price_list
    if currency is not None:
        where["currency"] = currency.upper()  # canonical currency codes are upper case
    page = ctx.governance.search("price", ObjectRule("price"), where=where, limit=10_000)
    best: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for p in page.records:
        a = p.attributes
        item, plist = a.get("item"), a.get("price_list")
        if item is None or a.get("amount") is None:
            continue
        if str(plist or "").startswith(PURCHASE_LIST_PREFIX):
            continue  # a cost price: what the hub pays, not what a channel sells at
        start, end = _date(a.get("valid_from")), _date(a.get("valid_to"))
        if (start is not None and start > today) or (end is not None and end < today):
            continue  # expired, or not valid yet (valid_to is the last day it holds)
        # Lowest quantity first; then the price valid since the latest date (the one that
        # replaced the others); then list, currency and id, so the same data always shows
        # the same price (the search order follows the most recent change).
        rank = (
            _decimal(a.get("min_quantity")) or Decimal(0),
            -(start or dt.date.min).toordinal(),
            str(plist or ""),
            str(a.get("currency") or ""),
            p.master_id,
        )
        kept = best.get(item)
        if kept is None or rank < kept[0]:
            best[item] = (rank, a)
    return {
        i: {k: a.get(k) for k in ("amount", "currency", "price_list", "uom", "min_quantity")}
        for i, (_, a) in best.items()
    }


def _available(ctx: ApiContext, ids: list[str]) -> dict[str, Decimal]:
    """Available quantity of each item over every location."""
    page = ctx.governance.search(
        "inventory", ObjectRule("inventory"), where={"item": ids}, limit=100_000
    )
    total: dict[str, Decimal] = defaultdict(Decimal)
    for r in page.records:
        a = r.attributes
        qty = _decimal(a.get("available"))
        if qty is None:
            on_hand, allocated = _decimal(a.get("on_hand")), _decimal(a.get("allocated"))
            qty = on_hand - (allocated or 0) if on_hand is not None else None
        if qty is not None and a.get("item"):
            total[str(a["item"])] += qty
    return total


@router.get("/sales/items", response_model=SellablePage, tags=["experience: sales"])
def sellable_items(
    request: Request,
    principal: Caller,
    channel: Annotated[str, Query(min_length=1, max_length=60)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^itm_[0-9a-f]{32}$")] = None,
    price_list: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="show prices of this list only (purchase lists, PURCHASE:..., never)",
        ),
    ] = None,
    currency: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z]{3}$", description="show prices in this currency only"),
    ] = None,
) -> SellablePage:
    """Active items of a sales channel with their price valid today (with ``price:read``)
    and what is available (with ``inventory:read``)."""
    need(principal, "item:read")
    if principal.partner_channel is not None and channel != principal.partner_channel:
        raise ApiError(403, f"{principal.consumer} sells only in {principal.partner_channel}")
    ctx = context(request)
    page = ctx.governance.search(
        "item",
        ObjectRule("item", channel=channel),
        where={"lifecycle_state": "active"},
        limit=limit + 1,
        after=cursor or "",
    )
    records = page.records[:limit]
    ids = [r.master_id for r in records]
    # Each part only with its own read scope, as on the system APIs (review found prices,
    # of every list, shown to a consumer refused GET /v1/prices).
    prices = _prices(ctx, ids, price_list, currency) if principal.may("price:read") else {}
    stock = _available(ctx, ids) if principal.may("inventory:read") else {}
    items = []
    for r in records:
        a = r.attributes
        qty = stock.get(r.master_id)
        items.append(
            SellableItem(
                master_id=r.master_id,
                sku=a.get("sku"),
                name=a.get("name"),
                gtin=a.get("gtin"),
                uom=a.get("base_uom"),
                images=list(a.get("images") or []),
                price=prices.get(r.master_id),
                available=_amount_text(qty) if qty is not None else None,
            )
        )
    more = len(page.records) > limit
    return SellablePage(channel=channel, items=items, next_cursor=ids[-1] if more else None)


@router.get(
    "/sales/reps/{rep}/customers", response_model=list[RepCustomer], tags=["experience: sales"]
)
def rep_customers(
    request: Request,
    principal: Caller,
    rep: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RepCustomer]:
    """A sales rep's customers; credit terms and limit only with ``customer:credit``."""
    need(principal, "customer:read")
    ctx = context(request)
    page = ctx.governance.search(
        "customer",
        principal.rule("customer"),
        where={"sales_rep": rep},
        limit=limit,
        offset=offset,
    )
    out = []
    for r in page.records:
        a = visible("customer", r.attributes, principal.scopes)
        terms = (
            {"credit_terms": a.get("credit_terms"), "credit_limit": a.get("credit_limit")}
            if "credit_terms" in a or "credit_limit" in a or principal.may("customer:credit")
            else None
        )
        out.append(
            RepCustomer(
                master_id=r.master_id,
                customer_number=a.get("customer_number"),
                name=a.get("name"),
                country=a.get("country"),
                currency=a.get("currency"),
                lifecycle_state=a.get("lifecycle_state"),
                terms=terms,
            )
        )
    return out


@router.get(
    "/procurement/suppliers/{ref}",
    response_model=SupplierView,
    tags=["experience: procurement"],
)
def supplier_view(request: Request, principal: Caller, ref: str) -> SupplierView:
    """A supplier with the items bought from it (bank account only with supplier:finance)."""
    need(principal, "supplier:read")
    ctx = context(request)
    record, _ = load_visible(ctx.hub.store, ctx.governance, principal, "supplier", ref)
    a = visible("supplier", record.attributes, principal.scopes)
    items = ctx.governance.search(
        "item",
        principal.rule("item") if principal.may("item:read") else ObjectRule("item", nothing=True),
        where={"primary_supplier": record.master_id},
        limit=500,
    )
    return SupplierView(
        master_id=record.master_id,
        name=a.get("name"),
        country=a.get("country"),
        currency=a.get("currency"),
        payment_terms=a.get("payment_terms"),
        lead_time_days=a.get("lead_time_days"),
        lifecycle_state=a.get("lifecycle_state"),
        payment_blocked=payment_blocked(ctx.governance, record.master_id, record.attributes),
        bank_account=a.get("bank_account"),
        items=[
            SupplierItem(
                master_id=i.master_id,
                sku=i.attributes.get("sku"),
                name=i.attributes.get("name"),
                supplier_item_number=i.attributes.get("supplier_item_number"),
                cost_price=str(i.attributes["cost_price"])
                if "cost_price" in i.attributes
                else None,
            )
            for i in items.records
        ],
    )
