"""Compile a field -> value-spec table into a function building a nested object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mastersync.domain.mapping.paths import ConditionFailed, compile_condition
from mastersync.domain.mapping.values import ValueFailure, compile_value
from mastersync.domain.problems import ConfigError

# A list template may carry this key: a condition deciding whether the entry exists.
CONDITION_KEY = "when"

CompiledField = tuple[str, tuple[str, ...], Callable[[Mapping[str, Any]], Any]]


class FieldFailure(Exception):
    """A target field's value could not be produced."""

    def __init__(self, field: str, rule: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.rule, self.message = field, rule, message


def compile_fields(fields: Mapping[str, Any], system: str) -> list[CompiledField]:
    """Compile each target field; a config error names the field it belongs to."""
    compiled = []
    for target, spec in fields.items():
        try:
            fn = compile_value(spec, system)
        except ConfigError as exc:
            raise ConfigError(exc.message, (target, *exc.loc)) from None
        compiled.append((target, tuple(target.split(".")), fn))
    return compiled


def produce(field: CompiledField, rec: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Produce one target value into ``out`` (dotted targets nested, nulls left out)."""
    target, parts, fn = field
    try:
        value = fn(rec)
    except ValueFailure as exc:
        raise FieldFailure(target, exc.rule, exc.message) from None
    except ConditionFailed as exc:
        raise FieldFailure(target, "condition", exc.message) from None
    except FieldFailure as exc:
        raise FieldFailure(f"{target}.{exc.field}", exc.rule, exc.message) from None
    except Exception as exc:
        # A value no rule foresaw must fail its record, not the batch (or, outbound, hold up
        # a subscription): it is reported with its field like any other mapping problem.
        raise FieldFailure(target, "unexpected", f"{type(exc).__name__}: {exc}") from None
    if value is None:
        return
    if len(parts) == 1:
        out[target] = value
        return
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def compile_object(fields: Mapping[str, Any], system: str) -> Callable[[Mapping[str, Any]], Any]:
    """A function producing a nested object, or None when the template's condition fails."""
    template = dict(fields)
    condition_text = template.pop(CONDITION_KEY, None)
    if condition_text is not None and not isinstance(condition_text, str):
        raise ConfigError("a template condition is a path or expression string", (CONDITION_KEY,))
    try:
        condition = compile_condition(condition_text) if condition_text else None
    except ConfigError as exc:
        raise ConfigError(exc.message, (CONDITION_KEY,)) from None
    compiled = compile_fields(template, system)

    def build(rec: Mapping[str, Any]) -> dict[str, Any] | None:
        if condition is not None and not condition(rec):
            return None
        out: dict[str, Any] = {}
        for field in compiled:
            produce(field, rec, out)
        return out or None

    return build


def json_shaped(value: Any) -> Any:
    """A produced value as JSON carries it, for outbound payloads: numbers a mapping parsed or
    converted (Decimals) as JSON numbers, exact (as text where a float would round them),
    dates and times in ISO 8601. Connectors serialise payloads with JSON libraries that
    refuse Decimals and dates."""
    if isinstance(value, dict):
        return {k: json_shaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shaped(v) for v in value]
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
