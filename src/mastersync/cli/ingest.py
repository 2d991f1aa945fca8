"""`mastersync ingest`: load a file of one system's records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mastersync.bootstrap import Hub
from mastersync.cli.common import console, fail, friendly, options
from mastersync.cli.progress import interruptible, progress_bar
from mastersync.cli.render import report_table
from mastersync.connectors.files.readers import count_records, unsupported
from mastersync.connectors.files.settings import (
    DropFolderSettings,
    file_settings,
    header_problem,
    open_records,
)
from mastersync.pipeline.ingest import BatchReport
from mastersync.ports.connector import ReadFailure, SourceRecord

# Suffixes of JSON Lines files: one record a line, no header.
_JSON_LINES = (".jsonl", ".ndjson")


@friendly
def ingest(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="CSV, TSV, JSON Lines or Excel (.xlsx) files", exists=True, dir_okay=False
        ),
    ],
    system: Annotated[str, typer.Option("--system", "-s", help="the system the files come from")],
    domain: Annotated[
        str,
        typer.Option(
            "--domain", "-d", help="item, customer, supplier, location, price or inventory"
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option(
            help="exit with code 3 if any record is rejected, or a JSON Lines file held none"
        ),
    ] = False,
    reapply: Annotated[
        bool,
        typer.Option(
            "--reapply",
            help="map and merge records again even where their version was applied (after "
            "a change to the inbound mapping)",
        ),
    ] = False,
) -> None:
    """Load records with a progress bar; print accepted / unchanged / stale / rejected."""
    # Every file's type is checked before any is read: one found unreadable halfway ended
    # in a traceback, with the files before it ingested and no summary of them.
    for path in files:
        problem = unsupported(path)
        if problem:
            fail(f"{path}: {problem}")
    hub = options(ctx).hub()
    mapper = hub.landscape.mapper(system, domain)
    settings = file_settings(hub.landscape.config.systems[system].connector)
    reports = []
    empty = []
    for path in files:
        problem = header_problem(
            path, settings, system, mapper.missing_columns, f"{system}.{domain}"
        )
        if problem:
            fail(f"{path}: {problem}")
        report = _ingest_file(hub, path, system, domain, settings, reapply)
        reports.append(report)
        if not report.received and path.suffix.lower() in _JSON_LINES:
            # No line at all: not wrong (a JSON Lines file has no header to say "nothing
            # changed", as a CSV file's header alone does), but as likely a failed export;
            # it said "received 0 … rejected 0" and nothing else. --strict fails it.
            empty.append(path)
            console.print(
                f"  [yellow]![/] {escape(str(path))}: nothing was read (the file holds no records)",
                soft_wrap=True,
                markup=True,
            )
        for sample in report.samples[:10]:
            if sample.startswith("warning: "):
                text = escape(sample.removeprefix("warning: "))
                console.print(f"  [yellow]![/] {text} — applied", soft_wrap=True, markup=True)
            else:
                console.print(f"  [red]✗[/] {escape(sample)}", soft_wrap=True, markup=True)
        for note in report.tally.notes[:5]:
            console.print(f"  [yellow]![/] {escape(note)} — applied", soft_wrap=True, markup=True)
        if report.tally.warned > 5:
            more = report.tally.warned - 5
            console.print(f"  … and {more} more warning(s): `mastersync trace` shows each")
        if report.tally.held:
            # Counted as accepted or unchanged: the rest of the record was taken.
            console.print(
                f"  [yellow]![/] {report.tally.held} record(s) with a change held for approval "
                "(four-eyes): `mastersync trace` shows which field, GET /v1/approvals lists them",
                soft_wrap=True,
                markup=True,
            )
        hidden = sum(report.problems.values()) - min(len(report.samples), 10)
        if hidden > 0:
            console.print(f"  … and {hidden} more: `mastersync exceptions list --group`")
        for note in report.empty_expression_notes(mapper.expression_fields).values():
            console.print(f"  note: {escape(note)}", soft_wrap=True)
    console.print(report_table(reports))
    hub.close()
    if strict and (empty or any(r.outcomes["rejected"] for r in reports)):
        raise typer.Exit(3)


def _ingest_file(
    hub: Hub, path: Path, system: str, domain: str, settings: DropFolderSettings, reapply: bool
) -> BatchReport:
    """One file, with a progress bar; interrupted, say how far it got."""
    committed = 0
    records = open_records(path, settings)
    with progress_bar() as bar, interruptible() as asked:
        task = bar.add_task(f"{system}.{domain} {path.name}", total=count_records(path))

        def advance(n: int) -> None:
            nonlocal committed
            committed += n
            bar.advance(task, n)
            if asked:
                # Here, right after a chunk is committed and counted: stopped anywhere,
                # a chunk committed but not yet counted was missing from the figure.
                raise KeyboardInterrupt

        try:
            report = hub.ingestor.ingest(
                system,
                domain,
                _again(records) if reapply else records,
                source=path.name,
                progress=advance,
            )
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM ended it with 130/143 and not a word.
            bar.stop()
            hub.close()
            fail(
                f"stopped: {committed:,} record(s) of {path.name} were committed (each whole, "
                "with its events); ingesting the file again skips them",
                code=130,
            )
        # What was read, not the estimate: a quoted field over several lines made it end
        # at the line count ("60000/60000" for 30,000 records).
        bar.update(task, total=report.received, completed=report.received)
    return report


def _again(records: Iterable[SourceRecord | ReadFailure]) -> Iterator[SourceRecord | ReadFailure]:
    """Records marked to be merged again though their version was applied."""
    for r in records:
        yield dataclasses.replace(r, reapply=True) if isinstance(r, SourceRecord) else r
