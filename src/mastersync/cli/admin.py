"""`mastersync init`, `check`, `schema export|check` and `db upgrade|status`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from mastersync.bootstrap import open_store, resolve_store_url
from mastersync.cli.common import console, fail, friendly, options
from mastersync.connectors.files.settings import default_folder, file_settings
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.canonical.evolution import Evolution, SchemaError, evolve
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.landscape import load_landscape
from mastersync.sandbox.demo import write_landscape
from mastersync.schemas import SchemaFile, SchemaFileError, latest_released, read_pinned

schema_app = typer.Typer(help="Canonical schemas.", no_args_is_help=True)
db_app = typer.Typer(help="The store's database schema.", no_args_is_help=True)


@friendly
def init(
    directory: Annotated[Path, typer.Argument(help="where to write landscape.yaml")],
    force: Annotated[
        bool, typer.Option(help="overwrite an existing landscape.yaml and mapping files")
    ] = False,
) -> None:
    """Write a starter landscape (ERP, CRM, PIM, WMS, shop) to edit for your estate."""
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} is a file; give a directory (it is made if missing)")
    try:
        path = write_landscape(directory, replace=force)
    except FileExistsError as exc:
        fail(f"{exc.filename} exists; pass --force to overwrite it")
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(directory) else ""
        fail(f"cannot write the landscape to {directory}: {exc.strerror or exc}{where}")
    compiled = load_landscape(path)
    # The folders its connectors read and write, so that `check SYSTEM` passes as written.
    for folder in _connector_folders(compiled):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot make the folder {folder}: {exc.strerror or exc}")
    console.print(
        f"wrote {path} and {directory / 'mappings'}/ "
        f"({len(compiled.config.systems)} systems, {len(compiled.mappers)} inbound mappings, "
        f"{len(compiled.subscriptions)} subscriptions)"
    )
    console.print(
        f"next: edit it, then `mastersync -l {path} check` and "
        f"`mastersync -l {path} ingest --system erp --domain item FILE.csv`"
    )


def _connector_folders(compiled: CompiledLandscape) -> list[Path]:
    """The drop and export folders the landscape's connectors read and write."""
    base = Path(compiled.base_dir)
    folders: list[Path] = []
    for system, cfg in compiled.config.systems.items():
        settings = cfg.connector
        drop = file_settings(settings).folder
        if settings.get("type") == "files":
            # The file connector's own default, and its exports (`check` tests them all).
            drop = drop or default_folder(system)
            folders += [base / str(e["folder"]) for e in (settings.get("exports") or {}).values()]
        if drop:
            folders.append(base / drop)
    return folders


@friendly
def check(
    ctx: typer.Context,
    system: Annotated[str | None, typer.Argument(help="test this system's connection")] = None,
) -> None:
    """Validate the landscape; with SYSTEM, also test its connector and show what it can do."""
    from mastersync.bootstrap import landscape_path, open_connector
    from mastersync.connectors.registry import spec_of

    path = landscape_path(options(ctx).landscape)
    if not path.exists():
        fail(f"no landscape at {path}")
    compiled = load_landscape(path)
    if system is None:
        console.print(
            f"[green]ok[/] {escape(str(path))}: {len(compiled.config.systems)} systems, "
            # Inbound only: a subscription's mapping is counted with its subscription (three
            # mapping files read "1 mappings" to a reviewer).
            f"{len(compiled.mappers)} inbound mappings, "
            f"{len(compiled.subscriptions)} subscriptions",
            markup=True,
        )
        for (sys_name, domain), mapper in sorted(compiled.mappers.items()):
            console.print(f"  {sys_name}.{domain}: {', '.join(mapper.targets)}")
        return
    if system not in compiled.config.systems:
        fail(f"unknown system {system!r}; known: {', '.join(compiled.config.systems)}")
    settings = compiled.config.systems[system].connector
    if "type" not in settings:
        fail(f"system {system!r} has no connector to check")
    spec = spec_of(str(settings["type"]))
    console.print(f"{system}: connector {spec.name} ({spec.description})")
    console.print("  can: " + ", ".join(sorted(c.value for c in spec.capabilities)))
    connector = open_connector(compiled, system)
    if not hasattr(connector, "check"):
        console.print("  (this connector has no connection test)")
        return
    result = connector.check()
    for line in result.details:
        console.print(f"  {line}")
    if not result.ok:
        fail(f"{system}: the connection test failed")
    console.print(f"[green]ok[/] {escape(system)}", markup=True)


@friendly
def connectors() -> None:
    """List the registered connectors and what each can do."""
    from rich.table import Table

    from mastersync.connectors.registry import specs

    table = Table(title="connectors", title_justify="left")
    for col in ("type", "what it is", "capabilities"):
        table.add_column(col, overflow="fold")
    for name, spec in sorted(specs().items()):
        table.add_row(name, spec.description, ", ".join(sorted(c.value for c in spec.capabilities)))
    console.print(table)


@schema_app.command("export")
@friendly
def schema_export(
    out: Annotated[Path | None, typer.Option(help="folder for <domain>.schema.json files")] = None,
    domain: Annotated[str | None, typer.Option(help="one domain only")] = None,
) -> None:
    """Export the canonical models as JSON Schema (draft 2020-12), with their versions."""
    names = [domain] if domain else list(DOMAINS)
    for name in names:
        if name not in DOMAINS:
            fail(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")
    schemas = {name: DOMAINS[name].json_schema() for name in names}
    if out is None:
        console.print_json(orjson.dumps(schemas if len(names) > 1 else schemas[names[0]]).decode())
        return
    if out.exists() and not out.is_dir():
        fail(f"{out} is a file; give a folder for the schema files (it is made if missing)")
    # Not writable, a parent that is a file, a full disk: one line naming what failed.
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot make the folder {out}: {exc.strerror or exc}")
    for name, schema in schemas.items():
        path = out / f"{name}.schema.json"
        try:
            path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror or exc}")
        console.print(f"wrote {path} (version {schema['x-schema-version']})")


@schema_app.command("check")
@friendly
def schema_check(
    against: Annotated[
        Path | None,
        typer.Option(
            help="a folder of a consumer's pinned <domain>.schema.json files (as `schema export "
            "--out` wrote them); default: the schemas released with this version"
        ),
    ] = None,
    domain: Annotated[str | None, typer.Option(help="one domain only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Compare the models with released or pinned schemas: changes, breaks, bump needed."""
    if domain is not None and domain not in DOMAINS:
        fail(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    names = [domain] if domain else list(DOMAINS)
    baseline: dict[str, SchemaFile | None]
    try:
        if against is None:
            baseline = {name: latest_released(name) for name in names}
        else:
            # A consumer pins the domains it reads: the others are not its concern.
            pinned = read_pinned(against, domain)
            baseline = {name: pinned[name] for name in names if name in pinned}
    except SchemaFileError as exc:
        fail(str(exc))
    results: dict[str, tuple[SchemaFile, Evolution] | None] = {}
    for name, old in baseline.items():
        try:
            results[name] = None if old is None else (old, evolve(old.schema, _current(name)))
        except SchemaError as exc:
            fail(f"{old.source if old else name} ({name}): {exc}")
    failing = [
        problem
        for name, result in results.items()
        if result is not None
        for problem in _check_problems(name, *result)
    ]
    if as_json:
        console.print_json(orjson.dumps(_check_report(results)).decode())
    else:
        for name, result in results.items():
            _print_check(name, result)
    if failing:
        fail("; ".join(failing))


def _current(name: str) -> dict[str, Any]:
    """The schema the current model of a domain exports."""
    return DOMAINS[name].json_schema()


def _check_problems(name: str, old: SchemaFile, evolution: Evolution) -> list[str]:
    """Why a domain fails `schema check`, if it does."""
    problems = []
    if evolution.breaks_forward:
        problems.append(f"{name}: consumers holding {old.version} ({old.source}) would break")
    verdict = evolution.verdict
    if not verdict.respected:
        problems.append(
            f"{name}: {verdict.old_version} -> {verdict.new_version} needs a {verdict.needed} "
            f"bump (to {verdict.suggested})"
        )
    return problems


def _check_report(
    results: Mapping[str, tuple[SchemaFile, Evolution] | None],
) -> dict[str, dict[str, Any]]:
    """`schema check --json`: per domain, what it was compared with, the changes, the verdict."""
    report: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        if result is None:
            report[name] = {"released": None, "changes": [], "ok": True}
            continue
        old, evolution = result
        report[name] = {
            "against": old.source,
            **evolution.verdict.as_dict(),
            "breaks_backward": evolution.breaks_backward,
            "breaks_forward": evolution.breaks_forward,
            "ok": not _check_problems(name, old, evolution),
            "changes": [c.as_dict() for c in evolution.changes],
        }
    return report


def _print_check(name: str, result: tuple[SchemaFile, Evolution] | None) -> None:
    """One domain's changes as a table, then its verdict in one line."""
    from rich.table import Table

    if result is None:
        console.print(f"{name}: no released schema yet (a new domain: nothing to compare)")
        return
    old, evolution = result
    verdict = evolution.verdict
    if evolution.changes:
        table = Table(
            title=f"{name} {verdict.old_version} ({old.source}) -> {verdict.new_version}",
            title_justify="left",
        )
        for col in ("field", "change", "breaks backward", "breaks forward"):
            table.add_column(col, overflow="fold")
        for change in evolution.changes:
            table.add_row(
                change.field,
                f"{change.rule}: {change.detail}",
                "yes" if change.breaks_backward else "no",
                "yes" if change.breaks_forward else "no",
            )
        console.print(table)
    ok = not _check_problems(name, old, evolution)
    mark = "[green]ok[/]" if ok else "[bold red]fails[/]"
    summary = f"{len(evolution.changes)} change(s); " if evolution.changes else "unchanged; "
    console.print(f"{mark} {escape(name)}: {escape(summary + verdict.describe())}", markup=True)


def _store_url(ctx: typer.Context) -> str:
    opts = options(ctx)
    from mastersync.bootstrap import landscape_path

    path = landscape_path(opts.landscape)
    compiled = load_landscape(path) if path.exists() else None
    return resolve_store_url(opts.store, compiled)


@db_app.command("upgrade")
@friendly
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the schema migrations the store lacks."""
    store = open_store(_store_url(ctx), upgrade_embedded=False)
    _, head = store.schema_revision()
    before = store.upgrade()  # read under the upgrade's lock: another may have done it
    console.print(f"{store.url.split('@')[-1]}: schema {before or 'empty'} -> {head}")
    store.close()


@db_app.command("status")
@friendly
def db_status(ctx: typer.Context) -> None:
    """Show the store's schema revision and the one this version needs."""
    store = open_store(_store_url(ctx), upgrade_embedded=False)
    current, head = store.schema_revision()
    state = "[green]up to date[/]" if current == head else "[yellow]needs `db upgrade`[/]"
    console.print(f"schema revision {current or 'none'}, head {head}: {state}", markup=True)
    store.close()
