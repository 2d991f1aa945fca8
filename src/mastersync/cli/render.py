"""Rich renderings of records, traces, reports and the inbox."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mastersync.domain.delivery import SubscriptionStats
from mastersync.domain.governance.audit import AuditEntry
from mastersync.domain.records import ExceptionEntry
from mastersync.pipeline.ingest import BatchReport
from mastersync.pipeline.queries import RecordView, Trace
from mastersync.ports.store import DomainCounts, SignatureGroup

# Below this many columns, lists whose rows hold long text (the inbox, lineage) are shown
# as a block per row: as tables of seven or eight columns, in 80 columns every cell
# wrapped into a few letters a line ("dead_lett" / "er", a message over eight lines).
STACK_BELOW = 120


def _block(head: str, *lines: str, width: int) -> Text:
    """One row as a block: a head line, then indented lines, each wrapped to the width
    (three lines at most: a dead letter's reason comes at the end of its message)."""
    width = max(width, 40)
    wrapped = textwrap.wrap(head, width, subsequent_indent="    ", break_on_hyphens=False)
    text = Text("\n".join(wrapped), style="bold", no_wrap=True, overflow="ellipsis")
    for line in lines:
        if line:
            folded = textwrap.wrap(
                line,
                width,
                initial_indent="  ",
                subsequent_indent="  ",
                max_lines=3,
                placeholder=" …",
                break_on_hyphens=False,
            )
            text.append("\n" + "\n".join(folded), style="")
    return text


def short(value: Any, width: int = 60) -> str:
    """A value in one line, cut to ``width``."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def compact_table(title: str, *, tight: bool = False) -> Table:
    """A table that reads in 80 columns: no vertical rules, two spaces between
    columns, one if ``tight`` (bordered, the demo's tables came out as "custom…" and
    "accept…" there)."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0 if tight else (0, 1, 0, 0),
    )


def record_table(view: RecordView) -> Table:
    """A golden record, one row per field with where its value came from."""
    g = view.golden
    # Without vertical rules, and field names, versions and times never broken: in 80
    # columns a bordered table split GTINs and field names over two lines.
    table = compact_table(f"{g.domain} {g.master_id}  v{g.version}  quality {g.quality:.2f}")
    table.add_column("field", no_wrap=True)
    # At least a GTIN-14 wide: identifiers are what people read off this table.
    table.add_column("value", overflow="fold", min_width=14)
    table.add_column("from", overflow="fold")
    # A source version may be a timestamp as long as the time accepted: it folds.
    table.add_column("version", overflow="fold")
    table.add_column("accepted at", overflow="fold")
    for name, value in g.attributes.items():
        prov = g.provenance.get(name, {})
        table.add_row(
            name,
            short(value, 70),
            f"{prov.get('system', '?')}:{prov.get('key', '?')}",
            prov.get("version", ""),
            prov.get("at", "")[:19].replace("T", " "),
        )
    return table


def members_table(view: RecordView) -> Table:
    """The source records linked to a golden record (its cross-references)."""
    table = compact_table("cross-references")
    table.add_column("system", no_wrap=True)
    table.add_column("key", overflow="fold")
    table.add_column("version", overflow="fold")
    table.add_column("received", no_wrap=True)
    table.add_column("fields", overflow="fold")
    for c in view.members:
        table.add_row(
            c.system,
            c.key,
            str(c.version),
            c.received_at[:19].replace("T", " "),
            ", ".join(sorted(c.values)),
        )
    return table


def trace_table(trace: Trace, width: int = 200) -> RenderableType:
    """A record's lineage, oldest first (a block per entry in a narrow terminal)."""
    title = f"lineage of {trace.master_id}"
    table = Table(title=title, title_justify="left")
    for col in ("at", "stage", "outcome", "source", "golden", "what", "trace"):
        table.add_column(col, overflow="fold")
    blocks: list[RenderableType] = [Text(title, style="italic")]
    for e in trace.lineage:
        d = e.detail
        what = []
        if d.get("identified_by"):
            what.append(f"identified by {d['identified_by']}")
        if d.get("changed"):
            what.append("changed " + ", ".join(d["changed"]))
        if d.get("violations"):
            what.append("ownership violation: " + ", ".join(d["violations"]))
        if d.get("held_for_approval"):
            # Taken out of the change until a second person confirms it (four-eyes).
            what.append("held for approval: " + ", ".join(d["held_for_approval"]))
        if d.get("warnings"):
            what.append("quality warning: " + ", ".join(d["warnings"]))
        for p in d.get("problems", []):
            what.append(p)
        if d.get("locator"):
            what.append(f"from {d['locator']}")
        if e.stage == "deliver" and d.get("subscription"):
            # A receipt: which subscription, how many tries, how long from acceptance.
            tries = d.get("attempts")
            what.append(
                ", ".join(
                    part
                    for part in (
                        f"{d['subscription']} {d.get('operation') or ''}".strip(),
                        f"attempt {tries}" if tries else "",
                        f"{d['latency_ms']:,.0f} ms after acceptance"
                        if d.get("latency_ms") is not None
                        else "",
                        "(a duplicate the consumer had)" if d.get("duplicate") else "",
                        f"(replay {d['replay']})" if d.get("replay") else "",
                    )
                    if part
                )
            )
        # A delivery that never got the consumer's key has none to show; a merge, split or
        # remerge came from no system but a person.
        if e.system is None:
            source = f"by {d['by']}" if d.get("by") else "-"
        else:
            source = f"{e.system}:{e.source_key}" if e.source_key else f"{e.system}"
        if e.source_version is not None:
            source += f" @{e.source_version}"
        golden = f"v{e.golden_version}" if e.golden_version else "-"
        table.add_row(
            e.at[:19], e.stage, e.outcome, source, golden, "; ".join(what), e.trace_id[-12:]
        )
        head = f"{e.at[:19].replace('T', ' ')}  {e.stage} {e.outcome}  {golden}  {source}"
        blocks.append(_block(head, *what, f"trace {e.trace_id}", width=width))
    return table if width >= STACK_BELOW else Group(*blocks)


def report_table(reports: list[BatchReport], title: str = "ingested") -> Table:
    """Outcome counts per batch."""
    table = compact_table(title, tight=True)
    # Names and counts whole; a long file name folds over lines instead of squeezing the
    # counts into "re…" and "acc…".
    for col in ("system", "domain"):
        table.add_column(col, no_wrap=True, min_width=len(col))
    table.add_column("source", overflow="fold")
    for col in ("received", "accepted", "unchanged", "stale", "rejected"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for r in reports:
        o = r.outcomes
        table.add_row(
            r.system,
            r.domain,
            r.source,
            str(r.received),
            str(o["accepted"]),
            str(o["unchanged"]),
            str(o["stale"]),
            Text(str(o["rejected"]), style="red") if o["rejected"] else "0",
        )
    return table


def summary_table(reports: list[BatchReport], counts: list[DomainCounts]) -> Table:
    """Per domain: source records in and what came of them (with the batches of this run),
    golden records out."""
    received: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    for r in reports:
        received[r.domain] += r.received
        outcomes.setdefault(r.domain, Counter()).update(r.outcomes)
    by_domain = {c.domain: c for c in counts}
    table = compact_table("summary per domain")
    # The run's columns only where there was a run: `status` has none, and showed a
    # column of dashes for each.
    run = ("records in", "accepted", "stale", "rejected") if reports else ()
    table.add_column("domain", no_wrap=True)
    for col in (*run, "golden records", "source records linked", "open exceptions"):
        # Headers of several words wrap (onto two or three lines) before a number is cut.
        table.add_column(col, justify="right", no_wrap=" " not in col)
    for domain in sorted(set(received) | set(by_domain)):
        o = outcomes.get(domain, Counter())
        c = by_domain.get(domain)
        ran = (
            [str(received[domain]), str(o["accepted"]), str(o["stale"]), str(o["rejected"])]
            if reports
            else []
        )
        table.add_row(
            domain,
            *ran,
            str(c.golden if c else 0),
            str(c.source_records if c else 0),
            str(c.open_exceptions if c else 0),
        )
    return table


def rules_table(open_by_rule: dict[tuple[str, str, str], int]) -> Table:
    """Open exceptions per domain, kind and rule."""
    table = compact_table("open exceptions by rule")
    for col in ("domain", "kind", "rule", "open"):
        table.add_column(col, justify="right" if col == "open" else "left", no_wrap=True)
    for (domain, kind, rule), n in sorted(
        open_by_rule.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][2])
    ):
        table.add_row(domain, kind.replace("_", " "), rule, str(n))
    return table


def exceptions_table(
    entries: list[ExceptionEntry], width: int = 200, total: int | None = None
) -> RenderableType:
    """Inbox entries, one line each (a block each in a narrow terminal); ``total``: how many
    match, when more than these."""
    title = f"{len(entries)} inbox entries"
    if total is not None and total > len(entries):
        title = f"{len(entries)} of {total} inbox entries (newest first; --limit shows more)"
    table = Table(title=title, title_justify="left")
    for col in ("id", "status", "kind", "record", "field", "rule", "message", "tries"):
        table.add_column(col, overflow="fold")
    blocks: list[RenderableType] = [Text(title, style="italic")]
    for e in entries:
        record = f"{e.system}.{e.domain}:{e.source_key or e.locator}"
        table.add_row(
            str(e.id),
            e.status.value,
            e.kind,
            record,
            e.field or "-",
            e.rule,
            short(e.message, 70),
            str(e.attempts),
        )
        head = (
            f"#{e.id} {e.status.value}  {e.kind}/{e.rule}  field {e.field or '-'}  "
            f"tries {e.attempts}"
        )
        blocks.append(_block(head, record, e.message, width=width))
    return table if width >= STACK_BELOW else Group(*blocks)


def groups_table(
    groups: list[SignatureGroup], width: int = 200, status: str = "open"
) -> RenderableType:
    """Inbox entries grouped by error signature (a block each in a narrow terminal)."""
    title = f"{'all' if status == 'all' else status} entries by signature"
    table = Table(title=title, title_justify="left")
    for col in ("signature", "count", "kind", "where", "field", "rule", "example"):
        table.add_column(col, overflow="fold")
    blocks: list[RenderableType] = [Text(title, style="italic")]
    for g in groups:
        where = f"{g.system}.{g.domain}"
        table.add_row(
            g.signature, str(g.count), g.kind, where, g.field or "-", g.rule, short(g.example, 60)
        )
        # The signature whole, first: it is what retry and ignore --signature take.
        head = f"{g.signature}  {g.count}x {g.kind}/{g.rule}  {where}  field {g.field or '-'}"
        blocks.append(_block(head, f"e.g. {g.example}", width=width))
    return table if width >= STACK_BELOW else Group(*blocks)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def deliveries_table(
    stats: list[SubscriptionStats],
    known: Collection[str] | None = None,
    width: int | None = None,
) -> RenderableType:
    """Per subscription: lag, queue depths, latency; those not among ``known`` (gone from
    the landscape) marked, since nothing attempts their open deliveries any more. Where the
    table does not fit in ``width`` columns, a block per subscription."""
    # Ten columns in 80: the unit in the header, names never cut.
    table = compact_table("deliveries per subscription")
    widest = max((len(s.subscription) for s in stats), default=12)
    table.add_column("subscription", no_wrap=True, min_width=widest)
    for col in ("lag", "pending", "retrying", "dead", "delivered", "skipped", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right", no_wrap=True)
    gone = {s.subscription for s in stats if known is not None and s.subscription not in known}
    for s in stats:
        table.add_row(
            f"{s.subscription} *" if s.subscription in gone else s.subscription,
            str(s.lag),
            str(s.pending),
            str(s.retrying),
            Text(str(s.dead), style="red") if s.dead else "0",
            str(s.delivered),
            str(s.skipped),
            _ms(s.p50_ms),
            _ms(s.p99_ms),
        )
    # The oldest open delivery of each subscription with any, under the table: as an
    # eleventh column it did not fit in 80 and was dropped, cutting p99 too.
    waiting = [
        f"  {s.subscription}: oldest open delivery from {s.oldest_open_at[:19].replace('T', ' ')}"
        for s in stats
        if s.oldest_open_at and s.subscription not in gone
    ]
    waiting += [
        f"  * {name}: not in the landscape; nothing attempts its open deliveries"
        for name in sorted(gone)
    ]
    # Under the table too (no eleventh column fits in 80).
    waiting += [
        f"  {s.subscription}: {s.unchanged:,} of the skipped sent it nothing new (unchanged)"
        for s in stats
        if s.unchanged
    ]
    # The figures above count each version once (a replayed one by what the replay made of
    # it): the replays themselves are said here, or one in flight would not show at all.
    waiting += [
        f"  {s.subscription}: {s.replayed:,} sent again by replays"
        + (f", {s.replaying:,} of them still open" if s.replaying else "")
        for s in stats
        if s.replayed
    ]
    shown: RenderableType = table
    if width is not None and _needs(table) > width:
        # Names are never cut, so a long one (or six-digit latencies) pushed p99 off the
        # right edge of an 80-column terminal: the figures go on a line of their own.
        blocks = [_stats_block(s, s.subscription in gone) for s in stats]
        shown = Group(Text("deliveries per subscription", style="italic"), *blocks)
    return Group(shown, Text("\n".join(waiting))) if waiting else shown


def _needs(table: Table) -> int:
    """The columns a table of uncut cells takes."""
    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).minimum


def _stats_block(s: SubscriptionStats, gone: bool) -> Text:
    """One subscription's figures under its name."""
    block = Text(f"{s.subscription} *" if gone else s.subscription, style="bold")
    block.append(f"\n  lag {s.lag}  pending {s.pending}  retrying {s.retrying}  dead {s.dead}")
    block.append(f"\n  delivered {s.delivered}  skipped {s.skipped}  ")
    block.append(f"p50 {_ms(s.p50_ms)} ms  p99 {_ms(s.p99_ms)} ms")
    return block


def _short(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def audit_view(entries: Sequence[AuditEntry], width: int = 200) -> RenderableType:
    """A record's audit log: each write's fields before and after (a block per write in a
    narrow terminal, where ten columns left a few letters each)."""
    table = Table("#", "at", "v", "action", "who", "through", "request", "field", "before", "after")
    blocks: list[RenderableType] = []
    for e in entries:
        changes = sorted(e.field_changes().items())
        head = (str(e.seq), e.at[:19], str(e.version), e.action, e.actor, e.channel)
        for i, (name, change) in enumerate(changes):
            before, after = _short(change.get("before")), _short(change.get("after"))
            row = (*head, e.request_id[:12]) if i == 0 else ("",) * 7
            table.add_row(*row, name, before, after)
        line = f"#{e.seq}  {e.at[:19].replace('T', ' ')}  v{e.version} {e.action}"
        lines = [f"by {e.actor} through {e.channel}", f"request {e.request_id}"]
        lines += [
            f"{name}: {_short(c.get('before'))} -> {_short(c.get('after'))}" for name, c in changes
        ]
        blocks.append(_block(line, *lines, width=width))
    return table if width >= STACK_BELOW else Group(*blocks)
