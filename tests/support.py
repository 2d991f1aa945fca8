"""Test helpers: a compact landscape built in code, and record builders."""

from __future__ import annotations

from typing import Any

from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape

ITEM_FIELDS = {
    "sku": "sku",
    "gtin": {"from": "gtin", "optional": True},
    "name": {"from": "name", "optional": True},
    "description": {"from": "desc", "optional": True},
    "list_price": {"from": "price", "optional": True, "number": True},
    "brand": {"from": "brand", "optional": True},
}


def landscape_doc(**overrides: Any) -> dict[str, Any]:
    """A small landscape: erp owns names and prices, pim owns descriptions."""
    doc: dict[str, Any] = {
        "name": "test",
        "systems": {
            "erp": {
                "kind": "erp",
                "inbound": {
                    "item": {
                        "key": "sku",
                        "version": {"from": "v", "kind": "counter"},
                        "fields": ITEM_FIELDS,
                    },
                    "supplier": {
                        "key": "no",
                        "version": {"from": "v", "kind": "counter"},
                        "fields": {
                            "name": "name",
                            "tax_id": {"from": "vat", "optional": True},
                            "country": {"from": "country", "optional": True},
                            "bank_account.iban": {"from": "iban", "optional": True},
                        },
                    },
                    "price": {
                        "key": {"concat": ["sku", "list"], "sep": "|"},
                        "version": {"from": "v", "kind": "counter"},
                        "fields": {
                            "item": {"from": "sku", "ref": {"domain": "item"}},
                            "price_list": "list",
                            "currency": {"const": "EUR"},
                            "amount": {"from": "amount", "number": True},
                        },
                    },
                },
            },
            "pim": {
                "kind": "pim",
                "inbound": {
                    "item": {
                        "key": "id",
                        "version": {"from": "updated", "kind": "timestamp"},
                        "fields": {**ITEM_FIELDS, "sku": {"from": "sku", "optional": True}},
                    },
                },
            },
            "wms": {
                "kind": "wms",
                "inbound": {
                    "item": {
                        "key": "sku",
                        "version": {"from": "seq", "kind": "sequence"},
                        "fields": {
                            "sku": "sku",
                            "gtin": {"from": "gtin", "optional": True},
                            "brand": {"from": "brand", "optional": True},
                            "net_weight_kg": {"from": "weight", "optional": True},
                        },
                    },
                },
            },
        },
        "domains": {
            "item": {
                "natural_keys": [["gtin"]],
                "ownership": {
                    "name": ["erp"],
                    "list_price": ["erp"],
                    "description": ["pim"],
                    "net_weight_kg": ["wms"],
                },
                "survivorship": {
                    "default": {"rule": "source_priority", "systems": ["erp", "pim", "wms"]},
                    "brand": {"rule": "most_recent"},
                },
                "quality": [{"field": "name", "rule": "required"}],
            },
            "supplier": {"quality": [{"field": "tax_id", "rule": "tax_id"}]},
        },
    }
    doc.update(overrides)
    return doc


def compiled(**overrides: Any) -> CompiledLandscape:
    """The test landscape, compiled."""
    return compile_landscape(Landscape.model_validate(landscape_doc(**overrides)))


def erp_item(sku: str, v: int, **fields: Any) -> dict[str, Any]:
    """A native ERP item record."""
    return {"sku": sku, "v": v, **fields}


def misspelt_pim(connector: str = "") -> str:
    """A PIM landscape whose brand expression is misspelt (``brnad``): it reads null."""
    return f"""
name: pim
systems:
  pim:
    kind: pim
    {connector}
    inbound:
      item:
        key: identifier
        fields: {{sku: identifier, name: "values.name[0].data", brand: "values.brnad[0].data"}}
"""


def pim_products(count: int, name: str = "Pen") -> list[dict[str, Any]]:
    """Akeneo-shaped products with a name and a brand value each."""
    return [
        {
            "identifier": f"A{i}",
            "values": {"name": [{"data": f"{name} {i}"}], "brand": [{"data": "Acme"}]},
        }
        for i in range(count)
    ]
