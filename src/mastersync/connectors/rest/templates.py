"""Request templates: paths, query values and bodies filled from one delivery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mastersync.ports.outbound import without_nulls

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


class TemplateError(Exception):
    """A template names a value the delivery does not have."""


def lookup(context: Mapping[str, Any], name: str) -> Any:
    """A dotted name's value in the context (``payload.sku``), or TemplateError."""
    node: Any = context
    for part in name.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            raise TemplateError(f"{{{name}}} has no value for this record")
        node = node[part]
    return node


def fill(template: str, context: Mapping[str, Any], *, encode: bool) -> str:
    """Replace ``{name}`` placeholders; path segments are URL-encoded (``encode``)."""

    def value(match: re.Match[str]) -> str:
        text = str(lookup(context, match.group(1)))
        return quote(text, safe="") if encode else text

    return _PLACEHOLDER.sub(value, template)


def names(template: str) -> set[str]:
    """The values a path or query template names, by their first part (``payload``)."""
    return {m.group(1).split(".")[0] for m in _PLACEHOLDER.finditer(template)}


def body_names(template: Any) -> set[str]:
    """The values a body template names, by their first part (``payload``)."""
    if isinstance(template, str) and template.startswith("$"):
        return {template[1:].split(".")[0]}
    if isinstance(template, Mapping):
        return set().union(*(body_names(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(body_names(v) for v in template))
    return set()


class _LeftOut:
    """A payload field sent as null, in a create's body: left out."""


_LEFT_OUT = _LeftOut()


def _value(context: Mapping[str, Any], name: str, nulls: bool) -> Any:
    """A ``$name``'s value for a body. A payload field sent as null (cleared at the hub) is
    null where ``nulls`` (an update: the consumer clears it), else left out (a create: the
    consumer's default applies); an absent one is still a TemplateError."""
    node: Any = context
    if name.startswith("payload."):
        for part in name.split("."):
            if isinstance(node, Mapping) and part in node and node[part] is None:
                return None if nulls else _LEFT_OUT
            if not isinstance(node, Mapping) or part not in node:
                break  # lookup says which
            node = node[part]
    value = lookup(context, name)
    if not nulls and name.startswith("payload") and isinstance(value, Mapping):
        return without_nulls(value)
    return value


def _body(template: Any, context: Mapping[str, Any], nulls: bool) -> Any:
    if isinstance(template, str) and template.startswith("$"):
        return _value(context, template[1:], nulls)
    if isinstance(template, Mapping):
        filled = {k: _body(v, context, nulls) for k, v in template.items()}
        return {k: v for k, v in filled.items() if v is not _LEFT_OUT}
    if isinstance(template, list):
        filled_items = [_body(v, context, nulls) for v in template]
        return [v for v in filled_items if v is not _LEFT_OUT]
    return template


def body(template: Any, context: Mapping[str, Any], *, nulls: bool = True) -> Any:
    """The request body: ``$payload`` (or ``$name``) strings replaced by their values. A
    payload field sent as null is null in the body where ``nulls`` (an update), else left
    out (a create: never a null there)."""
    filled = _body(template, context, nulls)
    if filled is _LEFT_OUT:
        raise TemplateError(f"{template} is null for this record, and a create sends no null")
    return filled
