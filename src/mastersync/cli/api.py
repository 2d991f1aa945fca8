"""`mastersync serve`, `consumers`, `api` and `audit`: the governed API from the command line."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mastersync.api.settings import SUCCESSORS
from mastersync.cli.common import console, errors, fail, friendly, options
from mastersync.cli.render import audit_view
from mastersync.pipeline.governance.audit import verify
from mastersync.pipeline.governance.consumers import ConsumerError, add_consumer, rotate_key
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.queries import get_record

consumers_app = typer.Typer(help="API consumers and their credentials.", no_args_is_help=True)
api_app = typer.Typer(help="The API: version adoption, signing keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys that sign access tokens.", no_args_is_help=True)
api_app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="The audit log of golden-record writes.", no_args_is_help=True)


@friendly
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    max_body: Annotated[int, typer.Option(help="largest request body, bytes")] = 1_048_576,
    timeout: Annotated[float, typer.Option(help="seconds a request may take")] = 10.0,
) -> None:
    """Serve the API (OpenAPI document at /openapi.json, docs at /docs)."""
    import uvicorn

    from mastersync.api.app import create_app
    from mastersync.api.settings import ApiSettings

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        errors.print(
            f"[yellow]warning:[/] listening on {escape(host)}, beyond this machine", markup=True
        )
    hub = options(ctx).hub()
    app = create_app(hub, ApiSettings(max_body_bytes=max_body, timeout_seconds=timeout))
    console.print(f"mastersync API on http://{host}:{port} (OpenAPI: /openapi.json)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=5)
    finally:
        hub.close()


@consumers_app.command("add")
@friendly
def consumers_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the consumer's name (its OAuth2 client_id)")],
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help="customer:read, item:write, approve, ...")
    ],
    person: Annotated[
        str | None, typer.Option(help="who answers for it (four-eyes compares persons)")
    ] = None,
    system: Annotated[str | None, typer.Option(help="the landscape system it writes as")] = None,
    channel: Annotated[
        str | None, typer.Option(help="a channel partner: sees only its channel and customers")
    ] = None,
    rate: Annotated[int, typer.Option(help="calls per minute")] = 600,
    quota: Annotated[int | None, typer.Option(help="calls per UTC day")] = None,
) -> None:
    """Register a consumer and print its API key (shown once; it is stored hashed)."""
    hub = options(ctx).hub()
    try:
        consumer, key = add_consumer(
            hub.governance,
            hub.landscape,
            name,
            scopes=scope,
            person=person,
            system=system,
            partner_channel=channel,
            rate_per_minute=rate,
            quota_per_day=quota,
        )
    except ConsumerError as exc:
        fail(str(exc))
    finally:
        hub.close()
    console.print(
        f"consumer [bold]{escape(consumer.name)}[/] ({escape(', '.join(consumer.scopes))})",
        markup=True,
    )
    console.print("API key (X-API-Key, or client_secret for POST /oauth/token), shown once:")
    console.print(key, highlight=False, soft_wrap=True)


@consumers_app.command("list")
@friendly
def consumers_list(ctx: typer.Context) -> None:
    """Every consumer with its scopes, limits and status (never its key)."""
    hub = options(ctx).hub()
    table = Table("name", "person", "system", "scopes", "channel", "limits", "status", "since")
    for c in hub.governance.consumers():
        limits = f"{c.rate_per_minute}/min" + (
            f", {c.quota_per_day}/day" if c.quota_per_day else ""
        )
        table.add_row(
            c.name,
            c.person,
            c.system or "-",
            " ".join(c.scopes),
            c.partner_channel or "-",
            limits,
            c.status,
            c.created_at[:19],
        )
    hub.close()
    console.print(table)


@consumers_app.command("revoke")
@friendly
def consumers_revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="the consumer")]
) -> None:
    """Revoke a consumer: its key and its tokens stop working at once."""
    hub = options(ctx).hub()
    done = hub.governance.revoke(name, utc_now())
    hub.close()
    if not done:
        fail(f"no active consumer {name!r}")
    console.print(f"revoked {name}")


def _deprecated_routes() -> frozenset[str]:
    """The deprecated operations as usage counts them: ``METHOD /path``."""
    # A key of SUCCESSORS that is a bare path names its search: the GET that deprecate_v1
    # marks (system.py); the POST on the same path is the upsert, which has no successor.
    return frozenset(k if " " in k else f"GET {k}" for k in SUCCESSORS)


@api_app.command("adoption")
@friendly
def adoption(ctx: typer.Context) -> None:
    """Calls per consumer and API version: who still uses v1, who moved to v2."""
    hub = options(ctx).hub()
    usage = hub.governance.usage()
    hub.close()
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    last: dict[str, str] = {}
    deprecated: dict[str, int] = defaultdict(int)
    # Calls counted before usage was keyed by method (route "/v1/items" alone) to a path
    # with a deprecated method may have been either: not guessed, reported under the table.
    unsure: dict[tuple[str, str], int] = defaultdict(int)
    routes = _deprecated_routes()
    paths = {r.partition(" ")[2] for r in routes}
    for u in usage:
        per[u.consumer][u.api_version] += u.calls
        last[u.consumer] = max(last.get(u.consumer, ""), u.last_at)
        if u.route in routes:
            deprecated[u.consumer] += u.calls
        elif " " not in u.route and u.route in paths:
            unsure[u.consumer, u.route] += u.calls
    table = Table(
        "consumer", "v1 calls", "v2 calls", "v2 share", "deprecated v1 calls", "last call"
    )
    for consumer in sorted(per):
        v1, v2 = per[consumer].get("v1", 0), per[consumer].get("v2", 0)
        share = f"{v2 / (v1 + v2):.0%}" if v1 + v2 else "-"
        table.add_row(
            consumer, str(v1), str(v2), share, str(deprecated[consumer]), last[consumer][:19]
        )
    console.print(table)
    if not per:
        console.print("no calls counted yet")
    for (consumer, path), calls in sorted(unsure.items()):
        console.print(
            f"{consumer}: {calls} earlier call(s) to {path} were counted without their method "
            "(a deprecated one or not) and are not in its deprecated v1 calls",
            highlight=False,
            markup=False,
        )


@keys_app.command("list")
@friendly
def keys_list(ctx: typer.Context) -> None:
    """Signing keys: the newest active one signs, every active one verifies."""
    hub = options(ctx).hub()
    keys = hub.governance.signing_keys(include_retired=True)
    hub.close()
    table = Table("kid", "created", "retired", "role")
    signer = next((k.kid for k in keys if k.retired_at is None), None)
    for k in keys:
        role = "signs" if k.kid == signer else ("retired" if k.retired_at else "verifies")
        table.add_row(k.kid, k.created_at[:19], (k.retired_at or "-")[:19], role)
    console.print(table)


@keys_app.command("rotate")
@friendly
def keys_rotate(ctx: typer.Context) -> None:
    """Add a new signing key; tokens signed by older keys stay valid until those retire."""
    hub = options(ctx).hub()
    key = rotate_key(hub.governance)
    hub.close()
    console.print(f"new signing key {key.kid}")


@keys_app.command("retire")
@friendly
def keys_retire(ctx: typer.Context, kid: Annotated[str, typer.Argument()]) -> None:
    """Retire a key: tokens it signed stop working."""
    hub = options(ctx).hub()
    done = hub.governance.retire_key(kid, utc_now())
    hub.close()
    if not done:
        fail(f"no active signing key {kid!r}")
    console.print(f"retired {kid}")


@audit_app.command("verify")
@friendly
def audit_verify(ctx: typer.Context) -> None:
    """Check the hash chain of the audit log and that no golden version lacks its entry."""
    hub = options(ctx).hub()
    report = verify(hub.governance)
    hub.close()
    for brk in report.breaks[:50]:
        errors.print(f"  entry {brk.seq}: {brk.reason}", markup=False)
    for master, version in report.unaudited[:50]:
        errors.print(f"  {master} v{version} has no audit entry", markup=False)
    if not report.ok:
        fail(
            f"the audit log is not intact: {len(report.breaks)} break(s), "
            f"{len(report.unaudited)} unaudited change(s)",
            code=2,
        )
    console.print(f"audit log intact: {report.entries} entries, head {report.head[:16]}")


@audit_app.command("show")
@friendly
def audit_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="a master id, or system:key")],
    domain: Annotated[str | None, typer.Option(help="the domain of a system:key")] = None,
) -> None:
    """Every write to one golden record: who, when, through what, each field before/after."""
    hub = options(ctx).hub()
    master = get_record(hub.store, domain, ref).golden.master_id
    entries = hub.governance.audit(master_id=master)
    hub.close()
    console.print(audit_view(entries, console.width))
