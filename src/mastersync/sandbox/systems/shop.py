"""The web shop: Shopify-shaped products with variants and B2B customers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mastersync.sandbox.systems import Faults, rng_for, write_jsonl
from mastersync.sandbox.world import World

_BASE = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def write_shop(world: World, folder: Path, seed: int, faults: Faults) -> dict[str, Path]:
    """Write the shop's exports; returns file name -> path."""
    rng = rng_for(seed, "shop")
    products = []
    for n, it in enumerate(world.items):
        if it.status != "A" or rng.random() > 0.45:
            continue
        stamp = _BASE + dt.timedelta(seconds=n * 11)
        products.append(
            {
                "id": 7_000_000 + n,
                "title": it.name_en,
                "handle": it.sku.lower(),
                "status": "active",
                "tags": f"{it.category}, {it.brand}",
                "variants": [
                    {
                        "id": 9_000_000 + n,
                        "sku": it.sku,
                        "barcode": it.gtin,
                        "price": str(it.list_price),
                    }
                ],
                "images": [{"src": f"https://cdn.shop.example/{it.sku}.webp"}],
                "updated_at": stamp.isoformat(),
            }
        )
    out = {"products": folder / "products.jsonl"}
    write_jsonl(out["products"], products)

    customers: list[dict[str, Any]] = []
    for n, c in enumerate(world.customers):
        if rng.random() > 0.25:
            continue
        name, email, phone, _ = c.contacts[0]
        first, _, last = name.rpartition(" ")
        stamp = _BASE + dt.timedelta(minutes=n)
        customers.append(
            {
                "id": 5_000_000 + n,
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": phone,
                "company": c.name,
                "tax_number": c.vat if rng.random() > 0.3 else None,
                "default_address": {
                    "company": c.name,
                    "address1": c.street,
                    "zip": c.postal_code,
                    "city": c.city,
                    "country_code": c.country,
                },
                "updated_at": stamp.isoformat(),
            }
        )
    out["customers"] = folder / "customers.jsonl"
    write_jsonl(out["customers"], customers)
    return out
