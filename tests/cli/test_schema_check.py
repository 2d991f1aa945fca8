"""`mastersync schema check`: models against released or pinned schemas, verdicts, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mastersync.cli import app
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.canonical.item import Item
from mastersync.domain.canonical.types import Text

runner = CliRunner()


class _ItemWithColour(Item):
    """Item as a developer might change it: one optional field more."""

    colour: Text | None = None


def schema_check(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout alone, and stdout with stderr."""
    result = runner.invoke(app, ["schema", "check", *args])
    return result.exit_code, result.stdout, result.output


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    """A consumer's copies, as `schema export --out` writes them."""
    folder = tmp_path / "pinned"
    result = runner.invoke(app, ["schema", "export", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def _edit(folder: Path, domain: str, **changes: Any) -> Path:
    path = folder / f"{domain}.schema.json"
    schema = json.loads(path.read_text())
    for key, value in changes.items():
        schema[key] = value
    path.write_text(json.dumps(schema))
    return path


def _load(folder: Path, domain: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((folder / f"{domain}.schema.json").read_text())
    return result


def _save(folder: Path, domain: str, schema: dict[str, Any]) -> None:
    (folder / f"{domain}.schema.json").write_text(json.dumps(schema))


def test_the_models_match_the_released_schemas() -> None:
    code, out, _ = schema_check()
    assert code == 0, out
    for name, spec in DOMAINS.items():
        assert f"ok {name}: unchanged; no bump needed: {spec.schema_version} stays" in out


def test_the_models_match_a_fresh_export(pinned: Path) -> None:
    code, out, _ = schema_check("--against", str(pinned))
    assert code == 0, out
    assert out.count("unchanged") == len(DOMAINS)


def test_a_model_changed_without_a_bump_fails_with_the_bump_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = DOMAINS["item"].schema_version
    major, minor = now.split(".")
    bumped = f"{major}.{int(minor) + 1}"
    changed = dataclasses.replace(DOMAINS["item"], model=_ItemWithColour)
    monkeypatch.setitem(DOMAINS, "item", changed)
    code, out, both = schema_check("--domain", "item")
    assert code == 1
    assert "colour" in out
    assert "optional property added: old readers take it" in out
    assert (
        f"fails item: 1 change(s); needs a minor bump to {bumped}, but the version is {now}" in out
    )
    assert f"error: item: {now} -> {now} needs a minor bump (to {bumped})" in both
    monkeypatch.setitem(DOMAINS, "item", dataclasses.replace(changed, schema_version=bumped))
    code, out, _ = schema_check("--domain", "item")
    assert code == 0, out
    assert f"ok item: 1 change(s); needs a minor bump: {now} -> {bumped} makes it" in out


def test_an_additive_change_passes_a_consumer_pinned_to_the_open_1_0(pinned: Path) -> None:
    """item 1.1 added two optional fields: a consumer holding the (open) 1.0 is safe."""
    item = _load(pinned, "item")
    for added in ("supplier_item_name", "supplier_lead_time_days"):
        del item["properties"][added]
    item["x-schema-version"] = "1.0"
    _save(pinned, "item", item)
    code, out, _ = schema_check("--against", str(pinned), "--domain", "item")
    assert code == 0, out
    rows = [line for line in out.splitlines() if "supplier_" in line]
    assert len(rows) == 2
    assert all("optional property added" in r and r.count(" no ") == 2 for r in rows), rows
    now = DOMAINS["item"].schema_version
    assert f"ok item: 2 change(s); needs a minor bump: 1.0 -> {now} makes it" in out


def test_a_consumer_pinned_to_a_closed_schema_breaks_on_an_added_field(pinned: Path) -> None:
    """The exports before the open content model closed every object: such a pinned copy
    refuses the added field, and the check says so and fails."""
    item = _load(pinned, "item")
    del item["properties"]["supplier_item_name"]
    item["additionalProperties"] = False
    item["x-schema-version"] = "1.0"
    _save(pinned, "item", item)
    code, out, both = schema_check("--against", str(pinned), "--domain", "item")
    assert code == 1
    row = next(line for line in out.splitlines() if "supplier_item_name" in line)
    assert "optional property added: old readers refuse it" in row
    assert row.rstrip(" │").endswith("yes")
    assert "content model opened" in out
    assert f"error: item: consumers holding 1.0 ({pinned / 'item.schema.json'}) would break" in both


def test_an_enum_value_the_model_added_breaks_forward_and_needs_a_major_bump(
    pinned: Path,
) -> None:
    customer = _load(pinned, "customer")
    customer["$defs"]["CustomerLifecycle"]["enum"].remove("blocked")
    _save(pinned, "customer", customer)
    code, out, both = schema_check("--against", str(pinned))
    assert code == 1
    row = next(line for line in out.splitlines() if "lifecycle_state" in line)
    assert 'enum value added: "blocked"' in row
    now = DOMAINS["customer"].schema_version
    assert f"needs a major bump to 2.0, but the version is {now} (declared none)" in out
    assert "ok supplier: unchanged" in out  # the other domains are still shown
    assert both.strip().endswith(
        f"error: customer: consumers holding {now} ({pinned / 'customer.schema.json'}) would "
        f"break; customer: {now} -> {now} needs a major bump (to 2.0)"
    )


def test_json_output(pinned: Path) -> None:
    item = _load(pinned, "item")
    item["properties"]["legacy_code"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    _save(pinned, "item", item)
    code, out, _ = schema_check("--against", str(pinned), "--domain", "item", "--json")
    assert code == 1
    report = json.loads(out)
    assert list(report) == ["item"]
    entry = report["item"]
    assert entry["changes"] == [
        {
            "path": "legacy_code",
            "rule": "property removed",
            "detail": "was optional",
            "breaks_backward": True,
            "breaks_forward": False,
        }
    ]
    assert (entry["needed"], entry["declared"], entry["suggested"]) == ("major", "none", "2.0")
    assert (entry["respected"], entry["ok"], entry["breaks_forward"]) == (False, False, False)


def test_only_the_pinned_domains_are_checked(pinned: Path) -> None:
    for path in pinned.iterdir():
        if path.name != "price.schema.json":
            path.unlink()
    code, out, _ = schema_check("--against", str(pinned))
    assert code == 0, out
    now = DOMAINS["price"].schema_version
    assert out.strip().splitlines() == [f"ok price: unchanged; no bump needed: {now} stays"]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_errors_are_one_line_naming_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert (
        _one_error_line(schema_check("--against", str(missing))[2]) == f"error: no folder {missing}"
    )
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    line = _one_error_line(schema_check("--against", str(a_file))[2])
    assert line == f"error: {a_file} is a file; give the folder `schema export --out` wrote"
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_error_line(schema_check("--against", str(empty))[2])
    assert line.startswith(f"error: {empty} holds no <domain>.schema.json files")
    line = _one_error_line(schema_check("--against", str(empty), "--domain", "price")[2])
    assert line == f"error: {empty} has no price.schema.json (price)"
    line = _one_error_line(schema_check("--domain", "widget")[2])
    assert line.startswith("error: unknown domain 'widget'; known: item, customer")


def test_a_file_that_is_not_json_is_one_line_naming_file_and_domain(pinned: Path) -> None:
    path = pinned / "supplier.schema.json"
    path.write_text("{ not json")
    code, _, both = schema_check("--against", str(pinned))
    assert code == 1
    assert _one_error_line(both).startswith(f"error: {path} (supplier): not JSON: ")


def test_a_file_for_an_unknown_domain_is_one_line_naming_it(pinned: Path) -> None:
    path = pinned / "widget.schema.json"
    path.write_text("{}")
    code, _, both = schema_check("--against", str(pinned))
    assert code == 1
    assert _one_error_line(both).startswith(f"error: {path}: no domain 'widget' (known: item, ")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"x-schema-version": None}, "x-schema-version: None is not a MAJOR.MINOR version"),
        ({"x-schema-version": "1"}, "x-schema-version: '1' is not a MAJOR.MINOR version"),
        ({"$id": "https://mastersync.dev/schemas/customer/1.0"}, "$id 'https://mastersync."),
        (
            {"properties": {"gtin": {"$ref": "#/$defs/Gtin"}}},
            "/properties/gtin/$ref: '#/$defs/Gtin' does not resolve",
        ),
    ],
)
def test_a_file_that_is_no_usable_schema_names_file_domain_and_field(
    pinned: Path, edit: dict[str, Any], message: str
) -> None:
    path = _edit(pinned, "item", **edit)
    code, _, both = schema_check("--against", str(pinned))
    assert code == 1
    line = _one_error_line(both)
    assert line.startswith(f"error: {path} (item): "), line
    assert message in line


def test_a_missing_version_is_named(pinned: Path) -> None:
    item = _load(pinned, "item")
    del item["x-schema-version"]
    _save(pinned, "item", item)
    _, _, both = schema_check("--against", str(pinned))
    line = _one_error_line(both)
    assert line.startswith(
        f"error: {pinned / 'item.schema.json'} (item): x-schema-version: missing"
    )
