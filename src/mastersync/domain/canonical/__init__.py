"""Canonical models per domain, with their schema versions, natural keys and references."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from mastersync.domain.canonical import customer, inventory, item, location, price, supplier


def _is_text(annotation: Any) -> bool:
    """str, bare or Annotated (Text, GTIN, TaxId ...); not an enum."""
    return annotation is str or (
        get_origin(annotation) is Annotated and get_args(annotation)[0] is str
    )


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

    @property
    def text_fields(self) -> tuple[str, ...]:
        """Top-level text fields (ids, codes, names, GTINs, tax ids)."""
        return tuple(
            name
            for name, info in self.model.model_fields.items()
            if _is_text(info.annotation) or any(_is_text(a) for a in get_args(info.annotation))
        )

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of this domain's canonical model, stamped with its version."""
        schema: dict[str, Any] = _decimal_text_bounds(
            self.model.model_json_schema(mode="serialization")
        )
        schema["$id"] = f"https://mastersync.dev/schemas/{self.name}/{self.schema_version}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-schema-version"] = self.schema_version
        return schema


# Amounts go out as text ("2.5"), and pydantic writes their bounds as "ge"/"gt", which
# JSON Schema does not know (validators ignore them: "-5" passed): as patterns instead.
_BOUNDS = {
    ("ge", 0): r"^[0-9]+(\.[0-9]+)?$",
    ("gt", 0): r"^(?=.*[1-9])[0-9]+(\.[0-9]+)?$",
}


def _decimal_text_bounds(node: Any) -> Any:
    """The schema with each bound on an amount's text turned into a pattern."""
    if isinstance(node, list):
        return [_decimal_text_bounds(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _decimal_text_bounds(v) for k, v in node.items()}
    if out.get("type") == "string":
        for key in ("ge", "gt", "le", "lt"):
            if key in out:
                bound = out.pop(key)
                pattern = _BOUNDS.get((key, bound))
                if pattern is None:  # no pattern for it: kept, as an extension keyword
                    out[f"x-{key}"] = bound
                else:
                    out["pattern"] = pattern
    return out


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
