"""`mastersync reconcile`: compare a system with the hub, report drift, optionally repair."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import typer
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text

from mastersync.bootstrap import Hub, open_connector
from mastersync.cli.common import console, fail, friendly, options
from mastersync.cli.progress import progress_bar
from mastersync.cli.render import short
from mastersync.domain.reconciliation import Bucket, DriftEntry, Role
from mastersync.pipeline.ingest import BatchReport
from mastersync.pipeline.reconcile import (
    Plan,
    ReconcileOptions,
    Reconciliation,
    plan,
    reconcile_source,
    reconcile_target,
)
from mastersync.ports.connector import ConnectorError, SourceRecord

# Exit status when drift is found and not repaired (as `ingest --strict` on rejections).
DRIFT_EXIT = 3

# What each bucket means, per role (a bucket a role does not use has no row unless counted).
_MEANING = {
    Role.TARGET: {
        Bucket.MATCHED: "in sync",
        Bucket.MISSING: "expected there, not held",
        Bucket.EXTRA: "held, not expected there",
        Bucket.MISMATCHED: "held, fields differ",
        Bucket.RETIRED: "deactivated by the hub, still listed",
        Bucket.SOURCED: "its own, read by the hub, not sent to it",
        Bucket.CHANGED_AT_SOURCE: "its own values in fields it writes: read, never pushed over",
    },
    Role.SOURCE: {
        Bucket.MATCHED: "as the hub last read it",
        Bucket.MISSING: "gone from the system (to the inbox)",
        Bucket.EXTRA: "listed, not in the hub",
        Bucket.MISMATCHED: "changed since the hub read it",
        Bucket.RETIRED: "gone from the system, the deletion accepted (inbox entry ignored)",
    },
}


def _example(entry: DriftEntry, meaning: str) -> str:
    # A note that only repeats the bucket's meaning is left out; one that says more (why a
    # repair left the record as it was) is shown beside the fields.
    note = f" — {entry.note}" if entry.note and entry.note != meaning else ""
    if entry.diffs:
        fields = "; ".join(
            f"{d.field} {short(d.expected, 24)} → {short(d.actual, 24)}" for d in entry.diffs[:3]
        )
        more = f" (+{len(entry.diffs) - 3})" if len(entry.diffs) > 3 else ""
        return f"{entry.key}: {fields}{more}{note}"
    return entry.key + note


def drift_table(result: Reconciliation, show: int) -> Table:
    """One run: records per bucket, with a few examples of each."""
    run, report = result.run, result.report
    what = f" ({run.subscription})" if run.subscription else ""
    table = Table(
        title=f"{run.system} {run.domain} as {run.role.value}{what}", title_justify="left"
    )
    for col in ("", "records", "meaning", "examples"):
        table.add_column(col, overflow="fold")
    for bucket in Bucket:
        count = report.counts[bucket]
        # Buckets that are no drift (but matched) are shown when they hold records.
        if not bucket.drift and bucket is not Bucket.MATCHED and not count:
            continue
        meaning = _MEANING[run.role].get(bucket, "")
        examples = [_example(e, meaning) for e in report.examples.get(bucket, [])[:show]]
        if bucket is Bucket.MATCHED:
            examples = []
        style = "bold red" if bucket.drift and count else ""
        table.add_row(Text(bucket.value, style=style), str(count), meaning, "\n".join(examples))
    if report.error_count:
        examples = [
            f"{e.key}: {e.field or '-'} {e.rule}: {e.message}" for e in report.errors[:show]
        ]
        table.add_row(
            Text("errors", style="bold red"),
            str(report.error_count),
            "could not be compared",
            "\n".join(examples),
        )
    return table


def _close(connector: Any) -> None:
    close = getattr(connector, "close", None)
    if close is None:
        return
    done = close()
    if inspect.isawaitable(done):
        asyncio.run(done)  # type: ignore[arg-type]


@contextmanager
def _progress(enabled: bool, system: str) -> Iterator[Any]:
    """progress(phase, n) for the pipeline, drawn as a bar per phase (listed, hub, repair)."""
    if not enabled:
        yield None
        return
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}
        labels = {
            "listed": f"records listed by {system}",
            "hub": "hub records checked",
            "repair": "re-deliveries queued",
        }

        def advance(phase: str, n: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=None)
            bar.advance(tasks[phase], n)

        yield advance


def _run(
    hub: Hub, connector: Any, step: Plan, system: str, domain: str, opts: ReconcileOptions
) -> Reconciliation:
    if step.subscription is not None:
        return reconcile_target(hub.store, hub.landscape, connector, step.subscription, opts)
    ingestor = hub.ingestor

    def ingest(records: list[SourceRecord]) -> BatchReport:
        return ingestor.ingest(system, domain, records, source="reconcile")

    return reconcile_source(hub.store, hub.landscape, connector, system, domain, opts, ingest)


@friendly
def reconcile(
    ctx: typer.Context,
    system: Annotated[str, typer.Option("--system", help="the system to compare with the hub")],
    domain: Annotated[str, typer.Option("--domain", help="the domain to compare")],
    repair: Annotated[
        bool,
        typer.Option(
            help="target: queue re-deliveries of missing and mismatched records; "
            "source: ingest records the hub lacks or holds older (what ingest refuses, "
            "stale or rejected, is named and still exits 3)"
        ),
    ] = False,
    role: Annotated[
        Role | None, typer.Option(help="only as a target or only as a source (default: both)")
    ] = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", "-s", help="one of the system's subscriptions")
    ] = None,
    show: Annotated[int, typer.Option(help="example records per bucket")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare a system with the hub: missing, extra and mismatched records (exit 3 on drift).

    As a source, records gone from the system are filed in the inbox as
    source_record_missing; ignoring such an entry (`mastersync exceptions ignore`) accepts
    the deletion: the record is then counted as retired, not drift, and not filed again
    unless the system lists it again and it goes again. With --repair, drift no repair
    changes still exits 3: a target's extra records, a source's gone records, and records
    ingest refused (stale: the source's version did not move; rejected: a rule).
    """
    hub = options(ctx).hub()
    steps = plan(hub.landscape, system, domain, role, subscription)
    connector = open_connector(hub.landscape, system)
    if not hasattr(connector, "read_state"):
        fail(f"the connector of {system} cannot list what {system} holds (no read_state)")
    if not getattr(connector, "source_of_record", True):
        if role is Role.SOURCE:
            fail(
                f"the connector of {system} holds only what the hub delivered to it: it "
                f"cannot stand for {system} as a source (reconcile it as a target)"
            )
        steps = [s for s in steps if s.role is not Role.SOURCE]
        if not steps:
            fail(f"nothing to reconcile: {system} has no subscription for {domain}")
    results: list[Reconciliation] = []
    try:
        for step in steps:
            with _progress(not as_json, system) as advance:
                opts = ReconcileOptions(repair=repair, examples=max(show, 0), progress=advance)
                results.append(_run(hub, connector, step, system, domain, opts))
    except ConnectorError as exc:
        fail(f"{system}: cannot list its {domain} records: {exc.message}")
    finally:
        _close(connector)
        hub.close()
    drifted = sum(r.report.drift for r in results)
    failed = sum(r.report.error_count for r in results)
    left = sum(r.unrepaired for r in results)
    if as_json:
        runs = [r.as_dict() for r in results]
        found: dict[str, Any] = {"drift": drifted, "errors": failed}
        if repair:
            found["unrepaired"] = left
        console.print_json(orjson.dumps({**found, "runs": runs}).decode())
    else:
        for result in results:
            console.print(drift_table(result, show))
            for note in result.notes:
                console.print(f"  {note}", markup=False)
        said = [f"{drifted} record(s) drifted"] if drifted else []
        # Records that could not be compared are no drift; they are not clean either.
        said += [f"{failed} record(s) could not be compared"] if failed else []
        repaired = ""
        if repair and drifted:
            # Which ones, and why (extra, gone, refused by ingest), the notes above say.
            repaired = " (repair started" + (
                f"; {left} of them not repaired, see above)" if left else ")"
            )
        console.print("; ".join(said) + repaired if said else "no drift")
    # Repairs start for drift; records that could not be compared, and drift that no repair
    # changes (extras, a source's missing records, records ingest refused as stale or
    # rejected) are left as they were, so they still exit 3 (with --repair they exited 0,
    # and a cron job with --repair never alerted).
    if failed or (drifted and not repair) or (repair and left):
        raise typer.Exit(DRIFT_EXIT)
