"""Data-quality rules: declared in the landscape, evaluated on canonical values."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from stdnum import ean, get_cc_module, iban
from stdnum.eu import vat as eu_vat

from mastersync.domain.mapping.paths import ConditionFailed, compile_condition
from mastersync.domain.problems import ConfigError, Problem, ProblemKind

RuleName = Literal["required", "enum", "range", "pattern", "length", "gtin", "iban", "tax_id"]


class QualityRule(BaseModel):
    """One declared rule; ``required`` is checked on the golden record, the rest per source."""

    model_config = ConfigDict(extra="forbid")

    field: str
    rule: RuleName
    values: list[Any] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    regex: str | None = None
    country_field: str = "country"
    when: str | None = None
    severity: Literal["error", "warning"] = "error"
    message: str | None = None

    @model_validator(mode="after")
    def _arguments(self) -> QualityRule:
        if self.rule == "enum" and not self.values:
            raise ValueError("rule 'enum' needs 'values'")
        if self.rule in ("range", "length") and self.min is None and self.max is None:
            raise ValueError(f"rule {self.rule!r} needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: no value could pass")
        if self.rule == "pattern":
            if not self.regex:
                raise ValueError("rule 'pattern' needs 'regex'")
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return self


def values_at(record: Mapping[str, Any], path: tuple[str, ...]) -> Iterable[Any]:
    """Every value at a dotted path, descending into lists (``addresses.country``)."""
    if not path:
        yield record
        return
    value = record.get(path[0]) if isinstance(record, Mapping) else None
    if value is None:
        return
    rest = path[1:]
    for item in value if isinstance(value, list) else [value]:
        if rest:
            if isinstance(item, Mapping):
                yield from values_at(item, rest)
        else:
            yield item


Check = Callable[[Any, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: returns problems for a record."""

    spec: QualityRule
    path: tuple[str, ...]
    check: Check
    condition: Callable[[Mapping[str, Any]], bool] | None

    @property
    def on_golden(self) -> bool:
        """Required-ness belongs to the golden record: each system contributes only a part."""
        return self.spec.rule == "required"

    def evaluate(self, record: Mapping[str, Any]) -> list[Problem]:
        """Problems this rule finds in ``record`` (JSON-shaped canonical values)."""
        try:
            if self.condition is not None and not self.condition(record):
                return []
        except ConditionFailed as exc:
            return [self._problem(exc.message)]
        if self.spec.rule == "required":
            if len(self.path) == 1 and isinstance(record, dict):
                # A top-level field (the usual required rule, run on every record merged):
                # what values_at yields for it, read without a generator.
                value = record.get(self.path[0])
                items = value if isinstance(value, list) else () if value is None else (value,)
                found = [v for v in items if v not in (None, "", [])]
            else:
                found = [v for v in values_at(record, self.path) if v not in (None, "", [])]
            return (
                []
                if found
                else [
                    self._problem(
                        f"{self.spec.field} is required and no source that may write it has a value"
                    )
                ]
            )
        out = []
        for value in values_at(record, self.path):
            reason = self.check(value, record)
            if reason is not None:
                out.append(self._problem(reason))
        return out

    def _problem(self, reason: str) -> Problem:
        return Problem(
            ProblemKind.VALIDATION_ERROR,
            self.spec.field,
            self.spec.rule,
            self.spec.message or reason,
            self.spec.severity,
        )


def unusable(
    rules: Iterable[CompiledRule], values: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, list[Problem]]:
    """Field -> the errors the rules find in ``values`` (ones a system sent for fields it
    may not write), each value judged as if it stood in ``context`` (the golden record with
    what the system may write), as it would be should it ever be taken: a warning-only
    rule never refuses a value, so it is left out."""
    found: dict[str, list[Problem]] = {}
    for rule in rules:
        name = rule.path[0]
        if name not in values:
            continue
        errors = [p for p in rule.evaluate({**context, name: values[name]}) if p.is_error]
        if errors:
            found.setdefault(name, []).extend(errors)
    return found


def _enum(spec: QualityRule) -> Check:
    allowed = {str(v) for v in spec.values or []}
    return lambda v, rec: (
        None if str(v) in allowed else (f"{v!r} is not one of {', '.join(sorted(allowed))}")
    )


def _range(spec: QualityRule) -> Check:
    def check(value: Any, rec: Mapping[str, Any]) -> str | None:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"{value!r} is not a number"
        if spec.min is not None and number < spec.min:
            return f"{value} is below the minimum {spec.min}"
        if spec.max is not None and number > spec.max:
            return f"{value} is above the maximum {spec.max}"
        return None

    return check


def _length(spec: QualityRule) -> Check:
    def check(value: Any, rec: Mapping[str, Any]) -> str | None:
        size = len(value) if isinstance(value, str | list) else len(str(value))
        if spec.min is not None and size < spec.min:
            return f"length {size} is below the minimum {spec.min}"
        if spec.max is not None and size > spec.max:
            return f"length {size} is above the maximum {spec.max}"
        return None

    return check


def _pattern(spec: QualityRule) -> Check:
    regex = re.compile(spec.regex or "")
    return lambda v, rec: (
        None if regex.fullmatch(str(v)) else (f"{v!r} does not match {spec.regex}")
    )


def _gtin(value: Any, rec: Mapping[str, Any]) -> str | None:
    if not ean.is_valid(str(value)):
        return f"{value!r} is not a valid GTIN"
    # All zeros passes the check digit, but it is a "no GTIN" placeholder GS1 never issues.
    if not ean.compact(str(value)).strip("0"):
        return f"{value!r} is all zeros: no GTIN is (a placeholder for none)"
    return None


def _iban(value: Any, rec: Mapping[str, Any]) -> str | None:
    return None if iban.is_valid(str(value)) else f"{value!r} is not a valid IBAN"


def _tax_id(spec: QualityRule) -> Check:
    country_path = tuple(spec.country_field.split("."))

    def check(value: Any, rec: Mapping[str, Any]) -> str | None:
        text = str(value)
        prefix = text[:2]
        # A VAT number carrying its EU country prefix checks on its own.
        if prefix.isalpha() and eu_vat.is_valid(text):
            return None
        country = next(iter(values_at(rec, country_path)), None)
        if not country:
            if prefix.isalpha():
                # A prefix outside the EU (GB, CH, NO): that country's own VAT check.
                own = get_cc_module(prefix.lower(), "vat")
                if own is not None and own.is_valid(text):
                    return None
                return f"{text} is not a valid VAT number"
            return f"tax id {text} cannot be checked: no {spec.country_field}"
        checkers = [
            m
            for m in (
                get_cc_module(str(country).lower(), "vat"),
                get_cc_module(str(country).lower(), "tin"),
            )
            if m
        ]
        if not checkers:
            return None  # python-stdnum knows no tax id of this country: nothing to check
        if any(m.is_valid(text) for m in checkers):
            return None
        return f"{text} is not a valid tax id for {country}"

    return check


def compile_rule(spec: QualityRule) -> CompiledRule:
    """Compile a declared rule; bad conditions are config errors."""
    checks: dict[str, Callable[[QualityRule], Check]] = {
        "required": lambda s: lambda v, r: None,
        "enum": _enum,
        "range": _range,
        "length": _length,
        "pattern": _pattern,
        "gtin": lambda s: _gtin,
        "iban": lambda s: _iban,
        "tax_id": _tax_id,
    }
    try:
        condition = compile_condition(spec.when) if spec.when else None
    except ConfigError as exc:
        raise ConfigError(exc.message, ("when",)) from None
    return CompiledRule(spec, tuple(spec.field.split(".")), checks[spec.rule](spec), condition)
