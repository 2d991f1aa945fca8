"""Source paths: plain dotted keys read directly, anything richer through JMESPath."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from mastersync.domain.problems import ConfigError

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode


class _Missing:
    """The source record has no such key (as opposed to a key holding null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Getter = Callable[[Mapping[str, Any]], Any]

_SEGMENT = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")'
_SIMPLE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*$")
_SPLIT = re.compile(rf"{_SEGMENT}")


def is_simple_path(path: str) -> bool:
    """True for plain dotted keys, which are read without JMESPath."""
    return _SIMPLE.match(path) is not None


def path_segments(path: str) -> list[str]:
    """The keys of a simple path, quoted ones decoded as JMESPath does (JSON strings)."""
    return [json.loads(seg) if seg.startswith('"') else seg for seg in _SPLIT.findall(path)]


def compile_path(path: str) -> Getter:
    """Compile a source path once; plain keys skip the JMESPath interpreter (hot path)."""
    if _SIMPLE.match(path):
        keys = path_segments(path)
        if len(keys) == 1:
            key = keys[0]
            return lambda rec: rec.get(key, MISSING)

        def nested(rec: Mapping[str, Any]) -> Any:
            cur: Any = rec
            for k in keys:
                if not isinstance(cur, Mapping) or k not in cur:
                    return MISSING
                cur = cur[k]
            return cur

        return nested
    try:
        expr = jmespath.compile(path)
    except JMESPathError as exc:
        hint = ""
        if " " in path and '"' not in path:
            hint = " (keys with spaces or dashes need double quotes: '\"Item No\"')"
        raise ConfigError(f"invalid path {path!r}: {str(exc).splitlines()[0]}{hint}") from None
    return expr.search


def root_fields(text: str) -> set[str]:
    """The keys of the record itself a path or condition reads (not those of the values
    under them): what a typo check can compare with the fields a record has."""
    return {chain[0] for chain in _root_chains(text)}


def field_chains(text: str) -> set[str]:
    """The dotted chains of keys from the record itself a path or condition reads
    (``credit_limit.amount``), where plain keys lead all the way: what a typo check can
    follow into nested fields. Indexes and projections end a chain."""
    return {".".join(chain) for chain in _root_chains(text)}


def _root_chains(text: str) -> list[list[str]]:
    """The runs of plain keys a path or condition reads from the record itself, each from
    its first key on (a bare key is a run of one)."""
    if _SIMPLE.match(text):
        return [path_segments(text)]
    try:
        tree = jmespath.compile(text).parsed
    except JMESPathError:
        return []  # compiling it reports the error
    found: list[list[str]] = []

    def keys(node: Any) -> list[str]:
        """The plain keys a node starts with (a subexpression's leading fields)."""
        if node.get("type") == "field":
            return [node["value"]]
        if node.get("type") != "subexpression":
            return []
        run: list[str] = []
        for child in node.get("children", []):
            more = keys(child) if isinstance(child, dict) else []
            if not more:
                break
            run += more
            if child.get("type") != "field":
                break  # a nested subexpression's run may end inside it
        return run

    def walk(node: Any, at_root: bool) -> None:
        if not isinstance(node, dict):
            return  # a slice's bounds are numbers or None, not nodes
        kind, children = node.get("type"), node.get("children", [])
        if at_root and kind in ("field", "subexpression") and (run := keys(node)):
            found.append(run)
        elif kind in _LEFT_AT_CURRENT:
            # The left side reads the current node; the rest reads what it gives.
            if children:
                walk(children[0], at_root)
        elif kind != "expref":  # an expref is applied to each element by its function
            for child in children:  # comparisons, and/or/not, arguments, multi-selects
                walk(child, at_root)

    try:
        walk(tree, True)
    except Exception:  # a tree shape not foreseen: no typo check, never a refused landscape
        return []
    return found


_LEFT_AT_CURRENT = frozenset(
    {
        "subexpression",
        "pipe",
        "index_expression",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
    }
)


def truthy(value: Any) -> bool:
    """JMESPath's truth: null, false and empty strings, lists and objects are false; every
    number is true, 0 included (Python's ``0 == False`` must not decide it)."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


class ConditionFailed(ValueError):
    """A condition that cannot be evaluated on a record (neither true nor false)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_ORDERING: Final = frozenset({"lt", "lte", "gt", "gte"})


def _as_number(value: Any, other: Any) -> Any:
    """Decimal text ordered against a number, as that number (else ``value`` as it is)."""
    if (
        isinstance(value, str)
        and isinstance(other, int | float)
        and not isinstance(other, bool)
        and _DECIMAL.fullmatch(value.strip())
    ):
        return float(value)
    return value


_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class _Interpreter(TreeInterpreter):
    """JMESPath as specified, except that an ordering comparison of decimal text with a
    number compares numbers: amounts are exact text in records ("2.50"), and
    ``list_price > `10` `` (or ``credit_limit.amount``, or inside a list) means the amount.
    Equality is left as JMESPath has it (``list_price == '2.5'`` compares text)."""

    def visit_comparator(self, node: _TreeNode, value: Any) -> Any:
        if node["value"] not in _ORDERING:
            return super().visit_comparator(node, value)
        left = self.visit(node["children"][0], value)
        right = self.visit(node["children"][1], value)
        left, right = _as_number(left, right), _as_number(right, left)
        comparable = (int, float, str)
        if not (
            isinstance(left, comparable)
            and isinstance(right, comparable)
            and not isinstance(left, bool)
            and not isinstance(right, bool)
        ):
            return None
        return self.COMPARATOR_FUNC[node["value"]](left, right)


def compile_condition(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a JMESPath condition; it holds when the expression is truthy."""
    try:
        expr = jmespath.compile(text)
    except JMESPathError as exc:
        raise ConfigError(f"invalid condition {text!r}: {str(exc).splitlines()[0]}") from None
    parsed, interpreter = expr.parsed, _Interpreter()

    def holds(rec: Mapping[str, Any]) -> bool:
        try:
            value = interpreter.visit(parsed, rec)
        except JMESPathError:
            return False  # e.g. contains(null, ...): the condition cannot hold
        except TypeError as exc:
            # Ordering text against a number ('2.50' > `1`): neither true nor false, and
            # taken as false a filter would skip or deactivate records without a word.
            raise ConditionFailed(
                f"condition {text!r} cannot be evaluated on this record: {exc} (write "
                "to_number(field) to compare text as a number)"
            ) from None
        return truthy(value)

    return holds
