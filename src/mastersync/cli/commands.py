"""The commands: the typer application every command of the hub hangs on."""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from mastersync import __version__
from mastersync.cli import admin, api, distribution, inbox, matching, records
from mastersync.cli.common import Options
from mastersync.cli.demo import demo
from mastersync.cli.ingest import ingest
from mastersync.cli.reconcile import reconcile

app = typer.Typer(
    name="mastersync",
    no_args_is_help=True,
    add_completion=False,
    help="Master-data synchronization hub: golden records with field ownership and lineage.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mastersync {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    landscape: Annotated[
        str | None,
        typer.Option(
            "--landscape",
            "-l",
            envvar="MASTERSYNC_LANDSCAPE",
            help="landscape file (default ./landscape.yaml)",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="MASTERSYNC_STORE",
            help="store URL: sqlite:///path or postgresql://user@host/db",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    """Global options, given before the command."""
    ctx.obj = Options(landscape, store)


app.command()(admin.init)
app.command()(admin.check)
connectors_app = typer.Typer(help="The connector registry.", no_args_is_help=True)
connectors_app.command("list")(admin.connectors)
app.add_typer(connectors_app, name="connectors")
app.command()(demo)
app.command()(ingest)
app.command()(records.get)
app.command("trace")(records.trace_cmd)
app.command()(records.status)
app.command()(distribution.run)
app.command()(distribution.deliveries)
app.command()(distribution.replay)
app.command()(reconcile)
app.add_typer(inbox.app, name="exceptions")
app.add_typer(admin.schema_app, name="schema")
app.add_typer(admin.db_app, name="db")
app.command()(api.serve)
app.add_typer(api.consumers_app, name="consumers")
app.add_typer(api.api_app, name="api")
app.add_typer(api.audit_app, name="audit")
app.add_typer(matching.match_app, name="match")
app.command()(matching.dedupe)
app.add_typer(matching.review_app, name="review")
app.command()(matching.merge)
app.command()(matching.unmerge)
app.command()(matching.split)
app.command()(matching.remerge)


def tune_gc() -> None:
    """Fewer collections for batch work: startup objects frozen, a larger young generation.

    Ingest allocates millions of short-lived, acyclic objects; with the default thresholds
    the collector runs every 700 allocations and costs about a fifth of the time.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
