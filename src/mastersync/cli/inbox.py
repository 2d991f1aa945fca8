"""`mastersync exceptions`: list, show, retry and ignore inbox entries."""

from __future__ import annotations

import dataclasses
import getpass
from typing import Annotated

import orjson
import typer

from mastersync.cli.common import console, fail, friendly, options
from mastersync.cli.render import exceptions_table, groups_table
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import ExceptionStatus
from mastersync.ports.store import ExceptionFilter

app = typer.Typer(help="Work the exceptions inbox.", no_args_is_help=True)


# Entries named one by one after a retry; the counts say the rest.
_SHOWN = 20


@app.command("list")
@friendly
def list_(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open, resolved, ignored or all")] = "open",
    kind: Annotated[str | None, typer.Option(help="e.g. validation_error")] = None,
    system: Annotated[str | None, typer.Option()] = None,
    domain: Annotated[str | None, typer.Option()] = None,
    signature: Annotated[str | None, typer.Option(help="entries that failed the same way")] = None,
    group: Annotated[bool, typer.Option("--group", help="count entries per signature")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List inbox entries (newest first), or groups of them by error signature."""
    try:
        state = None if status == "all" else ExceptionStatus(status)
    except ValueError:
        fail(f"unknown status {status!r}: use open, resolved, ignored or all")
    kinds = [k.value for k in ProblemKind]
    if kind is not None and kind not in kinds:
        fail(f"unknown kind {kind!r}: use one of {', '.join(kinds)}")
    hub = options(ctx).hub()
    f = ExceptionFilter(state, kind, system, domain, signature, limit=limit)
    with hub.store.unit_of_work(write=False) as uow:
        if group:
            console.print(groups_table(uow.exception_groups(f), console.width, status))
        else:
            entries = uow.exceptions(f)
            total = len(entries)
            if total == limit:
                # A full page may not be all: say how many match (the title said the page's
                # size as if it were the total).
                groups = uow.exception_groups(dataclasses.replace(f, limit=1_000_000))
                total = sum(g.count for g in groups)
            console.print(exceptions_table(entries, console.width, total))
    hub.close()


@app.command()
@friendly
def show(ctx: typer.Context, exception_id: Annotated[int, typer.Argument()]) -> None:
    """Show one entry: the rule, the field, the raw payload, the lineage ids."""
    hub = options(ctx).hub()
    entry = hub.inbox.entries([exception_id])[0]
    console.print(
        f"[bold]#{entry.id}[/] {entry.kind} ({entry.status.value}), {entry.attempts} attempt(s)",
        markup=True,
    )
    for label, value in (
        ("record", f"{entry.system}.{entry.domain}:{entry.source_key}"),
        ("master id", entry.master_id),
        ("field", entry.field),
        ("rule", entry.rule),
        ("message", entry.message),
        ("signature", entry.signature),
        ("read from", entry.locator),
        ("trace id", entry.trace_id),
        ("batch", entry.batch_id),
        ("first seen", entry.created_at),
        ("last seen", entry.updated_at),
    ):
        if value:
            console.print(f"  {label:>10}: {value}", markup=False, soft_wrap=True)
    if entry.resolution:
        console.print(f"  resolution: {entry.resolution}", markup=False)
    console.print("payload:")
    console.print_json(orjson.dumps(entry.payload).decode())
    hub.close()


@app.command()
@friendly
def retry(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="entry ids")] = None,
    signature: Annotated[str | None, typer.Option(help="every open entry of a signature")] = None,
) -> None:
    """Run the entries' records again through the current landscape."""
    if not ids and not signature:
        fail("name entry ids or --signature")
    if ids and signature:
        # Either one: given both, the ids were dropped without a word.
        fail("name entry ids or --signature, not both")
    hub = options(ctx).hub()
    entries = hub.inbox.entries(ids, signature)
    report = hub.inbox.retry(entries)
    queued = f"queued again: {len(report.queued)}, " if report.queued else ""
    moot = (
        f" ({len(report.superseded)} superseded: a newer version decided, nothing sent)"
        if report.superseded
        else ""
    )
    console.print(
        f"resolved: {len(report.resolved)}{moot}, {queued}still failing: "
        f"{len(report.still_failing)}, skipped: {len(report.skipped)}"
    )
    if report.queued:
        # Not resolved yet: a dead letter's outcome comes with the hub's next round.
        console.print(
            "  dead letters queued again: `mastersync run` sends them; one the consumer "
            "refuses again opens a new entry"
        )
    # The first few, as ingest shows its samples: a retry of a large signature printed
    # 49,847 ids.
    for ex_id, why in list(report.skipped.items())[:_SHOWN]:
        console.print(f"  #{ex_id} skipped: {why}", markup=False)
    if len(report.skipped) > _SHOWN:
        console.print(f"  … and {len(report.skipped) - _SHOWN:,} more skipped")
    if report.still_failing:
        # An entry its record no longer raises, though it was rejected again under another
        # rule, closed: say which entries the record fails under now.
        shown = ", ".join(
            _failing(i, report.failing_as.get(i, [])) for i in report.still_failing[:_SHOWN]
        )
        more = len(report.still_failing) - _SHOWN
        tail = f", … and {more:,} more (`exceptions list` has them)" if more > 0 else ""
        console.print(f"  still failing: {shown}{tail}")
    hub.close()


def _failing(ex_id: int, now: list[int]) -> str:
    """A still-failing entry as a retry names it, with the entries its record fails under
    now when the retry closed it for a rule the record no longer breaks."""
    if not now:
        return f"#{ex_id}"
    return f"#{ex_id} (closed: its record now fails as {', '.join(f'#{n}' for n in now)})"


@app.command()
@friendly
def ignore(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="entry ids")] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (recorded)")] = "",
    by: Annotated[str | None, typer.Option(help="who (default: your login)")] = None,
    signature: Annotated[str | None, typer.Option(help="every open entry of a signature")] = None,
) -> None:
    """Close entries without acting, recording who and why."""
    if not ids and not signature:
        fail("name entry ids or --signature")
    if ids and signature:
        # Either one: given both, the ids were dropped without a word.
        fail("name entry ids or --signature, not both")
    hub = options(ctx).hub()
    entries = hub.inbox.entries(ids, signature)
    done = hub.inbox.ignore(entries, by or getpass.getuser(), reason)
    console.print(f"ignored {len(done)} entr{'y' if len(done) == 1 else 'ies'}")
    hub.close()
