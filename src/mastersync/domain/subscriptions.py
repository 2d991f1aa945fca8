"""Compiled subscriptions: which golden records a consumer gets, in which shape."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import jmespath
from jmespath.exceptions import JMESPathError

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.delivery import DeliveryConfig, SubscriptionConfig
from mastersync.domain.mapping.objects import (
    FieldFailure,
    compile_fields,
    json_shaped,
    produce,
)
from mastersync.domain.mapping.paths import (
    ConditionFailed,
    compile_condition,
    field_chains,
    root_fields,
)
from mastersync.domain.mapping.spec import ValueOp
from mastersync.domain.problems import ConfigError
from mastersync.domain.words import a_or_an

# Fields of the record an outbound mapping or filter can read besides canonical ones.
META_FIELDS = ("_master_id", "_version", "_domain")
# Outbound, `_keys.<reference field>` is the consumer's own key(s) for the referenced record.
KEYS_FIELD = "_keys"
_KEYS_USE = re.compile(r"\b_keys\.([A-Za-z_][A-Za-z0-9_]*)")


class Operation(StrEnum):
    """What a delivery asks the consumer to do."""

    UPSERT = "upsert"
    DEACTIVATE = "deactivate"
    SKIP = "skip"


class OutboundMappingFailed(Exception):
    """The record cannot be put in the consumer's shape (a terminal delivery failure)."""

    def __init__(self, field: str, rule: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.rule, self.message = field, rule, message


@dataclass(frozen=True)
class Subscription:
    """A consumer system's interest in one domain, ready to evaluate."""

    id: str
    system: str
    name: str
    domain: str
    fields: tuple[str, ...] | None
    delivery: DeliveryConfig
    matches: Callable[[Mapping[str, Any]], bool]
    shape: Callable[[Mapping[str, Any]], dict[str, Any]]
    # Reference fields whose consumer keys the mapping reads (field -> referenced domain).
    key_refs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Whether the filter reads consumer keys (`_keys.…`): it is decided once they are there.
    filter_reads_keys: bool = False
    # Whether a version whose payload the consumer holds already is sent all the same.
    send_unchanged: bool = False
    # Whether the mapping has conditions: what it sends may change with no field gone.
    conditional: bool = False
    # Whether the consumer's system is a source of the domain too: it may change what it
    # was sent, so what it was sent last says nothing of what it holds.
    source_too: bool = False

    @property
    def skips_unchanged(self) -> bool:
        """Whether a version whose payload the consumer was sent last is skipped."""
        return not (self.send_unchanged or self.source_too)

    def view(
        self,
        master_id: str,
        version: int,
        state: Mapping[str, Any],
        keys: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The record as the filter sees it: every canonical field, plus meta fields."""
        view = {**state, "_master_id": master_id, "_version": version, "_domain": self.domain}
        if keys is not None:
            view[KEYS_FIELD] = keys
        return view

    def operation(self, view: Mapping[str, Any], active_at_consumer: bool) -> Operation:
        """Upsert a matching record; deactivate one that stopped matching; skip the rest.

        A record merged into another (``_merged_into``) counts as no longer matching: the
        consumer gets the survivor under its own id, and the merged event names both.
        """
        if self.matches(view) and not view.get("_merged_into"):
            return Operation.UPSERT
        return Operation.DEACTIVATE if active_at_consumer else Operation.SKIP

    def payload(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """The record in the consumer's native shape: projected, then mapped."""
        if self.fields is not None:
            view = {k: v for k, v in view.items() if k in self.fields or k.startswith("_")}
        return self.shape(view)


def cleared(state: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Whether a record's state may have lost a value it had in ``before``: a field gone,
    or an object field changed (one of its fields may be gone)."""
    for name, old in before.items():
        if name.startswith("_"):
            continue
        new = state.get(name)
        if new is None or (isinstance(old, dict) and new != old):
            return True
    return False


def mark_cleared(payload: dict[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with null for what ``sent`` (the payload the consumer holds) had and it
    lacks: left out, a field cleared at the source kept its old value at a consumer that
    merges what it is sent. Objects are compared field by field (one gone altogether is
    sent as its fields, each null: a null object would wipe fields the hub never sent, and
    some APIs ignore it); lists are whole."""
    out = dict(payload)
    for name, old in sent.items():
        if old is None:
            continue
        new = out.get(name)
        if name not in out:
            out[name] = _nulls(old)
        elif isinstance(new, dict) and isinstance(old, dict):
            out[name] = mark_cleared(new, old)
    return out


def _nulls(value: Any) -> Any:
    """Null for a value; for an object, each of its fields null (nested objects too)."""
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items() if v is not None}
    return None


def _has_conditions(spec: Any) -> bool:
    """Whether an outbound mapping has conditions (an output that may vanish with no field
    of the record gone)."""
    if isinstance(spec, dict):
        return "when" in spec or any(_has_conditions(v) for v in spec.values())
    if isinstance(spec, list):
        return any(_has_conditions(v) for v in spec)
    return False


def _lenient(spec: Any) -> Any:
    """Canonical records leave out what they do not have: outbound, an absent field is null."""
    if isinstance(spec, str):
        return ValueOp.model_validate({"from": spec, "optional": True})
    if isinstance(spec, list):
        # A template's "when" is a condition, not a value: it stays as written.
        return [
            t
            if isinstance(t, str)
            else {k: v if k == "when" else _lenient(v) for k, v in t.items()}
            for t in spec
        ]
    if isinstance(spec, ValueOp):
        update: dict[str, Any] = {"optional": True}
        if spec.concat is not None:
            update["concat"] = [_lenient(p) for p in spec.concat]
        if spec.fields is not None:
            update["fields"] = {k: _lenient(v) for k, v in spec.fields.items()}
        return spec.model_copy(update=update)
    return spec


_PARSING = frozenset({"number", "unit", "date", "datetime"})


def _needs_shaping(spec: Any) -> bool:
    """Whether an outbound mapping can produce what JSON has no type for: it parses or
    converts (number, unit, date, datetime), or holds a date or a Decimal itself (YAML reads
    ``const: 2026-01-01`` as a date)."""
    if isinstance(spec, dict):
        return any((k in _PARSING and bool(v)) or _needs_shaping(v) for k, v in spec.items())
    if isinstance(spec, list | tuple):
        return any(_needs_shaping(v) for v in spec)
    return isinstance(spec, dt.date | Decimal)


def _canonical_shape(view: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if not k.startswith("_")}


def _paths_of(spec: Any) -> list[str]:
    """The paths and conditions an outbound value spec reads from the record itself."""
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, list):
        found: list[str] = []
        for entry in spec:
            if isinstance(entry, str):
                found.append(entry)
            elif isinstance(entry, dict):
                for key, value in entry.items():
                    found.extend([value] if key == "when" else _paths_of(value))
        return found
    if isinstance(spec, ValueOp):
        found = [p for p in (spec.from_, spec.each, spec.when) if p]
        for part in spec.concat or []:
            found.extend(_paths_of(part))
        if spec.fields is not None and spec.each is None:  # with each: per element
            for value in spec.fields.values():
                found.extend(_paths_of(value))
        if spec.unit is not None and spec.unit.from_path:
            found.append(spec.unit.from_path)
        return found
    return []


def _check_reads(
    paths: list[str], domain: str, fields: tuple[str, ...], loc: tuple[str | int, ...]
) -> None:
    """Every field of the record the paths read is one the record can have."""
    for path in paths:
        for name in sorted(root_fields(path)):
            if name in fields or name.startswith("_") or name == "null":
                # Meta fields (_master_id, _keys, …); a bare null is a field JMESPath finds
                # missing, so null, as meant.
                continue
            near = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            if name in ("true", "false"):
                # Bare, JMESPath reads them as fields (null): `x == true` never held.
                hint = f"; JMESPath needs the literal in backticks: `{name}`"
            raise ConfigError(
                f"{path!r} reads {name!r}, which is not {a_or_an(domain)} field{hint}", loc
            )
        spec = DOMAINS.get(domain)
        for chain in sorted(field_chains(path)):
            if spec is None or "." not in chain or chain.startswith("_"):
                continue
            parts = chain.split(".")
            try:
                # Down to where the fields end: below a free-form value (a dict of
                # attributes) any key may be meant.
                for i in range(1, len(parts)):
                    if spec.field_at(".".join(parts[:i])).model is None:
                        break
                else:
                    spec.field_at(chain)
            except LookupError as exc:
                raise ConfigError(f"{path!r} reads {chain!r}: {exc}", loc) from None


# Nodes whose children read the record itself, as the filter's top does: below any other
# (a projection, a pipe, an expref) fields are those of something else.
_AT_RECORD = frozenset({"and_expression", "or_expression", "not_expression", "function_expression"})


def _holds_list(annotation: Any) -> bool:
    """Whether a field's annotation is a list (or a list among the types of a union)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _holds_list(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return any(_holds_list(a) for a in get_args(annotation))
    return origin in (list, tuple, set, frozenset)


def _choices_at(node: Any, domain: str) -> tuple[str, tuple[str, ...]] | None:
    """The dotted field a node reads and the values it allows, for a plain chain of keys
    to an enumerated field through no list (else None: compared as the filter says)."""
    if node.get("type") == "field":
        chain = [node["value"]]
    elif node.get("type") == "subexpression" and all(
        c.get("type") == "field" for c in node.get("children", [])
    ):
        chain = [c["value"] for c in node["children"]]
    else:
        return None
    spec = DOMAINS.get(domain)
    if spec is None:
        return None
    try:
        shapes = [spec.field_at(".".join(chain[: i + 1])) for i in range(len(chain))]
    except LookupError:
        return None  # _check_reads names a field the record has not
    if any(_holds_list(s.annotation) for s in shapes):
        return None  # a list compared with text is a question of its own
    choices = shapes[-1].choices
    return (".".join(chain), choices) if choices else None


def _texts(node: Any) -> list[str] | None:
    """The text literals of a list written in a filter (`['a', 'b']` or a JSON literal)."""
    if node.get("type") == "literal" and isinstance(node.get("value"), list):
        values = node["value"]
    elif node.get("type") == "multi_select_list":
        values = [c.get("value") if c.get("type") == "literal" else None for c in node["children"]]
    else:
        return None
    return [v for v in values if isinstance(v, str)]


def _check_choices(text: str, domain: str, loc: tuple[str | int, ...]) -> None:
    """Every text a filter compares an enumerated field with (==, != or contains(list,
    field)) is one of its values: another (a typo, 'actve') matched no record, silently."""
    try:
        tree = jmespath.compile(text).parsed
    except JMESPathError:
        return  # compiling it reports the error

    def compared(node: Any) -> list[tuple[Any, str]]:
        """(field node, text) pairs the node compares, at this level."""
        kind, children = node.get("type"), node.get("children", [])
        if kind == "comparator" and node.get("value") in ("eq", "ne") and len(children) == 2:
            pairs = []
            for side, other in (children, children[::-1]):
                value = other.get("value")
                if other.get("type") == "literal" and isinstance(value, str):
                    pairs.append((side, value))
            return pairs
        if kind == "function_expression" and node.get("value") == "contains" and len(children) == 2:
            return [(children[1], v) for v in _texts(children[0]) or []]
        return []

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for side, value in compared(node):
            found = _choices_at(side, domain)
            if found is None or value in found[1]:
                continue
            name, choices = found
            near = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{text!r} compares {name} with {value!r}, a value {name} never holds "
                f"(it is one of: {', '.join(choices)}){hint}",
                loc,
            )
        if node.get("type") in _AT_RECORD:
            for child in node.get("children", []):
                walk(child)

    walk(tree)


def _filter(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """A subscription's filter (amounts order as numbers, see compile_condition); one that
    cannot be evaluated on a record fails its delivery (OutboundMappingFailed), never the
    round."""
    condition = compile_condition(text)

    def matches(view: Mapping[str, Any]) -> bool:
        try:
            return condition(view)
        except ConditionFailed as exc:
            raise OutboundMappingFailed("filter", "condition", exc.message) from None

    return matches


def compile_subscription(
    system: str,
    name: str,
    cfg: SubscriptionConfig,
    default_delivery: DeliveryConfig,
    domain_fields: tuple[str, ...],
    references: Mapping[str, str] | None = None,
    source_too: bool = False,
) -> Subscription:
    """Check and compile one subscription; config errors carry their key path."""
    references = references or {}
    used = set(_KEYS_USE.findall(cfg.model_dump_json(by_alias=True)))
    for ref in sorted(used):
        if ref not in references:
            known = ", ".join(sorted(references)) or "none"
            raise ConfigError(
                f"_keys.{ref}: {ref!r} is not a reference field of {cfg.domain} "
                f"(its references: {known})",
                ("mapping",),
            )
    if cfg.fields is not None:
        for i, field in enumerate(cfg.fields):
            if field not in domain_fields:
                raise ConfigError(f"{field!r} is not {a_or_an(cfg.domain)} field", ("fields", i))
    try:
        matches = _filter(cfg.filter) if cfg.filter else (lambda view: True)
    except ConfigError as exc:
        raise ConfigError(exc.message, ("filter",)) from None
    # A misspelt field reads as null: a filter on it matched nothing and a mapping sent
    # nothing for it, and nothing said why.
    if cfg.filter:
        _check_reads([cfg.filter], cfg.domain, domain_fields, ("filter",))
        _check_choices(cfg.filter, cfg.domain, ("filter",))
    if cfg.mapping is not None:
        for target, spec in cfg.mapping.fields.items():
            loc = ("mapping", "fields", target)
            _check_reads(_paths_of(spec), cfg.domain, domain_fields, loc)
    shape: Callable[[Mapping[str, Any]], dict[str, Any]] = _canonical_shape
    conditional = False
    if cfg.mapping is not None:
        try:
            compiled = compile_fields(
                {k: _lenient(v) for k, v in cfg.mapping.fields.items()}, system
            )
        except ConfigError as exc:
            raise ConfigError(exc.message, ("mapping", "fields", *exc.loc)) from None
        # Walking every payload costs a few µs a delivery: only for mappings that need it.
        dumped = cfg.mapping.model_dump(exclude_none=True)
        shaping = _needs_shaping(dumped)
        conditional = _has_conditions(dumped)

        def mapped(view: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for field in compiled:
                try:
                    produce(field, view, out)
                except FieldFailure as exc:
                    raise OutboundMappingFailed(exc.field, exc.rule, exc.message) from None
            if not shaping:
                return out
            # Numbers and dates the mapping parsed go out as JSON has them.
            shaped: dict[str, Any] = json_shaped(out)
            return shaped

        shape = mapped
    return Subscription(
        id=f"{system}.{name}",
        system=system,
        name=name,
        domain=cfg.domain,
        fields=tuple(cfg.fields) if cfg.fields is not None else None,
        delivery=cfg.delivery.over(default_delivery) if cfg.delivery else default_delivery,
        matches=matches,
        shape=shape,
        key_refs={ref: references[ref] for ref in sorted(used)},
        filter_reads_keys=bool(cfg.filter and _KEYS_USE.search(cfg.filter)),
        send_unchanged=cfg.send_unchanged,
        conditional=conditional,
        source_too=source_too,
    )
