"""Each canonical model's schema is released at its version, and versions follow the changes.

A model changed without bumping its SCHEMA_VERSION, or bumped without its released snapshot,
fails here with what changed and the bump it needs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.canonical.evolution import Evolution, evolve, parse_version
from mastersync.schemas import (
    RELEASED,
    SUFFIX,
    SchemaFileError,
    released,
    released_versions,
)

SOURCE = Path("src/mastersync/schemas/released")


def _listed(evolution: Evolution) -> str:
    lines = []
    for c in evolution.changes:
        broken = [
            w for w, b in (("backward", c.breaks_backward), ("forward", c.breaks_forward)) if b
        ]
        breaks = f" (breaks {' and '.join(broken)})" if broken else ""
        lines.append(f"  {c.field}: {c.rule}: {c.detail}{breaks}")
    return "\n".join(lines)


def _write_hint(name: str, version: str) -> str:
    return f"`mastersync schema export --domain {name} > {SOURCE / name / (version + SUFFIX)}`"


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_the_current_schema_is_released_at_its_version(name: str) -> None:
    spec = DOMAINS[name]
    current = spec.json_schema()
    versions = released_versions(name)
    assert versions, (
        f"{name} {spec.schema_version} has no released schema; write it with "
        f"{_write_hint(name, spec.schema_version)}"
    )
    latest = released(name, versions[-1])
    evolution = evolve(latest.schema, current)
    judged = evolution.verdict
    assert judged.respected, (
        f"the {name} model changed since its released {latest.version} ({latest.source}):\n"
        f"{_listed(evolution)}\n"
        f"that needs a {judged.needed} bump: set SCHEMA_VERSION in "
        f"src/mastersync/domain/canonical/{name}.py to {judged.suggested} (it is "
        f"{spec.schema_version}), then add the snapshot with "
        f"{_write_hint(name, judged.suggested)}"
    )
    assert spec.schema_version in versions, (
        f"{name} {spec.schema_version} ({judged.describe()}) has no released snapshot; "
        f"changes since {latest.version}:\n{_listed(evolution)}\n"
        f"add it with {_write_hint(name, spec.schema_version)}"
    )
    assert current == latest.schema, (
        f"{name} {latest.version}: only annotations (titles, descriptions, defaults) differ "
        f"from {latest.source}; re-export it with {_write_hint(name, latest.version)}"
    )


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_each_release_made_the_bump_its_changes_needed(name: str) -> None:
    """The history too: each released version against the one before it."""
    versions = released_versions(name)
    files = [released(name, v) for v in versions]
    assert [f.version for f in files] == versions
    for before, after in itertools.pairwise(files):
        evolution = evolve(before.schema, after.schema)
        assert evolution.verdict.respected, (
            f"{after.source}: {evolution.verdict.describe()}\n{_listed(evolution)}"
        )


def test_the_released_folder_holds_only_known_domains_and_versioned_files() -> None:
    assert RELEASED.is_dir()
    folders = {entry.name for entry in RELEASED.iterdir() if entry.is_dir()}
    assert folders == set(DOMAINS)
    for folder in RELEASED.iterdir():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            assert entry.name.endswith(SUFFIX), f"{folder.name}/{entry.name}"
            parse_version(entry.name[: -len(SUFFIX)], f"{folder.name}/{entry.name}")


def test_a_version_never_released_is_an_error_naming_the_file_and_domain() -> None:
    with pytest.raises(SchemaFileError, match=r"item/0\.9\.schema\.json \(item\): no released"):
        released("item", "0.9")
