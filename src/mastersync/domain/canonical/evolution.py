"""Schema evolution: what changed between two exported JSON Schemas, what it breaks, which bump."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import reduce
from typing import Any
from urllib.parse import unquote

# What "breaks" means here (the schemas are the ones DomainSpec.json_schema() exports):
#
# * Writers write only what their schema declares: the models refuse unknown fields, so a
#   record never carries a property its schema does not name (an "additionalProperties"
#   schema, a map's values, is a declaration; an open content model is not).
# * BACKWARD: a reader holding the new schema reads data written under the old one. That
#   reader is the hub itself, whose models refuse properties they do not know: a property
#   the new schema drops breaks backward even where the exported schema is open.
# * FORWARD: a consumer holding the old schema, as published (open or closed), validates
#   data written under the new one. An optional property added to an open object passes;
#   to a closed one it is refused.
#
# Every keyword is compared for what a validator does with it. Where no direction can be
# told (two different patterns, an unsupported keyword changed) the change counts as
# breaking both ways: a false alarm costs a major bump, a missed break costs a consumer.

_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")

# keyword -> (family, side, exclusive); the families are compared side by side.
_BOUNDS: dict[str, dict[str, tuple[str, str, bool]]] = {
    "string": {
        "minLength": ("length", "min", False),
        "maxLength": ("length", "max", False),
        # Bounds on an amount's text that no pattern expresses (canonical.types): kept as
        # extension keywords, compared as the bounds they are.
        "x-ge": ("amount", "min", False),
        "x-gt": ("amount", "min", True),
        "x-le": ("amount", "max", False),
        "x-lt": ("amount", "max", True),
    },
    "number": {
        "minimum": ("value", "min", False),
        "exclusiveMinimum": ("value", "min", True),
        "maximum": ("value", "max", False),
        "exclusiveMaximum": ("value", "max", True),
    },
    "array": {"minItems": ("size", "min", False), "maxItems": ("size", "max", False)},
    "object": {"minProperties": ("size", "min", False), "maxProperties": ("size", "max", False)},
}
_BOUNDS["integer"] = _BOUNDS["number"]

# Assertions this module does not reason about: any difference in them counts both ways.
_UNSUPPORTED: dict[str, tuple[str, ...]] = {
    "array": ("prefixItems", "contains", "minContains", "maxContains", "unevaluatedItems"),
    "object": (
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
    ),
}
_UNSUPPORTED_ANY = ("not", "if", "then", "else", "$dynamicRef", "$recursiveRef")


class SchemaError(ValueError):
    """A schema that cannot be compared; the message names the keyword's JSON pointer."""


class Rule(StrEnum):
    """The kind of a change between two schemas."""

    PROPERTY_REMOVED = "property removed"
    OPTIONAL_PROPERTY_ADDED = "optional property added"
    REQUIRED_PROPERTY_ADDED = "new required property"
    BECAME_REQUIRED = "property became required"
    BECAME_OPTIONAL = "property became optional"
    TYPE_CHANGED = "type changed"
    TYPE_NARROWED = "type narrowed"
    TYPE_WIDENED = "type widened"
    ENUM_VALUE_REMOVED = "enum value removed"
    ENUM_VALUE_ADDED = "enum value added"
    ENUM_INTRODUCED = "values restricted to an enum"
    ENUM_DROPPED = "enum dropped"
    PATTERN_TIGHTENED = "pattern tightened"
    PATTERN_LOOSENED = "pattern loosened"
    PATTERN_CHANGED = "pattern changed"
    FORMAT_ADDED = "format added"
    FORMAT_REMOVED = "format removed"
    FORMAT_CHANGED = "format changed"
    BOUND_TIGHTENED = "bound tightened"
    BOUND_LOOSENED = "bound loosened"
    BOUND_CHANGED = "bound changed"
    CONTENT_MODEL_OPENED = "content model opened"
    CONTENT_MODEL_CLOSED = "content model closed"
    EXTRA_PROPERTIES_ALLOWED = "extra properties allowed"
    EXTRA_PROPERTIES_DROPPED = "extra properties dropped"
    ALTERNATIVE_ADDED = "alternative added"
    ALTERNATIVE_REMOVED = "alternative removed"
    KEYWORD_CHANGED = "keyword changed"


@dataclass(frozen=True)
class Change:
    """One difference between two schemas: where, what, and which compatibility it breaks."""

    path: str  # "pack_levels[*].quantity"; "" for the record itself
    rule: Rule
    detail: str
    breaks_backward: bool
    breaks_forward: bool

    @property
    def field(self) -> str:
        """The path as shown to people ("(record)" for the record itself)."""
        return self.path or "(record)"

    @property
    def breaking(self) -> bool:
        """Whether it breaks either compatibility."""
        return self.breaks_backward or self.breaks_forward

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON-ready data."""
        return {
            "path": self.path,
            "rule": self.rule.value,
            "detail": self.detail,
            "breaks_backward": self.breaks_backward,
            "breaks_forward": self.breaks_forward,
        }


class Bump(StrEnum):
    """A step of a MAJOR.MINOR version, smallest first."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        """Its order: none < minor < major."""
        return list(Bump).index(self)


def parse_version(text: object, where: str = "x-schema-version") -> tuple[int, int]:
    """A MAJOR.MINOR version as two numbers; a SchemaError naming where it was read."""
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise SchemaError(f"{where}: {text!r} is not a MAJOR.MINOR version such as '1.0'")
    return int(parts[0]), int(parts[1])


def schema_version(schema: Mapping[str, Any]) -> str:
    """The version an exported schema is stamped with (its x-schema-version)."""
    if "x-schema-version" not in schema:
        raise SchemaError("x-schema-version: missing (not a schema `schema export` wrote?)")
    version = schema["x-schema-version"]
    parse_version(version)
    return str(version)


def declared_bump(old_version: str, new_version: str) -> Bump | None:
    """The bump from one version to another; None when the version went down."""
    old, new = parse_version(old_version), parse_version(new_version)
    if new[0] > old[0]:
        return Bump.MAJOR
    if new[0] == old[0] and new[1] > old[1]:
        return Bump.MINOR
    return Bump.NONE if new == old else None


def needed_bump(changes: Iterable[Change]) -> Bump:
    """Major for anything breaking either way, minor for compatible changes, else none."""
    needed = Bump.NONE
    for change in changes:
        if change.breaking:
            return Bump.MAJOR
        needed = Bump.MINOR
    return needed


@dataclass(frozen=True)
class Verdict:
    """The bump the changes need and whether the declared versions make it."""

    old_version: str
    new_version: str
    needed: Bump
    declared: Bump | None  # None: the version went down

    @property
    def respected(self) -> bool:
        """Whether the declared bump is at least the needed one (and never a step down)."""
        return self.declared is not None and self.declared.rank >= self.needed.rank

    @property
    def suggested(self) -> str:
        """The smallest version after the old one that makes the needed bump."""
        major, minor = parse_version(self.old_version)
        if self.needed is Bump.MAJOR:
            return f"{major + 1}.0"
        if self.needed is Bump.MINOR:
            return f"{major}.{minor + 1}"
        return self.old_version

    def describe(self) -> str:
        """One line for people: what is needed and whether the versions make it."""
        step = f"{self.old_version} -> {self.new_version}"
        if self.declared is None:
            return f"the version went down ({step}); needs {self.suggested} or later"
        if self.needed is Bump.NONE and self.declared is Bump.NONE:
            return f"no bump needed: {self.new_version} stays"
        if self.needed is Bump.NONE:
            return f"no bump needed; {step} is allowed"
        if self.respected:
            return f"needs a {self.needed} bump: {step} makes it"
        return (
            f"needs a {self.needed} bump to {self.suggested}, "
            f"but the version is {self.new_version} (declared {self.declared})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "needed": self.needed.value,
            "declared": self.declared.value if self.declared else "down",
            "suggested": self.suggested,
            "respected": self.respected,
        }


def verdict(changes: Iterable[Change], old_version: str, new_version: str) -> Verdict:
    """The verdict on going from old_version to new_version with these changes."""
    return Verdict(
        old_version, new_version, needed_bump(changes), declared_bump(old_version, new_version)
    )


@dataclass(frozen=True)
class Evolution:
    """Two versions of one schema compared: the changes and the verdict."""

    changes: tuple[Change, ...]
    verdict: Verdict

    @property
    def breaks_backward(self) -> bool:
        """Whether a reader of the new schema may fail on data written under the old one."""
        return any(c.breaks_backward for c in self.changes)

    @property
    def breaks_forward(self) -> bool:
        """Whether a consumer holding the old schema may fail on data written under the new."""
        return any(c.breaks_forward for c in self.changes)


def evolve(old: Mapping[str, Any], new: Mapping[str, Any]) -> Evolution:
    """Compare two exported schemas and judge their declared versions."""
    changes = compare(old, new)
    return Evolution(tuple(changes), verdict(changes, schema_version(old), schema_version(new)))


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The changes from the old schema to the new one, in the order their paths appear."""
    sides = _Side(old), _Side(new)
    for side in sides:
        side.check()
    comparer = _Comparer(*sides)
    comparer.nodes((_At(old, ""),), (_At(new, ""),), "")
    # A field's node is often reached twice (a number is an integer branch too, an overlay
    # joins its field): the same finding once.
    return list(dict.fromkeys(comparer.changes))


# --- flattening: a node, its $ref, anyOf and allOf as alternatives per JSON type -------------


@dataclass(frozen=True)
class _At:
    """A schema node and its JSON pointer in its document (refs resolve to one pointer)."""

    node: Any
    where: str


@dataclass(frozen=True)
class _Bound:
    value: Decimal
    exclusive: bool
    text: str  # as the schema wrote it ("exclusiveMinimum 0")

    def normal(self, json_type: str, side: str) -> tuple[Decimal, bool]:
        """For integers an exclusive or fractional bound is the whole number it admits."""
        if json_type != "integer":
            return self.value, self.exclusive
        if side == "min":
            edge = math.floor(self.value) + 1 if self.exclusive else math.ceil(self.value)
        else:
            edge = math.ceil(self.value) - 1 if self.exclusive else math.floor(self.value)
        return Decimal(edge), False


def _stricter(a: _Bound, b: _Bound, json_type: str, side: str) -> int:
    """1 if a admits less than b, -1 if more, 0 if the same."""
    (av, ax), (bv, bx) = a.normal(json_type, side), b.normal(json_type, side)
    if av == bv:
        return (ax > bx) - (ax < bx)
    return 1 if (av > bv) == (side == "min") else -1


@dataclass(frozen=True)
class _Branch:
    """What one alternative of a node asks of a value of one JSON type."""

    label: str | None = None  # the $defs entry it came from, to pair alternatives
    enum: frozenset[str] | None = None  # canonical JSON texts; None: any value
    bounds: Mapping[tuple[str, str], _Bound] = dataclasses.field(default_factory=dict)
    multiple_of: frozenset[Decimal] = frozenset()
    patterns: frozenset[str] = frozenset()
    formats: frozenset[str] = frozenset()
    unique: bool = False
    items: tuple[_At, ...] = ()  # all must hold; none: anything
    properties: Mapping[str, tuple[_At, ...]] = dataclasses.field(default_factory=dict)
    required: frozenset[str] = frozenset()
    additional: bool | tuple[_At, ...] = True  # True: open, False: closed, else a schema
    other: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def join(self, other: _Branch, json_type: str) -> _Branch:
        """Both branches at once (allOf): every constraint of each."""
        bounds = dict(self.bounds)
        for key, bound in other.bounds.items():
            mine = bounds.get(key)
            if mine is None or _stricter(bound, mine, json_type, key[1]) > 0:
                bounds[key] = bound
        properties = dict(self.properties)
        for name, subs in other.properties.items():
            properties[name] = properties.get(name, ()) + subs
        # Approximate: additionalProperties sees only its own sibling "properties", but the
        # overlays the export adds only constrain properties the model already declares.
        additional: bool | tuple[_At, ...]
        if self.additional is False or other.additional is False:
            additional = False
        elif isinstance(self.additional, tuple) and isinstance(other.additional, tuple):
            additional = self.additional + other.additional
        else:
            additional = self.additional if isinstance(self.additional, tuple) else other.additional
        others = dict(self.other)
        for keyword, texts in other.other.items():
            others[keyword] = others.get(keyword, frozenset()) | texts
        return _Branch(
            label=self.label or other.label,
            enum=_both(self.enum, other.enum),
            bounds=bounds,
            multiple_of=self.multiple_of | other.multiple_of,
            patterns=self.patterns | other.patterns,
            formats=self.formats | other.formats,
            unique=self.unique or other.unique,
            items=self.items + other.items,
            properties=properties,
            required=self.required | other.required,
            additional=additional,
            other=others,
        )


def _both(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The values two enums both admit (None: any value)."""
    if a is None or b is None:
        return b if a is None else a
    return a & b


# JSON type -> the alternatives a node allows for values of that type (absent: refused).
_Union = dict[str, list[_Branch]]


def _anything() -> _Union:
    return {t: [_Branch()] for t in _TYPES}


def _join(a: _Union, b: _Union) -> _Union:
    out: _Union = {}
    for t in _TYPES:
        if t in a and t in b:
            # Two enums with no value in common admit nothing of this type.
            both = [x.join(y, t) for x in a[t] for y in b[t]]
            if kept := [branch for branch in both if branch.enum != frozenset()]:
                out[t] = kept
    return out


def _either(unions: Sequence[_Union]) -> _Union:
    out: _Union = {}
    for union in unions:
        for t, branches in union.items():
            out.setdefault(t, []).extend(branches)
    return {t: out[t] for t in _TYPES if t in out}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _text(value: Any) -> str:
    """One spelling of a JSON value (1 and 1.0 are one number)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _pointer(where: str, key: str | int) -> str:
    return f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}"


class _Side:
    """One of the two documents: resolves its $refs and flattens its nodes."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        if not isinstance(root, Mapping):
            raise SchemaError(f"the schema must be a JSON object, got {type(root).__name__}")
        self.root = root
        self.base = str(root.get("$id", ""))
        self.resolving: list[str] = []

    def resolve(self, ref: Any, where: str) -> _At:
        """The node a $ref names, at its own pointer."""
        if not isinstance(ref, str):
            raise SchemaError(f"{where}/$ref: {ref!r} is not a reference")
        # The document's own $id followed by a fragment is a local reference too.
        local = ref[len(self.base) :] if self.base and ref.startswith(self.base) else ref
        if not local.startswith("#"):
            raise SchemaError(f"{where}/$ref: {ref!r} is outside this schema (not supported)")
        node: Any = self.root
        pointer = ""
        for raw in filter(None, unquote(local[1:]).split("/")):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"{where}/$ref: {ref!r} does not resolve")
            pointer = _pointer(pointer, part)
        return _At(node, pointer)

    def check(self) -> None:
        """Flatten every node the root reaches: a broken one is an error even where the
        other schema has nothing to compare it with (a property only one side has)."""
        seen: set[str] = set()
        todo = [_At(self.root, "")]
        while todo:
            at = todo.pop()
            if at.where in seen:
                continue
            seen.add(at.where)
            for branches in self.union(at).values():
                for branch in branches:
                    todo.extend(branch.items)
                    for subs in branch.properties.values():
                        todo.extend(subs)
                    if isinstance(branch.additional, tuple):
                        todo.extend(branch.additional)

    def flatten(self, nodes: Sequence[_At]) -> _Union:
        """What all of the nodes allow together, per JSON type."""
        return reduce(_join, (self.union(n) for n in nodes), _anything())

    def union(self, at: _At) -> _Union:
        """What one node allows, per JSON type."""
        node = at.node
        if node is True:
            return _anything()
        if node is False:
            return {}
        if not isinstance(node, Mapping):
            where = at.where or "/"
            raise SchemaError(f"{where}: a schema is an object or a boolean, got {node!r}")
        parts = [self._own(node, at.where)]
        if "$ref" in node:
            target = self.resolve(node["$ref"], at.where)
            if target.where in self.resolving:
                raise SchemaError(f"{at.where}/$ref: {node['$ref']!r} refers to itself")
            self.resolving.append(target.where)
            try:
                resolved = self.union(target)
            finally:
                self.resolving.pop()
            label = target.where.rsplit("/", 1)[-1]
            parts.append(
                {t: [replace(b, label=b.label or label) for b in bs] for t, bs in resolved.items()}
            )
        for key in ("anyOf", "oneOf"):  # oneOf's exclusivity is not checked
            if key in node:
                subs = self._list(node[key], _pointer(at.where, key))
                parts.append(_either([self.union(s) for s in subs]))
        if "allOf" in node:
            subs = self._list(node["allOf"], _pointer(at.where, "allOf"))
            parts.extend(self.union(s) for s in subs)
        return reduce(_join, parts)

    @staticmethod
    def _list(value: Any, where: str) -> list[_At]:
        if not isinstance(value, list) or not value:
            raise SchemaError(f"{where}: must be a non-empty list of schemas")
        return [_At(v, _pointer(where, i)) for i, v in enumerate(value)]

    def _own(self, node: Mapping[str, Any], where: str) -> _Union:
        """What a node's own keywords allow (not its $ref, anyOf or allOf)."""
        types = set(_TYPES)
        if "type" in node:
            declared = node["type"] if isinstance(node["type"], list) else [node["type"]]
            unknown = [t for t in declared if t not in _TYPES]
            if unknown:
                raise SchemaError(f"{where}/type: unknown type {unknown[0]!r}")
            # Every integer is a number: "number" admits both kinds here.
            types = set(declared) | ({"integer"} if "number" in declared else set())
        values: dict[str, set[str]] | None = None
        if "const" in node or "enum" in node:
            listed = [node["const"]] if "const" in node else node["enum"]
            if not isinstance(listed, list):
                raise SchemaError(f"{where}/enum: must be a list")
            values = {}
            for value in listed:
                values.setdefault(_json_type(value), set()).add(_text(value))
            types &= set(values)
        union: _Union = {}
        for t in _TYPES:
            if t in types:
                enum = None if values is None else frozenset(values[t])
                # One null; both booleans: a list of them restricts nothing.
                if t == "null" or (t == "boolean" and enum is not None and len(enum) == 2):
                    enum = None
                union[t] = [self._branch(node, t, where, enum)]
        return union

    def _branch(
        self, node: Mapping[str, Any], t: str, where: str, enum: frozenset[str] | None
    ) -> _Branch:
        bounds: dict[tuple[str, str], _Bound] = {}
        for keyword, (family, side, exclusive) in _BOUNDS.get(t, {}).items():
            if keyword not in node:
                continue
            value = node[keyword]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaError(f"{_pointer(where, keyword)}: a bound must be a number")
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                raise SchemaError(f"{_pointer(where, keyword)}: {value!r} is no number") from None
            bound = _Bound(number, exclusive, f"{keyword} {value}")
            mine = bounds.get((family, side))
            if mine is None or _stricter(bound, mine, t, side) > 0:
                bounds[(family, side)] = bound
        other = {
            k: frozenset({_text(node[k])})
            for k in (*_UNSUPPORTED_ANY, *_UNSUPPORTED.get(t, ()))
            if k in node and not (k == "unevaluatedProperties" and node[k] is False)
        }
        branch = _Branch(enum=enum, bounds=bounds, other=other)
        if t == "string":
            return replace(
                branch,
                patterns=self._strings(node, "pattern", where),
                formats=self._strings(node, "format", where),
            )
        if t in ("integer", "number") and "multipleOf" in node:
            step = node["multipleOf"]
            if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
                raise SchemaError(f"{_pointer(where, 'multipleOf')}: must be a number above 0")
            return replace(branch, multiple_of=frozenset({Decimal(str(step))}))
        if t == "array":
            return self._array(branch, node, where)
        if t == "object":
            return self._object(branch, node, where)
        return branch

    @staticmethod
    def _strings(node: Mapping[str, Any], keyword: str, where: str) -> frozenset[str]:
        if keyword not in node:
            return frozenset()
        if not isinstance(node[keyword], str):
            raise SchemaError(f"{_pointer(where, keyword)}: must be a string")
        return frozenset({node[keyword]})

    @staticmethod
    def _array(branch: _Branch, node: Mapping[str, Any], where: str) -> _Branch:
        items: tuple[_At, ...] = ()
        other = dict(branch.other)
        if isinstance(node.get("items"), list):  # draft 4's tuple form: not reasoned about
            other["items"] = frozenset({_text(node["items"])})
        elif "items" in node:
            items = (_At(node["items"], _pointer(where, "items")),)
        return replace(branch, items=items, unique=node.get("uniqueItems") is True, other=other)

    @staticmethod
    def _object(branch: _Branch, node: Mapping[str, Any], where: str) -> _Branch:
        properties = node.get("properties", {})
        required = node.get("required", [])
        if not isinstance(properties, Mapping):
            raise SchemaError(f"{_pointer(where, 'properties')}: must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError(f"{_pointer(where, 'required')}: must be a list of names")
        at = _pointer(where, "properties")
        extra = node.get("additionalProperties", True)
        additional: bool | tuple[_At, ...]
        if extra is False or node.get("unevaluatedProperties") is False:
            additional = False
        elif extra is True or extra == {}:
            additional = True
        else:
            additional = (_At(extra, _pointer(where, "additionalProperties")),)
        return replace(
            branch,
            properties={name: (_At(sub, _pointer(at, name)),) for name, sub in properties.items()},
            required=frozenset(required),
            additional=additional,
        )


# --- comparing ------------------------------------------------------------------------------


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _types_text(types: Iterable[str]) -> str:
    shown = set(types)
    if {"integer", "number"} <= shown:
        shown.discard("integer")  # every integer is a number
    return " | ".join(t for t in _TYPES if t in shown) or "nothing"


def _values_text(texts: Iterable[str]) -> str:
    return ", ".join(sorted(texts))


class _Comparer:
    def __init__(self, old: _Side, new: _Side) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        # Pairs of node lists being compared: a recursive model stops where it repeats.
        self.active: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()

    def add(self, path: str, rule: Rule, detail: str, backward: bool, forward: bool) -> None:
        self.changes.append(Change(path, rule, detail, backward, forward))

    def probe(self, old: Sequence[_At], new: Sequence[_At]) -> list[Change]:
        """The changes between two node lists, not recorded."""
        kept, self.changes = self.changes, []
        try:
            self.nodes(old, new, "")
            return self.changes
        finally:
            self.changes = kept

    def nodes(self, old: Sequence[_At], new: Sequence[_At], path: str) -> None:
        key = (tuple(a.where for a in old), tuple(a.where for a in new))
        if key in self.active:
            return
        self.active.add(key)
        try:
            self.unions(self.old.flatten(old), self.new.flatten(new), path)
        finally:
            self.active.discard(key)

    def unions(self, old: _Union, new: _Union, path: str) -> None:
        removed = [t for t in _TYPES if t in old and t not in new]
        added = [t for t in _TYPES if t in new and t not in old]
        if removed and added:
            self.add(
                path, Rule.TYPE_CHANGED, f"{_types_text(old)} -> {_types_text(new)}", True, True
            )
        elif removed:
            what = "non-integer numbers" if removed == ["number"] else _types_text(removed)
            self.add(path, Rule.TYPE_NARROWED, f"no longer takes {what}", True, False)
        elif added:
            what = "non-integer numbers" if added == ["number"] else _types_text(added)
            self.add(path, Rule.TYPE_WIDENED, f"now takes {what} too", False, True)
        for t in _TYPES:
            if t in old and t in new:
                self.alternatives(t, old[t], new[t], path)

    def alternatives(self, t: str, old: list[_Branch], new: list[_Branch], path: str) -> None:
        if len(old) == 1 and len(new) == 1:
            self.branch(t, old[0], new[0], path)
            return
        # Several alternatives of one type: paired by the $defs entry they came from, the
        # rest in order (a heuristic: an old one may be covered by another new one).
        rest_new = list(new)
        pairs: list[tuple[_Branch, _Branch]] = []
        rest_old: list[_Branch] = []
        for branch in old:
            twin = next((b for b in rest_new if b.label and b.label == branch.label), None)
            if twin is None:
                rest_old.append(branch)
            else:
                rest_new.remove(twin)
                pairs.append((branch, twin))
        while rest_old and rest_new:
            pairs.append((rest_old.pop(0), rest_new.pop(0)))
        for a, b in pairs:
            self.branch(t, a, b, path)
        for branch in rest_old:
            name = branch.label or t
            self.add(path, Rule.ALTERNATIVE_REMOVED, f"{name} alternative removed", True, False)
        for branch in rest_new:
            name = branch.label or t
            self.add(path, Rule.ALTERNATIVE_ADDED, f"{name} alternative added", False, True)

    def branch(self, t: str, old: _Branch, new: _Branch, path: str) -> None:
        self.enums(old, new, path)
        self.bounds(t, old, new, path)
        self.steps(old, new, path)
        self.sets(path, old.patterns, new.patterns, "pattern")
        self.sets(path, old.formats, new.formats, "format")
        if old.unique != new.unique:
            rule = Rule.BOUND_TIGHTENED if new.unique else Rule.BOUND_LOOSENED
            detail = f"uniqueItems {old.unique} -> {new.unique}"
            self.add(path, rule, detail, new.unique, old.unique)
        for keyword in sorted(set(old.other) | set(new.other)):
            if old.other.get(keyword) != new.other.get(keyword):
                detail = f"{keyword} changed (not compared: counted as breaking both ways)"
                self.add(path, Rule.KEYWORD_CHANGED, detail, True, True)
        if t == "array":
            self.nodes(old.items, new.items, f"{path}[*]")
        if t == "object":
            self.objects(old, new, path)

    def enums(self, old: _Branch, new: _Branch, path: str) -> None:
        if old.enum == new.enum:
            return
        if old.enum is None and new.enum is not None:
            self.add(path, Rule.ENUM_INTRODUCED, f"only {_values_text(new.enum)}", True, False)
        elif new.enum is None and old.enum is not None:
            self.add(path, Rule.ENUM_DROPPED, f"was only {_values_text(old.enum)}", False, True)
        elif old.enum is not None and new.enum is not None:
            for value in sorted(old.enum - new.enum):
                self.add(path, Rule.ENUM_VALUE_REMOVED, value, True, False)
            for value in sorted(new.enum - old.enum):
                self.add(path, Rule.ENUM_VALUE_ADDED, value, False, True)

    def bounds(self, t: str, old: _Branch, new: _Branch, path: str) -> None:
        for key in [*old.bounds, *(k for k in new.bounds if k not in old.bounds)]:
            was, now = old.bounds.get(key), new.bounds.get(key)
            if was is None and now is not None:
                self.add(path, Rule.BOUND_TIGHTENED, f"{now.text} added", True, False)
            elif now is None and was is not None:
                self.add(path, Rule.BOUND_LOOSENED, f"{was.text} removed", False, True)
            elif was is not None and now is not None:
                order = _stricter(now, was, t, key[1])
                if order > 0:
                    self.add(path, Rule.BOUND_TIGHTENED, f"{was.text} -> {now.text}", True, False)
                elif order < 0:
                    self.add(path, Rule.BOUND_LOOSENED, f"{was.text} -> {now.text}", False, True)

    def steps(self, old: _Branch, new: _Branch, path: str) -> None:
        if old.multiple_of == new.multiple_of:
            return
        # Fewer values pass when each old step divides some new one (6 is a multiple of 3).
        tighter = all(any(n % o == 0 for n in new.multiple_of) for o in old.multiple_of)
        looser = all(any(o % n == 0 for o in old.multiple_of) for n in new.multiple_of)
        was = " and ".join(f"multipleOf {s}" for s in sorted(old.multiple_of)) or "no multipleOf"
        now = " and ".join(f"multipleOf {s}" for s in sorted(new.multiple_of)) or "no multipleOf"
        if tighter and not looser:
            self.add(path, Rule.BOUND_TIGHTENED, f"{was} -> {now}", True, False)
        elif looser and not tighter:
            self.add(path, Rule.BOUND_LOOSENED, f"{was} -> {now}", False, True)
        else:
            self.add(path, Rule.BOUND_CHANGED, f"{was} -> {now}", True, True)

    def sets(self, path: str, old: frozenset[str], new: frozenset[str], keyword: str) -> None:
        """Patterns and formats: each must hold, so more of them admit less."""
        gone = " and ".join(f"'{v}'" for v in sorted(old - new))
        came = " and ".join(f"'{v}'" for v in sorted(new - old))
        tightened, loosened, changed = {
            "pattern": (Rule.PATTERN_TIGHTENED, Rule.PATTERN_LOOSENED, Rule.PATTERN_CHANGED),
            "format": (Rule.FORMAT_ADDED, Rule.FORMAT_REMOVED, Rule.FORMAT_CHANGED),
        }[keyword]
        if gone and came:
            # Which of two regular expressions admits more is not told here: both ways.
            self.add(path, changed, f"{keyword} {gone} -> {came}", True, True)
        elif came:
            self.add(path, tightened, f"{keyword} {came} added", True, False)
        elif gone:
            self.add(path, loosened, f"{keyword} {gone} removed", False, True)

    def objects(self, old: _Branch, new: _Branch, path: str) -> None:
        self.extras(old.additional, new.additional, path)
        names = [*old.properties, *(n for n in new.properties if n not in old.properties)]
        names += sorted((old.required | new.required) - set(names))
        for name in names:
            where = _child(path, name)
            had = name in old.properties or name in old.required
            has = name in new.properties or name in new.required
            was_required, is_required = name in old.required, name in new.required
            if had and not has:
                # The hub reads with its models, which refuse what they do not know, unless
                # the new schema declares extra properties (a map) that take the old value.
                backward = not self.taken_as_extra(old.properties.get(name, ()), new.additional)
                detail = "was required" if was_required else "was optional"
                self.add(where, Rule.PROPERTY_REMOVED, detail, backward, was_required)
            elif has and not had:
                forward = not self.old_reader_takes(new.properties.get(name, ()), old.additional)
                detail = "old readers refuse it" if forward else "old readers take it"
                if is_required:
                    self.add(where, Rule.REQUIRED_PROPERTY_ADDED, detail, True, forward)
                else:
                    self.add(where, Rule.OPTIONAL_PROPERTY_ADDED, detail, False, forward)
            else:
                if is_required and not was_required:
                    self.add(where, Rule.BECAME_REQUIRED, "old data may lack it", True, False)
                elif was_required and not is_required:
                    self.add(where, Rule.BECAME_OPTIONAL, "new data may lack it", False, True)
                self.nodes(old.properties.get(name, ()), new.properties.get(name, ()), where)

    def taken_as_extra(self, old: Sequence[_At], additional: bool | tuple[_At, ...]) -> bool:
        """Whether a new reader takes an old property as one of its declared extras."""
        if not isinstance(additional, tuple):
            return False
        return not any(c.breaks_backward for c in self.probe(old, additional))

    def old_reader_takes(self, new: Sequence[_At], additional: bool | tuple[_At, ...]) -> bool:
        """Whether a consumer holding the old schema takes a property only the new one has."""
        if isinstance(additional, bool):
            return additional
        return not any(c.breaks_forward for c in self.probe(additional, new))

    def extras(self, old: bool | tuple[_At, ...], new: bool | tuple[_At, ...], path: str) -> None:
        if isinstance(old, tuple) and isinstance(new, tuple):
            self.nodes(old, new, _child(path, "*"))
        elif old is True and new is False:
            detail = "undeclared properties refused (data written under either has none)"
            self.add(path, Rule.CONTENT_MODEL_CLOSED, detail, False, False)
        elif old is False and new is True:
            detail = "undeclared properties allowed (data written under either has none)"
            self.add(path, Rule.CONTENT_MODEL_OPENED, detail, False, False)
        elif isinstance(new, tuple):
            # A map's entries: new data may carry them; a closed old reader refuses them.
            self.add(path, Rule.EXTRA_PROPERTIES_ALLOWED, "map entries", False, old is False)
        elif isinstance(old, tuple):
            self.add(path, Rule.EXTRA_PROPERTIES_DROPPED, "map entries", True, False)
