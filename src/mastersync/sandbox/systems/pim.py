"""The PIM: Akeneo-shaped products, values per attribute with locale and scope."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mastersync.sandbox.systems import Faults, rng_for, write_jsonl
from mastersync.sandbox.world import Item, World

_BASE = dt.datetime(2026, 11, 10, 9, 30, tzinfo=dt.UTC)


def _value(data: Any, locale: str | None = None, scope: str | None = None) -> dict[str, Any]:
    return {"locale": locale, "scope": scope, "data": data}


def _product(it: Item, n: int, rng: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ean": [_value(it.gtin)],
        "name": [_value(it.name_en, "en_US"), _value(it.name_de, "de_DE")],
        "brand": [_value(it.brand)],
    }
    if rng.random() > 0.03:  # a few products still wait for copywriting
        values["description"] = [
            _value(it.description_en, "en_US", "ecommerce"),
            _value(it.description_de, "de_DE", "ecommerce"),
        ]
    values["image"] = [_value(f"https://media.example/pim/{it.sku.lower()}.jpg")]
    stamp = _BASE + dt.timedelta(seconds=n * 37)
    return {
        "identifier": it.sku,
        "family": it.category.lower().replace(" ", "_"),
        "categories": [it.category.lower()],
        "enabled": it.status != "D",
        "values": values,
        "updated": stamp.isoformat(),
    }


def write_pim(world: World, folder: Path, seed: int, faults: Faults) -> dict[str, Path]:
    """Write the PIM's product export; returns file name -> path."""
    rng = rng_for(seed, "pim")
    products = [_product(it, n, rng) for n, it in enumerate(world.items) if rng.random() < 0.92]
    path = folder / "products.jsonl"
    write_jsonl(path, products)
    return {"products": path}
