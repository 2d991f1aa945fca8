"""`mastersync init`, `check`, `schema export` and `db upgrade|status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape

from mastersync.bootstrap import open_store, resolve_store_url
from mastersync.cli.common import console, fail, friendly, options
from mastersync.connectors.files.settings import file_settings
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.landscape import load_landscape
from mastersync.sandbox.demo import write_landscape

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
        f"({len(compiled.config.systems)} systems, {len(compiled.mappers)} mappings)"
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
            drop = drop or f"inbox/{system}"
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
            f"{len(compiled.mappers)} mappings, "
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
