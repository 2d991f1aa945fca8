"""The canonical schemas released with this package, and a consumer's pinned copies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import orjson

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.canonical.evolution import SchemaError, parse_version, schema_version

# released/<domain>/<MAJOR.MINOR>.schema.json: every version of every domain once shipped,
# as `mastersync schema export` wrote it. Shipped in the wheel (package data).
RELEASED: Traversable = files(__name__).joinpath("released")
SUFFIX = ".schema.json"

# The $id the export stamps: https://mastersync.dev/schemas/<domain>/<version>.
_ID = re.compile(r"/schemas/(?P<domain>[^/]+)/(?P<version>[^/]+)$")


class SchemaFileError(ValueError):
    """A schema file that cannot be used; the message names the file, domain and field."""


@dataclass(frozen=True)
class SchemaFile:
    """One domain's exported schema as read from a file."""

    domain: str
    version: str
    schema: dict[str, Any]
    source: str  # the file, as shown in messages


def _parse(data: bytes, source: str, domain: str) -> SchemaFile:
    """A schema file's content, checked to be an exported schema of that domain."""
    try:
        schema = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SchemaFileError(f"{source} ({domain}): not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise SchemaFileError(
            f"{source} ({domain}): not a JSON Schema (a {type(schema).__name__}, not an object)"
        )
    try:
        version = schema_version(schema)
    except SchemaError as exc:
        raise SchemaFileError(f"{source} ({domain}): {exc}") from None
    found = _ID.search(str(schema.get("$id", "")))
    if found and found["domain"] != domain:
        raise SchemaFileError(
            f"{source} ({domain}): $id {schema['$id']!r} is the {found['domain']!r} schema"
        )
    return SchemaFile(domain, version, schema, source)


def released_versions(domain: str) -> list[str]:
    """The versions of a domain's schema released with this package, oldest first."""
    folder = RELEASED.joinpath(domain)
    if not folder.is_dir():
        return []
    names = [e.name[: -len(SUFFIX)] for e in folder.iterdir() if e.name.endswith(SUFFIX)]
    for name in names:
        parse_version(name, f"{folder.joinpath(name + SUFFIX)} (file name)")
    return sorted(names, key=parse_version)


def released(domain: str, version: str) -> SchemaFile:
    """A domain's schema as released at a version (a SchemaFileError if it never was)."""
    path = RELEASED.joinpath(domain, f"{version}{SUFFIX}")
    if not path.is_file():
        raise SchemaFileError(f"{path} ({domain}): no released schema for version {version}")
    found = _parse(path.read_bytes(), str(path), domain)
    if found.version != version:
        raise SchemaFileError(
            f"{path} ({domain}): x-schema-version is {found.version!r}, the file name says "
            f"{version!r}"
        )
    return found


def latest_released(domain: str) -> SchemaFile | None:
    """A domain's most recently released schema, if any was."""
    versions = released_versions(domain)
    return released(domain, versions[-1]) if versions else None


def read_pinned(folder: Path, domain: str | None = None) -> dict[str, SchemaFile]:
    """The <domain>.schema.json files `schema export --out` wrote to a folder, by domain."""
    if not folder.exists():
        raise SchemaFileError(f"no folder {folder}")
    if not folder.is_dir():
        raise SchemaFileError(f"{folder} is a file; give the folder `schema export --out` wrote")
    if domain is not None:
        paths = [folder / f"{domain}{SUFFIX}"]
        if not paths[0].is_file():
            raise SchemaFileError(f"{folder} has no {paths[0].name} ({domain})")
    else:
        paths = sorted(folder.glob(f"*{SUFFIX}"))
        if not paths:
            raise SchemaFileError(
                f"{folder} holds no <domain>{SUFFIX} files (`mastersync schema export --out "
                f"{folder}` writes them)"
            )
    pinned: dict[str, SchemaFile] = {}
    for path in paths:
        name = path.name[: -len(SUFFIX)]
        if name not in DOMAINS:
            raise SchemaFileError(
                f"{path}: no domain {name!r} (known: {', '.join(DOMAINS)}); the files are "
                f"named <domain>{SUFFIX}"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SchemaFileError(f"{path} ({name}): cannot read: {exc.strerror or exc}") from None
        pinned[name] = _parse(data, str(path), name)
    return pinned
