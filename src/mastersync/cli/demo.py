"""`mastersync demo`: the sandbox estate loaded into golden records on embedded SQLite."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mastersync.bootstrap import build_hub
from mastersync.cli.common import console, fail, friendly
from mastersync.cli.progress import progress_bar
from mastersync.cli.render import deliveries_table, report_table, rules_table, summary_table
from mastersync.sandbox.demo import Step, load, write_data, write_landscape

# Written first into every demo folder: a folder holding it is one a demo wrote, and the
# next demo there may replace it. Any other folder may hold someone's work and is kept.
MARKER = ".mastersync-demo"


def _make_way(directory: Path, force: bool) -> None:
    """Remove an earlier demo at ``directory``, refuse anything else; then mark the folder."""
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} is a file; give a folder for the demo estate (--dir)")
    try:
        occupied = directory.is_dir() and any(directory.iterdir())
    except OSError as exc:
        fail(f"cannot look into {directory}: {exc.strerror or exc}")
    if occupied:
        if not force and not (directory / MARKER).is_file():
            fail(
                f"{directory} exists and is not a folder an earlier `mastersync demo` wrote; "
                "give another --dir, or pass --force to delete it and everything in it"
            )
        try:
            shutil.rmtree(directory)
        except OSError as exc:
            fail(f"cannot remove the earlier demo in {directory}: {exc.strerror or exc}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Before anything else: a demo stopped half way is still known as one next time.
        (directory / MARKER).write_text(
            "Written by `mastersync demo`: the next demo in this folder replaces it whole.\n",
            encoding="utf-8",
        )
    except OSError as exc:
        fail(f"cannot write the demo to {directory}: {exc.strerror or exc}")


@friendly
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="where the demo estate is written")
    ] = Path("mastersync-demo"),
    seed: Annotated[int, typer.Option(help="random seed of the generated estate")] = 7,
    scale: Annotated[float, typer.Option(min=0.01, max=50, help="1.0 is ~11,000 records")] = 1.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="replace --dir even if an earlier demo did not write it (deletes it)"
        ),
    ] = False,
) -> None:
    """Generate the sandbox estate, load it, and summarise the golden records."""
    _make_way(directory, force)
    started = time.perf_counter()
    landscape = write_landscape(directory)
    with console.status("generating the sandbox systems' exports"):
        steps = write_data(directory, seed=seed, scale=scale)
    console.print(f"sandbox estate in {directory}/ (landscape.yaml, mappings/, data/)")
    hub = build_hub(landscape, f"sqlite:///{(directory / 'mastersync.db').resolve()}")
    with progress_bar() as bar:
        tasks = {
            id(s): bar.add_task(f"{s.system}.{s.domain} {s.path.name}", total=s.records)
            for s in steps
        }

        def advance(step: Step, n: int) -> None:
            bar.advance(tasks[id(step)], n)

        reports = load(hub.ingestor, hub.landscape, steps, advance)
    console.print(report_table(reports, "loaded"))
    distribution = hub.distribution()
    with console.status("distributing to the CRM, WMS and shop (throttling and retries included)"):
        asyncio.run(distribution.run_until_idle(timeout=300))
    with hub.store.unit_of_work(write=False) as uow:
        counts = uow.domain_counts()
        by_rule = uow.exception_counts()
        stats = uow.delivery_stats({s.id: s.domain for s in hub.landscape.subscriptions.values()})
    console.print(summary_table(reports, counts))
    console.print(rules_table(by_rule))
    console.print(deliveries_table(stats, width=console.width))
    received = sum(r.received for r in reports)
    console.print(f"{received} source records in {time.perf_counter() - started:.1f} s. Try:")
    program = shutil.which("mastersync") or sys.argv[0]
    for hint in (
        "mastersync deliveries",
        "mastersync get item erp:A100001",
        "mastersync trace erp:A100001",
        "mastersync exceptions list --group",
        "mastersync status",
    ):
        command = hint.replace("mastersync", program, 1)
        console.print(f"  MASTERSYNC_LANDSCAPE={landscape} {command}", markup=False, soft_wrap=True)
    hub.close()
