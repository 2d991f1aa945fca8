"""Compile one value spec into a function: source -> conversions -> target value."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, DecimalException, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import NumberFormatError, get_group_symbol, parse_decimal

from mastersync.domain.mapping.paths import MISSING, compile_condition, compile_path
from mastersync.domain.mapping.spec import DateSpec, NumberSpec, RefSpec, UnitSpec, ValueOp
from mastersync.domain.mapping.units import conversion_factor
from mastersync.domain.problems import ConfigError, shown
from mastersync.domain.versions import zone

ValueFn = Callable[[Mapping[str, Any]], Any]


class ValueFailure(Exception):
    """A value could not be produced; ``rule`` names the mapping step that failed."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class Ref:
    """An unresolved reference to another domain's record; the pipeline resolves it."""

    domain: str
    system: str
    value: str
    by: str | None = None


# A value spec's `case`: applied after the value map (what `check` reads a map's outputs by).
CASES: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
}


def _missing(path: str) -> ValueFailure:
    return ValueFailure("missing_field", f"source field {path!r} is not in the record")


def _source(op: ValueOp, system: str) -> ValueFn:
    if op.from_ is not None:
        path, getter, optional = (
            op.from_,
            compile_path(op.from_),
            op.optional or op.default is not None,
        )

        def read(rec: Mapping[str, Any]) -> Any:
            value = getter(rec)
            if value is MISSING:
                if optional:
                    return None
                raise _missing(path)
            return value

        return read
    if op.has_const:
        const = op.const
        return lambda rec: const
    if op.concat is not None:
        trim = op.trim
        # A part trims as the concatenation says unless it says otherwise itself: `trim:
        # false` keeps a fixed-width part's padding (every part was stripped whatever it said).
        parts = [
            compile_value(
                ValueOp.model_validate({"from": p, "trim": trim})
                if isinstance(p, str)
                else p
                if "trim" in p.model_fields_set
                else p.model_copy(update={"trim": trim}),
                system,
            )
            for p in op.concat
        ]
        sep = op.sep

        def concat(rec: Mapping[str, Any]) -> Any:
            values = (p(rec) for p in parts)
            texts = [str(v).strip() if trim else str(v) for v in values if v not in (None, "")]
            return sep.join(t for t in texts if t) or None

        return concat
    from mastersync.domain.mapping.objects import compile_object

    assert op.fields is not None  # guaranteed by ValueOp's validator
    if op.each is None:
        return compile_object(op.fields, system)
    getter, element = compile_path(op.each), compile_object(op.fields, system)

    def each(rec: Mapping[str, Any]) -> Any:
        items = getter(rec)
        if items in (None, MISSING):
            return None
        if not isinstance(items, list):
            raise ValueFailure(
                "each", f"expected a list at {op.each!r}, got {type(items).__name__}"
            )
        out = [v for v in (element(i) for i in items if isinstance(i, Mapping)) if v]
        return out or None

    return each


def _value_map(op: ValueOp) -> Callable[[Any], Any]:
    assert op.map is not None
    table = {_map_key(k): v for k, v in op.map.items()}
    other = op.map_other

    def lookup(value: Any) -> Any:
        key = _map_key(value)
        if key in table:
            return table[key]
        if other == "keep":
            return value
        if other == "null":
            return None
        known = ", ".join(sorted(table)[:8])
        raise ValueFailure("value_map", f"value {value!r} has no entry in the value map ({known})")

    return lookup


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


# Spaces a number's digits may be grouped with (space, no-break, narrow no-break, thin).
_SPACES = re.compile(r"[ \u00a0\u202f\u2009]")


def _number(spec: NumberSpec | bool) -> Callable[[Any], Any]:
    locale = spec.locale if isinstance(spec, NumberSpec) else None
    decimal_sep = spec.decimal if isinstance(spec, NumberSpec) else None
    group_sep = spec.group if isinstance(spec, NumberSpec) else None
    spaces = None
    shape = None
    if group_sep or decimal_sep:
        # The whole spelling, not just the separators swapped: with decimal "," and group
        # ".", "1.5" read as 15 and "1,234.5" as 1.2345.
        g, d = re.escape(group_sep or ""), re.escape(decimal_sep or ".")
        whole = rf"(?:\d{{1,3}}(?:{g}\d{{3}})+|\d+)" if group_sep else r"\d+"
        shape = re.compile(rf"[+-]?(?:{whole}(?:{d}\d*)?|{d}\d+)")
    if locale:
        try:
            Locale.parse(locale)
        except (UnknownLocaleError, ValueError):
            raise ConfigError(f"unknown locale {locale!r}") from None
        group = get_group_symbol(locale)
        if group.isspace():
            # fr_FR groups with U+202F, nb_NO with U+00A0: exports write a plain space or
            # either of the two, and babel takes the locale's own one only.
            spaces = (_SPACES, group)

    def parse(value: Any) -> Any:
        number = read(value)
        if not number.is_finite():  # "NaN", "Infinity": Decimal reads them, no system means them
            raise ValueFailure("number", f"{value!r} is not a finite number")
        return number

    def read(value: Any) -> Decimal:
        if type(value) is str and not locale and not group_sep and not decimal_sep:
            try:
                return Decimal(value.strip())  # the common case: plain digits and a dot
            except InvalidOperation:
                raise ValueFailure("number", f"{value!r} is not a number") from None
        if isinstance(value, bool):
            raise ValueFailure("number", f"expected a number, got {shown(value)}")
        if isinstance(value, int | Decimal):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(repr(value))
        text = str(value).strip()
        try:
            if locale:
                if spaces is not None:
                    text = spaces[0].sub(spaces[1], text)
                return parse_decimal(text, locale=locale, strict=True)
            if shape is not None and not shape.fullmatch(text):
                raise ValueError(text)
            if group_sep:
                text = text.replace(group_sep, "")
            if decimal_sep:
                text = text.replace(decimal_sep, ".")
            return Decimal(text)
        except (InvalidOperation, NumberFormatError, ValueError):
            where = f" for locale {locale}" if locale else ""
            if shape is not None:
                seps = [f"decimal {decimal_sep or '.'!r}"]
                seps += [f"group {group_sep!r}"] if group_sep else []
                where = f" written with {' and '.join(seps)}"
            raise ValueFailure("number", f"{value!r} is not a number{where}") from None

    return parse


_ISO_DAY = re.compile(r"\s*\d{4}-\d{1,2}-\d{1,2}")


def _field_order(locale: str) -> str:
    """The order of year, month and day in the locale's medium date ("Mdy" for en_US): the
    format babel's parse_date reads numbers by (the short one orders them otherwise in
    en_CA, fr_CA, en_ZA and others)."""
    from babel.dates import get_date_format

    pattern = get_date_format("medium", locale=locale).pattern
    seen = ""
    for ch in pattern:
        if ch in "yMd" and ch not in seen:
            seen += ch
    return seen


def _date(spec: DateSpec | bool, with_time: bool) -> Callable[[Any], Any]:
    fmt = spec.format if isinstance(spec, DateSpec) else None
    locale = spec.locale if isinstance(spec, DateSpec) else None
    rule = "datetime" if with_time else "date"
    local = zone(spec.timezone) if isinstance(spec, DateSpec) else dt.UTC
    order = _field_order(locale) if locale else ""

    def on_locale(text: str) -> dt.date:
        from babel.dates import parse_date

        parsed = parse_date(text, locale=locale)
        # babel takes the first three numbers: a time after the date is no part of it.
        numbers = re.findall(r"\d+", text)[:3]
        if len(numbers) == 3 and len(order) == 3 and not _ISO_DAY.match(text):
            # babel swaps day and month when the month read is above 12: 13/01/2026 became
            # 13 January for en_US (month first) instead of failing.
            month, day = (int(numbers[order.index(f)]) for f in "Md")
            if (parsed.month, parsed.day) != (month, day):
                raise ValueError(f"no month {month} in the {locale} order")
        return parsed

    def parse(value: Any) -> Any:
        if isinstance(value, dt.datetime):  # SQL sources hand over naive ones
            if not with_time:
                return value.date()
            return value if value.tzinfo else value.replace(tzinfo=local)
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        try:
            if fmt:
                parsed = dt.datetime.strptime(text, fmt)
            elif locale:
                from babel.dates import parse_time

                if not with_time:
                    return on_locale(text)
                # babel reads dates and times, not both at once: "01.03.2026 10:15" is the
                # date, then the time after it (midnight when there is none, as ISO reads).
                day, _, clock = text.partition(" ")
                moment = parse_time(clock, locale=locale) if clock.strip() else dt.time()
                parsed = dt.datetime.combine(on_locale(day.rstrip(",")), moment)
            else:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, IndexError) as exc:
            what = "date and time" if with_time else "date"
            reason = str(exc)
            if fmt and "out of range" in reason:
                # It has the format's shape, but no such day (31.02.2024): say so.
                raise ValueFailure(rule, f"{value!r} is no {what}: {reason}") from None
            expect = fmt or (f"a {locale} {what}" if locale else "ISO 8601")
            raise ValueFailure(rule, f"{value!r} does not match {expect}") from None
        if with_time:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=local)
        return parsed.date()

    return parse


def _unit(spec: UnitSpec) -> Callable[[Any, Mapping[str, Any]], Any]:
    if spec.from_ is not None:
        factor = conversion_factor(spec.from_, spec.to)
        return lambda value, rec: _scaled(value, factor)
    unit_of = compile_path(spec.from_path or "")
    target = spec.to

    def convert(value: Any, rec: Mapping[str, Any]) -> Any:
        unit = unit_of(rec)
        if unit in (None, MISSING, ""):
            raise ValueFailure(
                "unit", f"no unit in {spec.from_path!r} to convert {shown(value)} from"
            )
        try:
            factor = conversion_factor(str(unit), target)
        except ConfigError as exc:
            raise ValueFailure("unit", exc.message) from None
        return _scaled(value, factor)

    return convert


def _scaled(value: Any, factor: Decimal) -> Decimal:
    number = value
    if not isinstance(number, Decimal):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueFailure("unit", f"{shown(value)} is not a number to convert") from None
    try:
        # Six decimals: sub-milligram/micrometre precision, and no float noise in golden values.
        scaled: Decimal = (number * factor).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    except DecimalException:  # NaN, infinite, or too many digits for six decimals
        raise ValueFailure("unit", f"{shown(value)} is out of range to convert") from None
    if not scaled.is_finite():
        raise ValueFailure("unit", f"{shown(value)} is not a finite number to convert")
    return scaled


def _rounded(value: Any, rounding: Decimal) -> Decimal:
    """A value rounded half-even to the places of ``rounding`` (0.01: two)."""
    if isinstance(value, bool):
        raise ValueFailure("round", f"expected a number to round, got {shown(value)}")
    if isinstance(value, float):
        # By the digits written, as the number step reads floats: Decimal(2.675) is
        # 2.67499999..., which rounded to 2.67 where the source said 2.675.
        number = Decimal(repr(value))
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueFailure(
                "round", f"{value!r} is not a number (add a 'number' step)"
            ) from None
    if not number.is_finite():
        raise ValueFailure("round", f"{shown(value)} is not a finite number")
    try:
        return number.quantize(rounding, rounding=ROUND_HALF_EVEN)
    except DecimalException:  # too many digits for the places asked for
        raise ValueFailure("round", f"{shown(value)} is out of range to round") from None


def compile_value(spec: Any, system: str) -> ValueFn:
    """Compile a value spec (a path string, an op, or a list of object templates)."""
    if isinstance(spec, str):
        return compile_value(ValueOp.model_validate({"from": spec}), system)
    if isinstance(spec, list):
        from mastersync.domain.mapping.objects import compile_object

        # Scalar entries are optional: "lines: [STREET, STREET_2]" keeps what exists.
        entries = [
            compile_value(ValueOp.model_validate({"from": t, "optional": True}), system)
            if isinstance(t, str)
            else compile_object(t, system)
            for t in spec
        ]

        def listed(rec: Mapping[str, Any]) -> Any:
            out = [v for v in (e(rec) for e in entries) if v not in (None, "", {})]
            return out or None

        return listed
    if isinstance(spec, dict):
        spec = ValueOp.model_validate(spec)
    op: ValueOp = spec
    source = _source(op, system)
    steps: list[Callable[[Any], Any]] = []
    if op.map is not None:
        steps.append(_value_map(op))
    if op.number:
        steps.append(_number(op.number))
    if op.date:
        steps.append(_date(op.date, with_time=False))
    if op.datetime:
        steps.append(_date(op.datetime, with_time=True))
    unit = _unit(op.unit) if op.unit is not None else None
    rounding = Decimal(1).scaleb(-op.round) if op.round is not None else None
    case = CASES.get(op.case or "")
    trim, default, ref = op.trim, op.default, op.ref
    when = compile_condition(op.when) if op.when else None
    if (
        op.from_ is not None
        and trim
        and not steps
        and unit is None
        and rounding is None
        and case is None
        and default is None
        and ref is None
        and when is None
    ):
        return _plain(op, source)

    def produce(rec: Mapping[str, Any]) -> Any:
        if when is not None and not when(rec):
            return None
        value = source(rec)
        if isinstance(value, str):
            if trim:
                value = value.strip()
            if value == "":
                value = None
        if value is not None:
            for step in steps:
                value = step(value)
                if value is None:
                    break
        if value is not None and unit is not None:
            value = unit(value, rec)
        if value is not None and rounding is not None:
            value = _rounded(value, rounding)
        if case is not None and isinstance(value, str):
            value = case(value)
        if value is None:
            value = default
        if value is not None and ref is not None:
            value = _ref(ref, system, value)
        return value

    return produce


def _plain(op: ValueOp, source: ValueFn) -> ValueFn:
    """A bare source path (most mapped fields): read, trim, blank -> null, nothing else."""

    def plain(rec: Mapping[str, Any]) -> Any:
        value = source(rec)
        if type(value) is str:
            return value.strip() or None
        return value

    return plain


def _ref(spec: RefSpec, system: str, value: Any) -> Ref:
    return Ref(domain=spec.domain, system=spec.system or system, value=str(value), by=spec.by)
