"""`mastersync get`, `trace` and `status`: the read side."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from mastersync.cli.common import console, friendly, options
from mastersync.cli.render import (
    members_table,
    record_table,
    rules_table,
    summary_table,
    trace_table,
)
from mastersync.pipeline.queries import get_record, trace


@friendly
def get(
    ctx: typer.Context,
    domain: Annotated[
        str, typer.Argument(help="item, customer, supplier, location, price, inventory")
    ],
    ref: Annotated[str, typer.Argument(help="a master id, or system:key (erp:A100001)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a golden record with per-field provenance and its cross-references."""
    hub = options(ctx).hub()
    view = get_record(hub.store, domain, ref)
    if as_json:
        g = view.golden
        console.print_json(
            orjson.dumps(
                {
                    "master_id": g.master_id,
                    "domain": g.domain,
                    "version": g.version,
                    "attributes": g.attributes,
                    "provenance": g.provenance,
                    "quality": g.quality,
                    "xrefs": [
                        {"system": c.system, "key": c.key, "version": str(c.version)}
                        for c in view.members
                    ],
                }
            ).decode()
        )
    else:
        console.print(record_table(view))
        console.print(members_table(view))
    hub.close()


@friendly
def trace_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="a master id, or system:key")],
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain", "-d", help="the domain of system:key, where a key names records in several"
        ),
    ] = None,
) -> None:
    """Show a record's lineage: every source change, merge and event, oldest first."""
    hub = options(ctx).hub()
    result = trace(hub.store, ref, domain)
    console.print(trace_table(result, console.width))
    for event in result.events:
        console.print(
            f"  event {event.event_id} v{event.version} {event.kind}: "
            f"{', '.join(sorted(event.changes))}",
            markup=False,
        )
    hub.close()


@friendly
def status(ctx: typer.Context) -> None:
    """Golden records, source records and open exceptions per domain."""
    hub = options(ctx).hub()
    with hub.store.unit_of_work(write=False) as uow:
        counts = uow.domain_counts()
        by_rule = uow.exception_counts()
    console.print(summary_table([], counts))
    console.print(rules_table(by_rule))
    hub.close()
