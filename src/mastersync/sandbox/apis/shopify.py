"""A local stand-in for the Shopify Admin REST API (2025-07), for tests and the sandbox.

It follows the documented contract of the parts mastersync uses, with their quirks:
tokens from the client credentials grant (``POST /admin/oauth/access_token``, form fields,
``expires_in``) sent back in ``X-Shopify-Access-Token``; a leaky-bucket rate limit (bucket
of 40, leaking 2 per second) answered with 429 and ``Retry-After``; cursor pagination in
the ``Link`` header with ``page_info`` (which no other filter may accompany); prices as
strings; timestamps in the shop's own UTC offset; products with variants, each variant
with its own inventory item; handles that stay unique by getting a suffix (Shopify never
refuses a duplicate product, which is why a client must look before it creates);
inventory set per (inventory item, location); locations that the REST API cannot create.
Not modelled: GraphQL, metafields, images, presentment prices, webhooks subscriptions.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/admin/api/2025-07"
SHOP_ZONE = dt.timezone(dt.timedelta(hours=-5))  # the shop's time zone (EST)
_PRODUCT_FIELDS = ("title", "body_html", "vendor", "product_type", "handle", "tags", "status")
_VARIANT_FIELDS = (
    "title",
    "price",
    "compare_at_price",
    "sku",
    "barcode",
    "weight",
    "weight_unit",
    "taxable",
    "requires_shipping",
    "inventory_policy",
    "option1",
)


def _now() -> str:
    return dt.datetime.now(SHOP_ZONE).replace(microsecond=0).isoformat()


def _money(value: Any) -> str | None:
    """Shopify sends prices as strings with two decimals."""
    if value is None:
        return None
    return f"{float(value):.2f}"


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


@dataclass
class Faults:
    """What a test asks the shop to do wrong."""

    # Answer the next n API calls (not token requests) with this status.
    fail_next: int = 0
    fail_status: int = 503
    # Rate limit: bucket size and leak per second (Shopify's standard plan: 40, 2/s).
    bucket: int = 40
    leak_per_second: float = 2.0
    # Lifetime of issued tokens, seconds (Shopify: 86399).
    token_lifetime: int = 86399
    # Apply the next n writes but answer them only after this many seconds (a lost ack).
    stall_next: int = 0
    stall_seconds: float = 0.0


@dataclass
class ShopState:
    """The shop's data, behind one lock."""

    client_id: str = "mastersync-sandbox"
    client_secret: str = "shpss_sandbox_secret"
    faults: Faults = field(default_factory=Faults)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    locations: dict[int, dict[str, Any]] = field(default_factory=dict)
    levels: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(632910392, 17))
    _level: float = 0.0
    _leaked_at: float = field(default_factory=time.monotonic)

    def next_id(self) -> int:
        """A fresh object id."""
        return next(self._ids)

    def add_location(self, name: str, country: str = "US") -> dict[str, Any]:
        """A location, as the merchant sets it up in the Shopify admin."""
        with self.lock:
            loc_id = self.next_id()
            now = _now()
            self.locations[loc_id] = {
                "id": loc_id,
                "name": name,
                "address1": None,
                "city": None,
                "zip": None,
                "country": country,
                "country_code": country,
                "created_at": now,
                "updated_at": now,
                "active": True,
                "legacy": False,
                "admin_graphql_api_id": f"gid://shopify/Location/{loc_id}",
            }
            return self.locations[loc_id]

    def variant_by_inventory_item(self, inventory_item_id: int) -> dict[str, Any] | None:
        """The variant an inventory item belongs to."""
        for product in self.products.values():
            for variant in product["variants"]:
                if variant["inventory_item_id"] == inventory_item_id:
                    found: dict[str, Any] = variant
                    return found
        return None

    def take_call(self) -> float | None:
        """Count one call against the leaky bucket; seconds to wait when it is full."""
        now = time.monotonic()
        f = self.faults
        self._level = max(0.0, self._level - (now - self._leaked_at) * f.leak_per_second)
        self._leaked_at = now
        if self._level + 1 > f.bucket:
            return (self._level + 1 - f.bucket) / f.leak_per_second
        self._level += 1
        return None

    @property
    def call_limit(self) -> str:
        """The X-Shopify-Shop-Api-Call-Limit header value."""
        return f"{int(self._level)}/{self.faults.bucket}"


def _errors(status: int, errors: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


class ShopifyApi:
    """The ASGI app over a ShopState."""

    def __init__(self, state: ShopState | None = None) -> None:
        self.state = state or ShopState()
        p = API
        self.app = Starlette(
            routes=[
                Route("/admin/oauth/access_token", self.token, methods=["POST"]),
                Route(f"{p}/products.json", self.list_products, methods=["GET"]),
                Route(f"{p}/products.json", self.create_product, methods=["POST"]),
                Route(f"{p}/products/{{pid:int}}.json", self.get_product, methods=["GET"]),
                Route(f"{p}/products/{{pid:int}}.json", self.update_product, methods=["PUT"]),
                Route(f"{p}/products/{{pid:int}}.json", self.delete_product, methods=["DELETE"]),
                Route(f"{p}/locations.json", self.list_locations, methods=["GET"]),
                Route(f"{p}/inventory_levels.json", self.list_levels, methods=["GET"]),
                Route(f"{p}/inventory_levels/set.json", self.set_level, methods=["POST"]),
            ]
        )

    # --- authentication and limits -------------------------------------------------------
    async def token(self, request: Request) -> Response:
        """The client credentials grant."""
        if request.headers.get("content-type", "").startswith("application/json"):
            form: dict[str, Any] = await request.json()
        else:
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            form.setdefault("client_id", client_id)
            form.setdefault("client_secret", secret)
        s = self.state
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = "shpat_" + secrets.token_hex(16)
        with s.lock:
            s.tokens[token] = time.monotonic() + s.faults.token_lifetime
            s.requests.append(("POST", "/admin/oauth/access_token"))
        return JSONResponse(
            {
                "access_token": token,
                "scope": "read_products,write_products,read_inventory,write_inventory",
                "expires_in": s.faults.token_lifetime,
            }
        )

    def _gate(self, request: Request) -> Response | None:
        """Authentication, injected faults and the rate limit, in Shopify's order."""
        s = self.state
        with s.lock:
            s.requests.append((request.method, request.url.path))
            token = request.headers.get("x-shopify-access-token", "")
            if s.tokens.get(token, 0) < time.monotonic():
                return _errors(
                    401,
                    "[API] Invalid API key or access token (unrecognized login or wrong password)",
                )
            if s.faults.fail_next > 0:
                s.faults.fail_next -= 1
                status = s.faults.fail_status
                if 300 <= status < 400:  # the shop moved to another domain
                    moved = f"https://moved-sandbox.myshopify.com{request.url.path}"
                    return _errors(status, "Moved Permanently", {"Location": moved})
                return _errors(status, "Internal Server Error")
            wait = s.take_call()
            if wait is not None:
                return _errors(
                    429,
                    "Exceeded 2 calls per second for api client. "
                    "Reduce request rates to resume uninterrupted service.",
                    {"Retry-After": f"{max(wait, 0.5):.1f}"},
                )
        return None

    def _reply(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        h = {"X-Shopify-Shop-Api-Call-Limit": self.state.call_limit, **(headers or {})}
        return Response(
            orjson.dumps(body), status_code=status, media_type="application/json", headers=h
        )

    # --- products ----------------------------------------------------------------------------
    def _variant(self, product_id: int, data: dict[str, Any], position: int) -> dict[str, Any]:
        now = _now()
        variant_id = self.state.next_id()
        variant = {
            "id": variant_id,
            "product_id": product_id,
            "title": "Default Title",
            "price": "0.00",
            "position": position,
            "inventory_policy": "deny",
            "compare_at_price": None,
            "option1": "Default Title",
            "created_at": now,
            "updated_at": now,
            "taxable": True,
            "barcode": None,
            "fulfillment_service": "manual",
            "grams": 0,
            "inventory_management": "shopify",
            "requires_shipping": True,
            "sku": None,
            "weight": 0.0,
            "weight_unit": "kg",
            "inventory_item_id": self.state.next_id(),
            "inventory_quantity": 0,
            "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant_id}",
        }
        self._set_variant(variant, data)
        return variant

    @staticmethod
    def _set_variant(variant: dict[str, Any], data: dict[str, Any]) -> None:
        for key in _VARIANT_FIELDS:
            if key in data:
                variant[key] = _money(data[key]) if key.endswith("price") else data[key]
        if "weight" in data and data["weight"] is not None:
            factor = {"kg": 1000, "g": 1, "lb": 453.59237, "oz": 28.349523125}
            variant["grams"] = round(float(data["weight"]) * factor.get(variant["weight_unit"], 1))
        variant["updated_at"] = _now()

    def _unique_handle(self, wanted: str, own: int | None = None) -> str:
        taken = {p["handle"] for p in self.state.products.values() if p["id"] != own}
        handle, n = wanted, 1
        while handle in taken:
            handle, n = f"{wanted}-{n}", n + 1
        return handle

    def _invalid(self, data: Any, creating: bool) -> dict[str, list[str]] | None:
        if not isinstance(data, dict):
            return {"product": ["Required parameter missing or invalid"]}
        problems: dict[str, list[str]] = {}
        if creating and not data.get("title"):
            problems["title"] = ["can't be blank"]
        if "status" in data and data["status"] not in ("active", "archived", "draft"):
            problems["status"] = ["is not included in the list"]
        for variant in data.get("variants") or []:
            try:
                if variant.get("price") is not None and float(variant["price"]) < 0:
                    problems.setdefault("variants", []).append("price must be >= 0")
            except (TypeError, ValueError):
                problems.setdefault("variants", []).append("price is not a number")
        return problems or None

    async def create_product(self, request: Request) -> Response:
        """POST /products.json: 201 with the product, its variants and their inventory items."""
        if (refused := self._gate(request)) is not None:
            return refused
        data = (await request.json()).get("product")
        if (problems := self._invalid(data, creating=True)) is not None:
            return _errors(422, problems)
        s = self.state
        with s.lock:
            pid, now = s.next_id(), _now()
            product: dict[str, Any] = {
                "id": pid,
                "title": data["title"],
                "body_html": None,
                "vendor": None,
                "product_type": "",
                "created_at": now,
                "updated_at": now,
                "published_at": now,
                "published_scope": "web",
                "tags": "",
                "status": "active",
                "admin_graphql_api_id": f"gid://shopify/Product/{pid}",
            }
            for key in _PRODUCT_FIELDS:
                if key in data and key != "handle":
                    product[key] = data[key]
            product["handle"] = self._unique_handle(data.get("handle") or _handle(data["title"]))
            variants = data.get("variants") or [{}]
            product["variants"] = [self._variant(pid, v, i + 1) for i, v in enumerate(variants)]
            s.products[pid] = product
            reply = self._reply({"product": product}, 201)
        await self._stall()
        return reply

    async def _stall(self) -> None:
        """A write applied whose answer comes too late: the client never hears of it."""
        f = self.state.faults
        if f.stall_next > 0:
            f.stall_next -= 1
            await asyncio.sleep(f.stall_seconds)

    async def update_product(self, request: Request) -> Response:
        """PUT /products/{id}.json: fields given change; a variants list replaces the variants
        (matched by id, else by sku; variants left out are deleted)."""
        if (refused := self._gate(request)) is not None:
            return refused
        pid = request.path_params["pid"]
        data = (await request.json()).get("product")
        if (problems := self._invalid(data, creating=False)) is not None:
            return _errors(422, problems)
        s = self.state
        with s.lock:
            product = s.products.get(pid)
            if product is None:
                return _errors(404, "Not Found")
            for key in _PRODUCT_FIELDS:
                if key in data and key != "handle":
                    product[key] = data[key]
            if data.get("handle"):
                product["handle"] = self._unique_handle(data["handle"], pid)
            if "variants" in data:
                old = product["variants"]
                by_id = {v["id"]: v for v in old}
                by_sku = {v["sku"]: v for v in old if v["sku"]}
                kept = []
                for i, v in enumerate(data["variants"]):
                    match = by_id.get(v.get("id")) or by_sku.get(v.get("sku"))
                    if match is None:
                        match = self._variant(pid, v, i + 1)
                    else:
                        self._set_variant(match, v)
                        match["position"] = i + 1
                    kept.append(match)
                product["variants"] = kept
            product["updated_at"] = _now()
            return self._reply({"product": product})

    async def get_product(self, request: Request) -> Response:
        """GET /products/{id}.json."""
        if (refused := self._gate(request)) is not None:
            return refused
        with self.state.lock:
            product = self.state.products.get(request.path_params["pid"])
            if product is None:
                return _errors(404, "Not Found")
            return self._reply({"product": product})

    async def delete_product(self, request: Request) -> Response:
        """DELETE /products/{id}.json."""
        if (refused := self._gate(request)) is not None:
            return refused
        with self.state.lock:
            if self.state.products.pop(request.path_params["pid"], None) is None:
                return _errors(404, "Not Found")
            return self._reply({})

    async def list_products(self, request: Request) -> Response:
        """GET /products.json: filters, `limit` (max 250), and page_info cursors in Link."""
        if (refused := self._gate(request)) is not None:
            return refused
        q = dict(request.query_params)
        try:
            limit = min(250, max(1, int(q.pop("limit", 50))))
        except ValueError:
            return _errors(400, {"limit": "must be an integer"})
        after = 0
        if "page_info" in q:
            info = q.pop("page_info")
            q.pop("fields", None)
            if q:
                return _errors(
                    400,
                    {
                        "page_info": "page_info cannot be used with other parameters: "
                        + ", ".join(sorted(q))
                    },
                )
            try:
                filters = orjson.loads(base64.urlsafe_b64decode(info.encode()))
            except ValueError:
                return _errors(400, {"page_info": "Invalid value."})
            after, q = filters.pop("after"), filters
        with self.state.lock:
            rows = sorted(self.state.products.values(), key=lambda p: p["id"])
            rows = [p for p in rows if p["id"] > after and self._matches(p, q)]
            page, more = rows[:limit], len(rows) > limit
            headers = {}
            if more:
                token = base64.urlsafe_b64encode(
                    orjson.dumps({**q, "after": page[-1]["id"]})
                ).decode()
                url = request.url.replace(query=f"limit={limit}&page_info={token}")
                headers["Link"] = f'<{url}>; rel="next"'
            return self._reply({"products": page}, headers=headers)

    @staticmethod
    def _matches(product: dict[str, Any], q: dict[str, Any]) -> bool:
        if "ids" in q and str(product["id"]) not in q["ids"].split(","):
            return False
        if "handle" in q and product["handle"] not in q["handle"].split(","):
            return False
        if "status" in q and product["status"] not in q["status"].split(","):
            return False
        if "updated_at_min" in q:
            low = dt.datetime.fromisoformat(q["updated_at_min"].replace("Z", "+00:00"))
            if dt.datetime.fromisoformat(product["updated_at"]) < low:
                return False
        return True

    # --- locations and inventory ---------------------------------------------------------
    async def list_locations(self, request: Request) -> Response:
        """GET /locations.json."""
        if (refused := self._gate(request)) is not None:
            return refused
        with self.state.lock:
            return self._reply({"locations": list(self.state.locations.values())})

    async def list_levels(self, request: Request) -> Response:
        """GET /inventory_levels.json?inventory_item_ids=…&location_ids=…"""
        if (refused := self._gate(request)) is not None:
            return refused
        items = {int(x) for x in request.query_params.get("inventory_item_ids", "").split(",") if x}
        locs = {int(x) for x in request.query_params.get("location_ids", "").split(",") if x}
        if not items and not locs:
            return _errors(422, "inventory_item_ids or location_ids must be present")
        with self.state.lock:
            levels = [
                lv
                for (item, loc), lv in sorted(self.state.levels.items())
                if (not items or item in items) and (not locs or loc in locs)
            ]
            return self._reply({"inventory_levels": levels})

    async def set_level(self, request: Request) -> Response:
        """POST /inventory_levels/set.json: the available quantity of an item at a location."""
        if (refused := self._gate(request)) is not None:
            return refused
        data = await request.json()
        s = self.state
        try:
            item, loc, available = (
                int(data["inventory_item_id"]),
                int(data["location_id"]),
                int(data["available"]),
            )
        except (KeyError, TypeError, ValueError):
            return _errors(
                422, "inventory_item_id, location_id and available (an integer) are required"
            )
        with s.lock:
            variant = s.variant_by_inventory_item(item)
            if variant is None:
                return _errors(422, {"inventory_item_id": ["Inventory item does not exist"]})
            if loc not in s.locations:
                return _errors(422, {"location_id": ["Location does not exist"]})
            level = {
                "inventory_item_id": item,
                "location_id": loc,
                "available": available,
                "updated_at": _now(),
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{loc}?inventory_item_id={item}",
            }
            s.levels[(item, loc)] = level
            variant["inventory_quantity"] = sum(
                lv["available"] for (i, _), lv in s.levels.items() if i == item
            )
            return self._reply({"inventory_level": level})
