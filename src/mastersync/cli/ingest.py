"""`mastersync ingest`: load a file of one system's records."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mastersync.cli.common import console, fail, friendly, options
from mastersync.cli.progress import progress_bar
from mastersync.cli.render import report_table
from mastersync.connectors.files.readers import count_records, read_header
from mastersync.connectors.files.settings import file_settings, open_records


@friendly
def ingest(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="CSV, TSV or JSON Lines files", exists=True, dir_okay=False)
    ],
    system: Annotated[str, typer.Option("--system", "-s", help="the system the files come from")],
    domain: Annotated[
        str,
        typer.Option(
            "--domain", "-d", help="item, customer, supplier, location, price or inventory"
        ),
    ],
    strict: Annotated[
        bool, typer.Option(help="exit with code 3 if any record is rejected")
    ] = False,
) -> None:
    """Load records with a progress bar; print accepted / unchanged / stale / rejected."""
    hub = options(ctx).hub()
    mapper = hub.landscape.mapper(system, domain)
    settings = file_settings(hub.landscape.config.systems[system].connector)
    reports = []
    for path in files:
        if path.suffix.lower() in (".csv", ".tsv", ".txt"):
            delimiter = "\t" if path.suffix.lower() == ".tsv" else settings.delimiter
            try:
                header = read_header(path, delimiter=delimiter, encoding=settings.encoding)
            except UnicodeDecodeError as exc:
                fail(
                    f"{path}: the header is not {settings.encoding} (byte {exc.start + 1}); "
                    f"set the connector's encoding (cp1252, utf-16, ...) for {system}'s files"
                )
            except csv.Error as exc:
                fail(f"{path}: the header cannot be read as CSV: {exc}")
            missing = mapper.missing_columns(header)
            if missing:
                fail(
                    f"{path}: "
                    + (
                        _delimiter_hint(header, delimiter, system)
                        or f"the {system}.{domain} mapping reads column(s) "
                        f"{', '.join(missing)}, which the file's header lacks"
                    )
                )
        total = count_records(path)
        with progress_bar() as bar:
            task = bar.add_task(f"{system}.{domain} {path.name}", total=total)
            report = hub.ingestor.ingest(
                system,
                domain,
                open_records(path, settings),
                source=path.name,
                progress=lambda n, task=task: bar.advance(task, n),  # type: ignore[misc]
            )
            bar.update(task, completed=total)
        reports.append(report)
        for sample in report.samples[:10]:
            console.print(f"  [red]✗[/] {escape(sample)}", soft_wrap=True, markup=True)
        hidden = sum(report.problems.values()) - min(len(report.samples), 10)
        if hidden > 0:
            console.print(f"  … and {hidden} more: `mastersync exceptions list --group`")
    console.print(report_table(reports))
    hub.close()
    if strict and any(r.outcomes["rejected"] for r in reports):
        raise typer.Exit(3)


def _delimiter_hint(header: list[str], delimiter: str, system: str) -> str:
    """What to change when the header read as one column is split by another delimiter
    (an export with commas where the connector says semicolons, say)."""
    if len(header) != 1:
        return ""
    for other in (",", ";", "\t", "|"):
        if other != delimiter and header[0].count(other) >= 1:
            shown = {"\t": "a tab"}.get(other, repr(other))
            cut = header[0] if len(header[0]) <= 60 else header[0][:59] + "…"
            return (
                f"the header is one column ({cut!r}): the file looks delimited by {shown}, "
                f"where {system}'s connector says {delimiter!r} (set its `delimiter`)"
            )
    return ""
