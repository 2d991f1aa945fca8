"""`mastersync match explain`, `dedupe`, `review`, `merge`, `unmerge`, `split` and `remerge`."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from mastersync.cli.common import console, fail, friendly, options
from mastersync.cli.progress import interruptible, progress_bar
from mastersync.domain.consolidate import MergeRefused
from mastersync.domain.matching import MatchResult, render
from mastersync.domain.matching.records import MatchDecision
from mastersync.pipeline.matching.dedupe import dedupe as run_dedupe
from mastersync.pipeline.matching.merging import merge_records, split_record, unmerge_records
from mastersync.pipeline.matching.review import (
    ReviewError,
    accept,
    explain,
    open_reviews,
    reject,
    review_entry,
)
from mastersync.pipeline.remerge import RemergeReport
from mastersync.pipeline.remerge import remerge as run_remerge

P = ParamSpec("P")
R = TypeVar("R")

match_app = typer.Typer(help="Explain match scores.", no_args_is_help=True)
review_app = typer.Typer(help="Review possible duplicates.", no_args_is_help=True)
_STAGES = {
    "prepare": "preparing",
    "compare": "comparing pairs",
    "estimate": "fitting (EM)",
    "score": "scoring",
}


def _refusals(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (MergeRefused, ReviewError) as exc:
            fail(str(exc))

    return wrapper


def _print_result(result: MatchResult, model: str | None, as_json: bool) -> None:
    if as_json:
        console.print_json(orjson.dumps({**result.to_dict(), "model": model}).decode())
        return
    console.print(render(result), markup=False, soft_wrap=True)
    if model:
        console.print(f"[dim]model: {escape(str(model))}[/]", markup=True)


@match_app.command("explain")
@friendly
@_refusals
def explain_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="a master id, or system:key")],
    b: Annotated[str, typer.Argument(help="a master id, or system:key")],
    domain: Annotated[str | None, typer.Option(help="where to look up system:key")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Score two records and show each comparison's contribution."""
    hub = options(ctx).hub()
    result, model = explain(hub.store, hub.landscape, a, b, domain)
    _print_result(result, model, as_json)
    hub.close()


@friendly
@_refusals
def dedupe(
    ctx: typer.Context,
    domain: Annotated[str, typer.Option(help="customer, supplier or item")] = "customer",
    merge: Annotated[
        bool, typer.Option("--merge", help="merge each auto-link cluster into its oldest record")
    ] = False,
    show: Annotated[int, typer.Option(help="clusters to list", min=0)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Find duplicates in a domain's backlog: fit weights by EM, open reviews, report clusters."""
    hub = options(ctx).hub()
    if as_json:
        # The bar is drawn on stdout, and with --json stdout is the JSON document alone
        # (piped to jq, a bar ahead of it made it unreadable).
        run = run_dedupe(hub.store, hub.landscape, domain, merge=merge, actor=_me())
    else:
        with progress_bar() as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=max(total, 1))
                bar.update(tasks[stage], completed=done, total=max(total, 1))

            run = run_dedupe(
                hub.store, hub.landscape, domain, merge=merge, actor=_me(), progress=progress
            )
    hub.close()
    report = run.report
    if as_json:
        data = {
            **report.to_dict(),
            "known": run.known,
            "model": run.model,
            "new_reviews": run.new_reviews,
            "clusters": run.clusters,
            "merges": [m.id for m in run.merges],
        }
        console.print_json(orjson.dumps(data).decode())
        return
    console.print(
        f"[bold]{escape(domain)}[/]: {report.records:,} records, {report.pairs_compared:,} "
        f"pairs compared, {len(report.links):,} auto-link and {len(report.reviews):,} review "
        "pairs",
        markup=True,
    )
    if report.pairs_skipped:
        console.print(
            f"[yellow]{report.pairs_skipped:,} pairs skipped in over-large blocks: "
            f"{escape(str(report.capped_blocks))}[/]",
            markup=True,
        )
    if report.fit is not None:
        fit = report.fit
        console.print(
            f"weights fitted by EM on {fit.pairs_used:,} pairs in {fit.iterations} iterations "
            f"({'converged' if fit.converged else 'not converged'}); "
            f"match share {fit.parameters.prior:.4f}; stored for ingest"
        )
    else:
        console.print(f"[yellow]weights: {escape(str(run.model))}[/]", markup=True)
    console.print(
        f"{run.new_reviews} new review entries; {run.known} pairs decided or queued before "
        "were left alone"
    )
    sizes: dict[int, int] = {}
    for cluster in run.clusters:
        sizes[len(cluster)] = sizes.get(len(cluster), 0) + 1
    table = Table("cluster", "size", "records", title=f"{len(run.clusters)} clusters")
    for i, cluster in enumerate(run.clusters[:show], 1):
        table.add_row(
            str(i), str(len(cluster)), ", ".join(cluster[:6]) + (" …" if len(cluster) > 6 else "")
        )
    console.print(table)
    if sizes:
        shown = ", ".join(f"{n} of {s}" for s, n in sorted(sizes.items()))
        console.print(f"clusters by size: {shown}")
    for cluster in run.held_back:
        console.print(
            "[yellow]not merged (holds a pair a steward rejected):[/] "
            + escape(", ".join(cluster)),
            markup=True,
        )
    if merge:
        console.print(
            f"[green]{len(run.merges)} merges done[/] (mastersync unmerge ID undoes one)",
            markup=True,
        )
    elif run.clusters:
        console.print("run again with --merge to merge the clusters")


def _me() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no login name (a container): say so rather than guess
        return "unknown"


def _decisions_table(entries: list[MatchDecision]) -> Table:
    table = Table("id", "domain", "left", "right", "probability", "status", "origin", "created")
    for d in entries:
        table.add_row(
            str(d.id),
            d.domain,
            d.left_id,
            d.right_id,
            f"{d.probability:.4f}",
            d.status.value,
            d.origin,
            d.created_at[:19],
        )
    return table


@review_app.command("list")
@friendly
def review_list(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List open review entries, newest first."""
    hub = options(ctx).hub()
    entries = open_reviews(hub.store, domain, limit)
    hub.close()
    console.print(_decisions_table(entries))


@review_app.command("show")
@friendly
def review_show(
    ctx: typer.Context,
    decision_id: Annotated[int, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a review entry with its explanation as stored."""
    hub = options(ctx).hub()
    d = review_entry(hub.store, decision_id)
    hub.close()
    if as_json:
        console.print_json(orjson.dumps(_decision_dict(d)).decode())
        return
    console.print(
        f"[bold]#{d.id}[/] "
        + escape(f"{d.domain} {d.left_id} / {d.right_id}: {d.status.value} ")
        + escape(f"(from {d.origin}, {d.created_at[:19]})"),
        markup=True,
    )
    if d.decided_by:
        console.print(f"decided by {d.decided_by} at {d.decided_at}: {d.note or ''}")
    e = d.explanation
    table = Table(
        "comparison", "level", "weight", e.get("left_id") or "left", e.get("right_id") or "right"
    )
    for c in e.get("comparisons", []):
        table.add_row(
            c["name"],
            c["level"],
            f"{c['weight']:+.2f}",
            " | ".join(c["left"]) or "-",
            " | ".join(c["right"]) or "-",
        )
    console.print(table)
    console.print(
        f"probability {d.probability:.6f}, weight {d.weight:+.2f} "
        f"(prior {e.get('prior_weight', 0):+.2f})"
        + (f"; {e['reason']}" if e.get("reason") else ""),
        markup=False,
    )


def _decision_dict(d: MatchDecision) -> dict[str, Any]:
    return {
        "id": d.id,
        "domain": d.domain,
        "left_id": d.left_id,
        "right_id": d.right_id,
        "probability": d.probability,
        "weight": d.weight,
        "outcome": d.outcome,
        "status": d.status.value,
        "origin": d.origin,
        "created_at": d.created_at,
        "decided_at": d.decided_at,
        "decided_by": d.decided_by,
        "note": d.note,
        "explanation": d.explanation,
    }


@review_app.command("accept")
@friendly
@_refusals
def review_accept(
    ctx: typer.Context,
    decision_id: Annotated[int, typer.Argument()],
    note: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """The two records are the same customer/supplier/item: merge them."""
    hub = options(ctx).hub()
    merge = accept(hub.store, hub.landscape, decision_id, actor=_me(), note=note)
    hub.close()
    console.print(
        f"merged {merge.loser_id} into {merge.survivor_id} (merge {merge.id}; "
        f"`mastersync unmerge {merge.id}` undoes it)"
    )


@review_app.command("reject")
@friendly
@_refusals
def review_reject(
    ctx: typer.Context,
    decision_id: Annotated[int, typer.Argument()],
    note: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """The two records differ: they are never put to review again."""
    hub = options(ctx).hub()
    d = reject(hub.store, decision_id, actor=_me(), note=note)
    hub.close()
    console.print(f"#{d.id}: {d.left_id} and {d.right_id} are different records")


@friendly
@_refusals
def merge(
    ctx: typer.Context,
    survivor: Annotated[str, typer.Argument(help="the master id that stays")],
    loser: Annotated[str, typer.Argument(help="the master id merged into it")],
    reason: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """Merge two golden records: xrefs move to the survivor, the loser is retired."""
    hub = options(ctx).hub()
    done = merge_records(hub.store, hub.landscape, survivor, loser, actor=_me(), reason=reason)
    hub.close()
    console.print(f"merged {loser} into {survivor} (merge {done.id})")


@friendly
@_refusals
def unmerge(
    ctx: typer.Context,
    merge_id: Annotated[int, typer.Argument(help="the merge to undo")],
) -> None:
    """Undo a merge: the loser gets its source records back, both are recomputed."""
    hub = options(ctx).hub()
    done = unmerge_records(hub.store, hub.landscape, merge_id, actor=_me())
    hub.close()
    console.print(f"unmerged {done.loser_id} from {done.survivor_id} (merge {done.id})")


@friendly
@_refusals
def split(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="system:key of the source record to take out")],
    domain: Annotated[str, typer.Option(help="customer, supplier or item")] = "customer",
) -> None:
    """Take a source record out of its golden record into a new one (undo a wrong link)."""
    if ":" not in ref:
        fail(f"{ref!r} is not system:key")
    system, key = ref.split(":", 1)
    hub = options(ctx).hub()
    master = split_record(hub.store, hub.landscape, domain, system, key, actor=_me())
    hub.close()
    console.print(f"{ref} is now {master}")


@friendly
def remerge(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="customer, item, supplier, ...")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, change nothing")] = False,
) -> None:
    """Recompute a domain's golden records under the landscape as it is now."""
    hub = options(ctx).hub()
    if domain not in hub.landscape.policies:
        fail(f"no domain {domain!r} in the landscape ({', '.join(sorted(hub.landscape.policies))})")
    with hub.store.unit_of_work(write=False) as uow:
        total = next((c.golden for c in uow.domain_counts() if c.domain == domain), 0)
    done = 0
    with progress_bar() as bar, interruptible() as asked:
        task = bar.add_task(f"remerge {domain}", total=total)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            bar.advance(task, n)
            if asked:  # right after a page is committed
                raise KeyboardInterrupt

        try:
            report = run_remerge(
                hub.store, hub.landscape, domain, actor=_me(), dry_run=dry_run, progress=advance
            )
        except KeyboardInterrupt:
            bar.stop()
            hub.close()
            what = "looked at (nothing written)" if dry_run else "recomputed and committed"
            fail(
                f"stopped: {done:,} of {total:,} {domain} record(s) {what}; run it again to "
                "finish (records recomputed already change no more)",
                code=130,
            )
    hub.close()
    _remerge_summary(report, dry_run)


def _remerge_summary(report: RemergeReport, dry_run: bool) -> None:
    if dry_run:
        console.print(
            f"dry run, nothing written: of {report.examined:,} {report.domain} record(s), "
            f"{report.changed:,} would get a new version"
        )
    else:
        console.print(
            f"{report.examined:,} {report.domain} record(s) examined; {report.changed:,} "
            "got a new version"
        )
    if report.fields:
        table = Table("field", "records changed")
        for name, n in report.fields.most_common():
            table.add_row(name, f"{n:,}")
        console.print(table)
    for n, what in (
        (report.renewed, "source record(s) re-spelt by the canonical model"),
        (report.held, "guarded change(s) wait for approval (GET /v1/approvals)"),
        (report.keys_added, "natural key(s) indexed"),
        (report.keys_removed, "natural key(s) no record holds any more taken out of the index"),
    ):
        if n:
            console.print(f"  {n:,} {what}")
    if report.refused:
        # (The console prints no markup unless asked: these lines showed "[yellow]![/]".)
        console.print(
            f"  [yellow]![/] {report.refused:,} record(s) left as they were: recomputed, they "
            "would newly fail a quality rule (as ingest, remerge refuses that change)",
            markup=True,
        )
        for line in report.refusals:
            console.print(f"    {line}")
    if report.keys_moved:
        console.print(
            f"  {len(report.keys_moved):,} natural key(s) moved to the record whose golden "
            "value they are:"
        )
        _listed(report.keys_moved, "more")
    _listed(report.key_conflicts, "more key conflict(s)")
    if report.unwritable:
        console.print(
            f"  {len(report.unwritable):,} guarded field(s) kept as they are: no source may "
            "write them now (a source that may sends its value for approval):"
        )
        _listed(report.unwritable, "more")


def _listed(lines: list[str], more: str) -> None:
    """The first 20 lines, marked, and how many more."""
    for line in lines[:20]:
        console.print(f"  [yellow]![/] {escape(line)}", markup=True)
    if len(lines) > 20:
        console.print(f"  ... and {len(lines) - 20:,} {more}")
