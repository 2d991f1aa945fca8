"""Request templates: paths, query values and bodies filled from one delivery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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


def body(template: Any, context: Mapping[str, Any]) -> Any:
    """The request body: ``$payload`` (or ``$name``) strings replaced by their values."""
    if isinstance(template, str) and template.startswith("$"):
        return lookup(context, template[1:])
    if isinstance(template, Mapping):
        return {k: body(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [body(v, context) for v in template]
    return template
