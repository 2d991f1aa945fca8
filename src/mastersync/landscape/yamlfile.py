"""YAML with YAML 1.2 booleans and a line number for every key path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans: 'NO' stays Norway, 'Y' stays 'Y'."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class YamlError(Exception):
    """A YAML file that cannot be read; the message names file, line and column."""


@dataclass
class YamlDocument:
    """A parsed YAML document and where each key path sits in its file."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the longest prefix of ``loc`` present in the file."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def _walk(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], loader: _Loader, errors: list[str], path: Path
) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            here = (*loc, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                errors.append(f"{path}:{line}: duplicate key {key!r} (first at line {seen[key]})")
            seen[key] = line
            lines[here] = line
            _walk(value_node, here, lines, loader, errors, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(child, (*loc, i), lines, loader, errors, path)


def read_yaml(path: Path) -> YamlDocument:
    """Parse a YAML file, recording line numbers; syntax errors name line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        # Typically a file saved by an editor in cp1252 or Latin-1: name the byte and its
        # line, so it can be found and the file saved again as UTF-8.
        line = exc.object.count(b"\n", 0, exc.start) + 1
        byte = exc.object[exc.start]
        raise YamlError(
            f"{path}:{line}: not UTF-8 (byte 0x{byte:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlError(f"{path}: the file is empty")
        lines: dict[Loc, int] = {}
        errors: list[str] = []
        _walk(node, (), lines, loader, errors, path)
        if errors:
            raise YamlError("\n".join(errors))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        hint = ""
        if exc.problem and (
            "mapping values are not allowed" in exc.problem or "expected <block end>" in exc.problem
        ):
            # The usual cause: a key indented more or less than the keys beside it.
            hint = " (check this line's indentation against the lines above it)"
        raise YamlError(f"{where}: {exc.problem}{hint}") from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, lines)
