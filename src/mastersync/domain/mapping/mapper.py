"""A compiled mapping: one system's native record -> key, version and canonical values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jmespath

from mastersync.domain.canonical import DOMAINS, TextTree
from mastersync.domain.mapping.objects import CONDITION_KEY, FieldFailure, compile_fields, produce
from mastersync.domain.mapping.paths import MISSING, compile_path, is_simple_path, path_segments
from mastersync.domain.mapping.spec import MappingSpec, ValueOp, VersionKind
from mastersync.domain.mapping.values import ValueFailure, compile_value
from mastersync.domain.problems import ConfigError, Problem, ProblemKind
from mastersync.domain.versions import Version, parse_timestamp, parse_version, zone


@dataclass(slots=True)
class Mapped:
    """A native record after mapping: still unvalidated canonical values."""

    key: str
    # None for arrival-ordered sources: the pipeline numbers arrivals.
    version: Version | None
    # UTC text of the source's own change time, when the source has one.
    timestamp: str | None
    values: dict[str, Any]


class MappingFailed(Exception):
    """The record could not be mapped; ``problems`` say which fields and rules."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


# The longest source key a record may have (characters; four bytes each at most).
MAX_KEY_LENGTH = 512


def _failure(field: str, rule: str, message: str) -> Problem:
    return Problem(ProblemKind.MAPPING_ERROR, field, rule, message)


class Mapper:
    """Maps records of ``system``'s ``domain`` according to a :class:`MappingSpec`."""

    def __init__(
        self, system: str, domain: str, spec: MappingSpec, *, numbers_as_text: bool = True
    ):
        self.system, self.domain, self.spec = system, domain, spec
        # A source's numbers for text fields are their digits (JSON exports write ids and
        # EANs as numbers); canonical records (the API) must match the published schema.
        # Nested too: a numeric postcode of an address or EAN of a pack level in an Excel
        # export was rejected ("Input should be a valid string").
        tree = DOMAINS[domain].text_tree if numbers_as_text and domain in DOMAINS else {}
        targets = {t.split(".")[0] for t in spec.fields}
        self._texts = {name: sub for name, sub in tree.items() if name in targets}
        self.version_kind = spec.version.kind
        self._tz = zone(spec.version.timezone)
        try:
            self._key = compile_value(spec.key, system)
        except ConfigError as exc:
            raise ConfigError(exc.message, ("key", *exc.loc)) from None
        self._version = compile_path(spec.version.from_) if spec.version.from_ else None
        try:
            self._timestamp = (
                compile_value(spec.timestamp, system) if spec.timestamp is not None else None
            )
        except ConfigError as exc:
            raise ConfigError(exc.message, ("timestamp", *exc.loc)) from None
        try:
            self._fields = compile_fields(spec.fields, system)
        except ConfigError as exc:
            raise ConfigError(exc.message, ("fields", *exc.loc)) from None
        roots = list(_roots(spec))
        self.source_fields = frozenset(name for name, _ in roots)
        # Top-level fields read through a JMESPath expression (target -> expression): a
        # misspelt one reads null in every record, which only a batch as a whole shows.
        self.expression_fields = {
            target: path
            for target, value in spec.fields.items()
            if "." not in target
            and (path := value if isinstance(value, str) else getattr(value, "from_", None))
            and not is_simple_path(path)
        }
        self._required_columns = frozenset(name for name, needed in roots if needed)

    @property
    def targets(self) -> tuple[str, ...]:
        """The top-level canonical fields this mapping writes."""
        return tuple(dict.fromkeys(t.split(".")[0] for t in self.spec.fields))

    def missing_columns(self, columns: Sequence[str]) -> list[str]:
        """Source fields the mapping needs that a file's header lacks (checked once per file)."""
        have = set(columns)
        return sorted(self._required_columns - have)

    def identity(self, record: Mapping[str, Any]) -> tuple[str, Version | None]:
        """Just the record's key and source version (cheap: decides whether to map at all)."""
        problems: list[Problem] = []
        key = self._read_key(record, problems)
        version = self._read_version(record, problems)
        if key is None and not problems:
            problems.append(_failure("key", "required", "the record's key is empty"))
        if problems:
            raise MappingFailed(problems)
        return str(key), version

    def key_of(self, record: Mapping[str, Any]) -> str | None:
        """The record's key when it can be read, else None (a record that failed for its
        version is still filed under its key, where its next good version settles it)."""
        key = self._read_key(record, [])
        return None if key is None else str(key)

    def map(self, record: Mapping[str, Any]) -> Mapped:
        """Map one record; raises :class:`MappingFailed` naming each failed field and rule."""
        problems: list[Problem] = []
        key = self._read_key(record, problems)
        version = self._read_version(record, problems)
        timestamp = None
        if self._timestamp is not None:
            raw_ts = self._value(self._timestamp, record, "timestamp", problems)
            if raw_ts is not None:
                try:
                    timestamp = parse_timestamp(raw_ts, None, self._tz)
                except ValueError:
                    problems.append(
                        _failure("timestamp", "timestamp", f"{raw_ts!r} is no timestamp")
                    )
        elif self.version_kind is VersionKind.TIMESTAMP and isinstance(version, str):
            timestamp = version
        values: dict[str, Any] = {}
        for field in self._fields:
            try:
                produce(field, record, values)
            except FieldFailure as exc:
                problems.append(_failure(exc.field, exc.rule, exc.message))
        if self.spec.strict:
            extra = sorted(
                k for k in record if k not in self.source_fields and k not in self.spec.ignore
            )
            for name in extra:
                problems.append(
                    _failure(
                        name,
                        "unknown_field",
                        f"source field {name!r} is not mapped (strict mapping)",
                    )
                )
        if key is None and not any(p.field == "key" for p in problems):
            problems.append(_failure("key", "required", "the record's key is empty"))
        if problems:
            raise MappingFailed(problems)
        if self._texts:
            _digits(values, self._texts)
        return Mapped(str(key), version, timestamp, values)

    def _read_key(self, record: Mapping[str, Any], problems: list[Problem]) -> Any:
        key = self._value(self._key, record, "key", problems)
        if key is not None and len(text := str(key)) > MAX_KEY_LENGTH:
            # Keys are indexed everywhere (PostgreSQL refuses an index entry over 2,704
            # bytes, and failed the whole chunk): a record with such a key fails alone.
            problems.append(
                _failure(
                    "key",
                    "too_long",
                    f"the record's key is {len(text):,} characters long, over the "
                    f"{MAX_KEY_LENGTH} allowed: {text[:40]}…",
                )
            )
            return None
        return key

    def _value(self, fn: Any, record: Mapping[str, Any], name: str, problems: list[Problem]) -> Any:
        try:
            return fn(record)
        except ValueFailure as exc:
            problems.append(_failure(name, exc.rule, exc.message))
        except FieldFailure as exc:
            problems.append(_failure(f"{name}.{exc.field}", exc.rule, exc.message))
        except Exception as exc:  # see ``produce``: the record fails, not the batch
            problems.append(_failure(name, "unexpected", f"{type(exc).__name__}: {exc}"))
        return None

    def _read_version(self, record: Mapping[str, Any], problems: list[Problem]) -> Version | None:
        if self._version is None:
            return None
        raw = self._value(self._version, record, "version", problems)
        where = self.spec.version.from_
        if raw in (None, MISSING, ""):
            missing = "not in the record" if raw is MISSING else "empty"
            problems.append(
                _failure("version", "required", f"source version {where!r} is {missing}")
            )
            return None
        try:
            return parse_version(self.version_kind, raw, self.spec.version.format, self._tz)
        except ValueError as exc:
            problems.append(_failure("version", self.version_kind.value, str(exc)))
            return None


def _digits(values: dict[str, Any], tree: TextTree) -> None:
    """Whole numbers where the model holds text become their digits, nested models and lists
    included. ``values`` is changed in place, but nothing under it: a nested value may be
    the source record's own (a field copied whole), which must stay as it was sent."""
    for name, sub in tree.items():
        value = values.get(name)
        # Text, most values, is left as it is: skipped here without a call.
        if value is not None and type(value) is not str:
            values[name] = _as_digits(value, sub)


_EXACT = 2.0**53


def _as_digits(value: Any, sub: bool | TextTree) -> Any:
    """``value`` with its integers where text belongs turned to digits (a copy where any
    was)."""
    if type(value) is list:
        items = [_as_digits(v, sub) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if sub is True:
        if type(value) is int:
            return str(value)
        # A whole float (a JSON export's 4006381333931.0) is its digits too, while exact:
        # past 2**53 a float's digits are no longer the ones the source had.
        if type(value) is float and value.is_integer() and abs(value) < _EXACT:
            return str(int(value))
        return value
    if isinstance(sub, dict) and isinstance(value, dict):
        changed = {
            k: new
            for k, inner in sub.items()
            if k in value and (new := _as_digits(value[k], inner)) is not value[k]
        }
        return {**value, **changed} if changed else value
    return value


def _roots(spec: MappingSpec) -> Iterable[tuple[str, bool]]:
    """Top-level source fields a mapping reads, each with whether a record must have it."""

    def visit(value: Any, needed: bool) -> Iterable[tuple[str, bool]]:
        if isinstance(value, str):
            yield from _expr_roots(value, needed)
        elif isinstance(value, ValueOp):
            own = needed and not value.optional and value.default is None
            if value.from_:
                yield from _expr_roots(value.from_, own)
            if value.each:
                yield from _expr_roots(value.each, False)
            for part in value.concat or []:
                yield from visit(part, own)
            if value.when:
                yield from _expr_roots(value.when, False)
            if value.fields is not None and value.each is None:
                for inner in value.fields.values():
                    yield from visit(inner, own)
            if value.unit is not None and value.unit.from_path:
                # A value's unit column is as needed as the value (a file without it
                # failed every record, "no unit in 'LE'", instead of being refused).
                yield from _expr_roots(value.unit.from_path, own)
        elif isinstance(value, list):
            for template in value:
                if isinstance(template, str):
                    yield from _expr_roots(template, False)
                    continue
                for name, inner in template.items():
                    if name == CONDITION_KEY:
                        yield from _expr_roots(inner, False)
                    else:
                        yield from visit(inner, needed)

    yield from visit(spec.key, True)
    if spec.version.from_:
        yield from _expr_roots(spec.version.from_, True)
    if spec.timestamp is not None:
        # Needed unless optional or defaulted, like a field (a file without it failed
        # every record, "timestamp [missing_field]", instead of being refused).
        yield from visit(spec.timestamp, True)
    for value in spec.fields.values():
        yield from visit(value, True)


def _expr_roots(path: str, needed: bool) -> Iterable[tuple[str, bool]]:
    if not path:
        # An empty template condition is none (compile_object): it reads nothing (JMESPath
        # refused it, and the landscape failed to load with a traceback).
        return
    if is_simple_path(path):
        yield path_segments(path)[0], needed
        return

    # A JMESPath expression: every field name it mentions may be a root (over-approximation),
    # and none is required, since JMESPath yields null for what is absent.
    def walk(node: Any) -> Iterable[tuple[str, bool]]:
        if isinstance(node, dict):
            if node.get("type") == "field":
                yield str(node["value"]), False
            for child in node.get("children", []):
                yield from walk(child)

    yield from walk(jmespath.compile(path).parsed)
