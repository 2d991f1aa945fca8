"""Canonical models per domain, with their schema versions, natural keys and references."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from difflib import get_close_matches
from enum import Enum
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from mastersync.domain.canonical import customer, inventory, item, location, price, supplier
from mastersync.domain.canonical.types import amount_text_schema
from mastersync.domain.words import a_or_an


def _is_text(annotation: Any) -> bool:
    """str, bare or Annotated (Text, GTIN, TaxId ...); not an enum."""
    return annotation is str or (
        get_origin(annotation) is Annotated and get_args(annotation)[0] is str
    )


def _members(annotation: Any) -> list[Any]:
    """The types a field may hold: through Optional/unions, lists and Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin in (Union, UnionType, list, tuple, set, frozenset):
        return [m for a in get_args(annotation) if a is not ... for m in _members(a)]
    return [] if annotation is NoneType else [annotation]


# Field -> True (text, or a list of it) or the nested model's own tree.
TextTree = dict[str, "bool | TextTree"]


def _text_tree(model: type[BaseModel]) -> TextTree:
    tree: TextTree = {}
    for name, info in model.model_fields.items():
        members = _members(info.annotation)
        if members and all(_is_text(m) for m in members):
            tree[name] = True
        elif (nested := FieldShape(info.annotation).model) is not None and (
            inner := _text_tree(nested)
        ):
            tree[name] = inner
    return tree


@dataclass(frozen=True)
class FieldShape:
    """The annotation of a canonical field, with what configuration checks ask of it."""

    annotation: Any

    @property
    def model(self) -> type[BaseModel] | None:
        """The nested model the field holds (or a list of), if any."""
        for member in _members(self.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                return member
        return None

    @property
    def numeric(self) -> bool | None:
        """Whether the field holds numbers (None: it may hold anything)."""
        members = _members(self.annotation)
        if not members or Any in members:
            return None
        return all(
            isinstance(m, type) and issubclass(m, int | float | Decimal) and m is not bool
            for m in members
        )

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values an enumerated field allows (None: not enumerated)."""
        found: list[str] = []
        for member in _members(self.annotation):
            if isinstance(member, type) and issubclass(member, Enum):
                found.extend(str(e.value) for e in member)
            elif get_origin(member) is Literal:
                found.extend(str(v) for v in get_args(member))
            else:
                return None
        return tuple(found) or None


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
    # Bounds against 0 that a field validator puts on an amount (dotted path through nested
    # models, not lists -> "ge"/"gt"): no field metadata carries them, so the export adds them.
    validator_bounds: Mapping[str, Literal["ge", "gt"]] = field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level canonical field names, in declaration order."""
        return tuple(self.model.model_fields)

    @property
    def text_tree(self) -> TextTree:
        """Where the model holds text, nested models included: field -> True for text (or
        a list of it), or the tree of the nested model (or of each in a list)."""
        return _text_tree(self.model)

    def field_at(self, path: str) -> FieldShape:
        """What the field at a dotted path holds (through lists and nested models); a
        LookupError naming the first part that is no field, with the likeliest meant."""
        model: type[BaseModel] | None = self.model
        shape = FieldShape(Any)
        done: list[str] = []
        for part in path.split("."):
            if model is None:
                raise LookupError(f"{'.'.join(done)!r} holds no fields ({path!r})")
            fields = model.model_fields
            if part not in fields:
                where = (
                    f"{a_or_an(self.name)} field" if not done else f"a field of {'.'.join(done)}"
                )
                close = get_close_matches(part, list(fields), n=1)
                hint = f"; did you mean {'.'.join([*done, close[0]])!r}?" if close else ""
                raise LookupError(f"{'.'.join([*done, part])!r} is not {where}{hint}")
            done.append(part)
            shape = FieldShape(fields[part].annotation)
            model = shape.model
        return shape

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of this domain's canonical model, stamped with its version."""
        schema: dict[str, Any] = _open_content(
            _decimal_text_bounds(self.model.model_json_schema(mode="serialization"))
        )
        for path, bound in self.validator_bounds.items():
            # On the field (a nested model's node is shared by its other uses): a pattern
            # only, so the amount's own node still says what else it may be.
            top, *rest = path.split(".")
            overlay: dict[str, Any] = {"pattern": amount_text_schema({bound: 0})["pattern"]}
            for part in reversed(rest):
                overlay = {"properties": {part: overlay}}
            schema["properties"][top].setdefault("allOf", []).append(overlay)
        schema["$id"] = f"https://mastersync.dev/schemas/{self.name}/{self.schema_version}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-schema-version"] = self.schema_version
        return schema


def _decimal_text_bounds(node: Any) -> Any:
    """The schema with each bound on an amount's text turned into its pattern."""
    if isinstance(node, list):
        return [_decimal_text_bounds(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _decimal_text_bounds(v) for k, v in node.items()}
    # Amounts go out as text ("2.5"), and for an optional one pydantic writes the field's
    # bounds next to its text's own pattern as "ge"/"gt", which JSON Schema does not know
    # (validators ignore them: "-5" passed for a price): the pattern takes them instead.
    if out.get("type") == "string":
        bounds = {key: out.pop(key) for key in ("ge", "gt", "le", "lt") if key in out}
        if bounds:
            out.update(amount_text_schema(bounds))
    return out


def _open_content(node: Any) -> Any:
    """The schema with no object closed to properties it does not declare."""
    # The models forbid unknown fields (extra="forbid") and pydantic says so in the schema,
    # but a published schema that closes its objects makes a consumer pinned to 1.0 refuse
    # a 1.1 record that only adds an optional field, which a minor version promises to be
    # safe. Inbound strictness stays with the models; the published contract is open.
    if isinstance(node, list):
        return [_open_content(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _open_content(value)
        for key, value in node.items()
        if not (key == "additionalProperties" and value is False)
    }


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
        DomainSpec(
            "customer",
            customer.Customer,
            customer.SCHEMA_VERSION,
            "cus",
            (("tax_id",),),
            # Customer._credit_limit_not_negative: Money itself takes any amount.
            validator_bounds={"credit_limit.amount": "ge"},
        ),
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
