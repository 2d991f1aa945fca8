"""Canonical models per domain, with their schema versions, natural keys and references."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mastersync.domain.canonical import customer, inventory, item, location, price, supplier


@dataclass(frozen=True)
class DomainSpec:
    """What the core knows about one domain's canonical model."""

    name: str
    model: type[BaseModel]
    schema_version: str
    id_prefix: str
    # Each natural key is a tuple of fields whose values together identify one record;
    # a trailing "?" marks a part that may be empty.
    natural_keys: tuple[tuple[str, ...], ...]
    # Fields holding master ids of other domains' records.
    references: Mapping[str, str] = field(default_factory=dict)
    # The field shown first when a record is listed.
    title_field: str = "name"

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level canonical field names, in declaration order."""
        return tuple(self.model.model_fields)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of this domain's canonical model, stamped with its version."""
        schema = self.model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://mastersync.dev/schemas/{self.name}/{self.schema_version}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-schema-version"] = self.schema_version
        return schema


DOMAINS: dict[str, DomainSpec] = {
    spec.name: spec
    for spec in (
        DomainSpec(
            "item",
            item.Item,
            item.SCHEMA_VERSION,
            "itm",
            (("gtin",),),
            {"primary_supplier": "supplier"},
        ),
        DomainSpec("customer", customer.Customer, customer.SCHEMA_VERSION, "cus", (("tax_id",),)),
        DomainSpec("supplier", supplier.Supplier, supplier.SCHEMA_VERSION, "sup", (("tax_id",),)),
        DomainSpec(
            "location",
            location.Location,
            location.SCHEMA_VERSION,
            "loc",
            (("gln",), ("code",)),
            title_field="code",
        ),
        DomainSpec(
            "price",
            price.Price,
            price.SCHEMA_VERSION,
            "prc",
            (("item", "price_list", "currency", "uom", "min_quantity?", "valid_from?"),),
            {"item": "item"},
            title_field="amount",
        ),
        DomainSpec(
            "inventory",
            inventory.Inventory,
            inventory.SCHEMA_VERSION,
            "inv",
            (("item", "location"),),
            {"item": "item", "location": "location"},
            title_field="on_hand",
        ),
    )
}


def domain_spec(name: str) -> DomainSpec:
    """The spec of a domain, or a KeyError naming the known domains."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}") from None
