"""`mastersync run`, `deliveries` and `replay`: the event-driven half."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mastersync.backends.nats.bus import BusSettings, NatsFeed, NatsRelay, StreamMissing
from mastersync.bootstrap import Hub, open_feed, resolve_bus_url
from mastersync.cli import early
from mastersync.cli.common import console, errors, fail, friendly, options
from mastersync.cli.progress import progress_bar
from mastersync.cli.render import deliveries_table
from mastersync.connectors.registry import applies_keys_once
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.versions import parse_timestamp
from mastersync.domain.words import a_or_an
from mastersync.pipeline.distribution.replay import (
    DeadLetterFate,
    dead_letter_fates,
    plan_replay,
    queue_and_settle,
)
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.queries import NotFound, master_id_of
from mastersync.ports.store import ReplaySelection

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

    from uvicorn import Server

    # What `signal.getsignal` gives and `signal.signal` takes.
    _Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

_BUS_HELP = (
    "nats://host:port (tls:// over TLS; a cluster's servers comma-separated; default: the outbox)"
)


@friendly
def run(
    ctx: typer.Context,
    bus: Annotated[str | None, typer.Option(help=_BUS_HELP)] = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option("--subscription", "-s", help="only these subscriptions (repeatable)"),
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="stop once everything queued is delivered")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="with --until-idle: give up after seconds")
    ] = 600.0,
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT to receive webhooks on (POST /hooks/SYSTEM or /hooks/SYSTEM/DOMAIN)"
        ),
    ] = None,
) -> None:
    """Run the hub: relay, dispatch and deliver (SIGTERM drains and exits cleanly)."""
    # From the start: a signal while the hub is being built (imports, the store, the
    # landscape) ended the process with 143 and no word. It is kept, and the hub, once
    # running, stops at once, draining what is in flight. Those that came during the
    # imports the entry point kept (`early`), in the list its handlers still append to.
    signalled = early.kept()
    previous = {
        sig: signal.signal(sig, lambda n, _frame: signalled.append(n)) for sig in early.STOPS
    }
    try:
        _run(ctx, bus, subscription, until_idle, timeout, listen, signalled)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    ctx: typer.Context,
    bus: str | None,
    subscription: list[str] | None,
    until_idle: bool,
    timeout: float,
    listen: str | None,
    signalled: list[int],
) -> None:
    hub = options(ctx).hub()
    try:
        server = _ready(hub, subscription, listen)
    except BaseException:
        # Refused: nothing started, and the store's connections are given back.
        hub.close()
        raise
    url = resolve_bus_url(bus, hub.landscape)
    distribution = hub.distribution(url, subscription)
    distribution.worker_init = block_stops
    names = ", ".join(s.id for s in distribution.subscriptions) or "none"
    if url:
        # Named without the credentials a URL may carry (the output ends up in logs).
        settings = BusSettings(url)
        where = f"{settings.where} (stream {settings.stream})"
    else:
        where = "outbox (embedded)"
    console.print(f"hub running: subscriptions {names}; bus {where}")
    started = time.perf_counter()
    if server is not None:
        console.print(f"receiving webhooks at http://{listen}/hooks/SYSTEM")

    async def hub_main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        kept = {sig: signal.getsignal(sig) for sig in early.STOPS}
        for sig in early.STOPS:
            loop.add_signal_handler(sig, stop.set)
        try:
            if signalled:
                stop.set()
            if until_idle:
                # A signal drains and stops here too (SIGTERM ended it with 143, no summary;
                # SIGINT was not heard at all).
                await distribution.run_until_idle(timeout=timeout, told=stop)
                return
            await distribution.run(stop)
        finally:
            _keep_after_loop(loop, kept)

    async def main() -> None:
        if server is None:
            await hub_main()
            return
        served = asyncio.create_task(server.serve())
        try:
            await hub_main()
        finally:
            # Pushes in flight finish (and are acknowledged) before the hub's store closes.
            server.should_exit = True
            await served

    asyncio.run(main())
    t = distribution.totals
    # What came in (polled sources), went onto the bus and reached the consumers. Feeds
    # that hand events to deliverers directly queue nothing: "queued" only when it did.
    relayed = f"relayed {t.relayed}, " if url else ""
    queued = f"queued {t.queued}, " if t.queued else ""
    console.print(
        f"stopped after {time.perf_counter() - started:.1f} s: ingested {t.ingested}, "
        f"{relayed}{queued}delivered {t.delivered}, retried {t.retried}, dead {t.dead}, "
        f"skipped {t.skipped}"
    )
    if until_idle and not t.idle:
        # A script must tell "all delivered" from "gave up": the exit code says which.
        hub.close()
        left = "; ".join(t.left) or "nothing it could name (the log above may say more)"
        if t.told:
            fail(f"stopped by a signal before it was idle; left: {left}", code=2)
        fail(f"not idle after {timeout:g} s; left: {left}", code=2)
    hub.close()


def block_stops() -> None:
    """Leave stop signals to the main thread (run first in each of the hub's workers).

    A process-wide SIGTERM goes to any thread that does not block it: while the hub's
    handlers were put back after its loop (the main thread blocking the signals), one
    delivered to a worker thread met the default action and ended the process with 143.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, set(early.STOPS))


def _keep_after_loop(
    loop: asyncio.AbstractEventLoop, kept: Mapping[signal.Signals, _Handler]
) -> None:
    """Give the stop signals back to the handlers that keep them, as the hub's loop ends.

    Closing the loop (``asyncio.run``) set them to the default: a second SIGTERM while the
    hub printed its summary ended it with 143. Blocked meanwhile: one that comes between
    the loop letting go and the handler taking over is delivered to the handler.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(kept))
    try:
        for sig, handler in kept.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _ready(hub: Hub, subscription: list[str] | None, listen: str | None) -> Server | None:
    """Refuse what would break the hub once running; the webhook server, bound, if asked."""
    # A store whose schema is behind is refused here, as `status` refuses it (opening a
    # unit of work checks the schema): the hub started anyway, and each of its loops
    # logged a SchemaOutdated traceback for ever.
    with hub.store.unit_of_work(write=False):
        pass
    unknown = set(subscription or []) - set(hub.landscape.subscriptions)
    if unknown:
        fail(
            f"unknown subscription(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted(hub.landscape.subscriptions)) or 'none'}"
        )
    if not listen:
        return None
    from mastersync.api.webhooks import webhook_server

    # Bound before anything starts: a port already taken is one error line, not a hub
    # torn down mid-round by uvicorn's exit.
    try:
        return webhook_server(hub, listen)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")


@friendly
def deliveries(
    ctx: typer.Context,
    bus: Annotated[str | None, typer.Option(help=_BUS_HELP)] = None,
) -> None:
    """Per subscription: lag, pending, retrying, dead, delivered, skipped (each version
    once), p50/p99 latency; replays under the table."""
    hub = options(ctx).hub()
    subs = {s.id: s.domain for s in hub.landscape.subscriptions.values()}
    with hub.store.unit_of_work(write=False) as uow:
        stats = uow.delivery_stats(subs)
        relayed = uow.cursor(NatsRelay.cursor)
    url = resolve_bus_url(bus, hub.landscape)
    if not url and relayed:
        # A hub ran with --bus: its subscriptions read NATS, and their outbox cursors stand
        # still, so lag counted from the outbox is every event since.
        errors.print(
            "note: a hub relays this store's events to NATS (--bus); lag below is counted "
            "from the outbox, which subscriptions on the bus do not read: give --bus (or "
            "`bus:` in the landscape) for their lag on the bus"
        )
    if url:
        # On a bus, lag is what the subscription's consumer has not taken yet.
        feed, relay = open_feed(hub.store, url)
        assert isinstance(feed, NatsFeed)

        async def lags() -> dict[str, int]:
            # Looked at, not made: a stream or consumer made here came back empty after a
            # deletion, and the relay took it for the one it had published to.
            try:
                # Events not on the bus yet count towards the lag of their domain's
                # subscriptions only (every subscription carried every domain's).
                backlog = await relay.backlog_by_domain() if relay else {}
                return {s: backlog.get(d, 0) + await feed.peek_lag(s, d) for s, d in subs.items()}
            finally:
                await feed.close()
                if relay:
                    await relay.close()

        try:
            lag = asyncio.run(lags())
        except ConnectionError as exc:
            fail(f"{exc}; without --bus, lag is counted from the outbox")
        except StreamMissing as exc:
            errors.print(
                f"note: {exc} (no hub has run on it yet, or it was deleted): lag below is "
                "counted from the outbox"
            )
            lag = {}
        stats = [replace(s, lag=lag.get(s.subscription, s.lag)) for s in stats]
    console.print(deliveries_table(stats, subs, console.width))
    hub.close()


@friendly
def replay(
    ctx: typer.Context,
    subscription: Annotated[str, typer.Option("--subscription", "-s")],
    since: Annotated[str | None, typer.Option(help="events from this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="... up to this time")] = None,
    master: Annotated[
        str | None, typer.Option(help="one record's events: its master id or SYSTEM:KEY")
    ] = None,
    event: Annotated[str | None, typer.Option(help="one event")] = None,
    signature: Annotated[
        str | None, typer.Option(help="open dead letters of an error signature")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, do not queue")] = False,
) -> None:
    """Queue past events of a subscription again; consumers apply nothing twice."""
    if sum(x is not None for x in (since, master, event, signature)) != 1:
        fail("choose exactly one of --since, --master, --event, --signature")
    if until is not None and since is None:
        fail("--until goes with --since")
    # As the outbox keeps times (fixed-width UTC): "yesterday" or "12/01/2026" compared as
    # text selected nothing, or the wrong window, without a word.
    since, until = _instant("--since", since), _instant("--until", until)
    if since is not None and until is not None and until < since:
        fail(f"--until {until} is before --since {since}")
    hub = options(ctx).hub()
    sub = hub.landscape.subscriptions.get(subscription)
    if sub is None:
        fail(
            f"unknown subscription {subscription!r}; known: "
            f"{', '.join(sorted(hub.landscape.subscriptions)) or 'none'}"
        )
    if master is not None:
        # As `get` and `trace` take it: a master id, or the key a system knows it by.
        try:
            master = master_id_of(hub.store, sub.domain, master)
        except NotFound as exc:
            fail(str(exc))
    selection = ReplaySelection(subscription, since, until, master, event, signature)
    # As the deliverer decides (a consumer that applies whatever comes gets nothing behind
    # the version it holds), so that what the replay says of dead letters is what it does.
    keyed = applies_keys_once(hub.landscape.config.systems[sub.system].connector)
    plan = plan_replay(hub.store, selection, sub.domain, new_id, keyed=keyed)
    if event is not None and not plan.events:
        # A mistyped event id (or one of another domain) said "0 event(s) selected" and
        # exited 0, where an unknown --master is an error.
        why = _event_elsewhere(hub, event, sub.domain, subscription)
        hub.close()
        fail(why)
    if master is not None and not plan.events:
        # Likewise a master id (as opposed to SYSTEM:KEY, looked up above) no record has.
        with hub.store.unit_of_work(write=False) as uow:
            record = uow.golden(master)
        if record is None or record.domain != sub.domain:
            hub.close()
            fail(
                f"no golden record {master!r}"
                if record is None
                else f"{master} is {a_or_an(record.domain)} record; subscription {subscription} "
                f"carries {sub.domain}"
            )
    console.print(f"{len(plan.events)} event(s) of {sub.domain} selected for {subscription}")
    for _, e in plan.events[:10]:
        console.print(f"  {e.occurred_at[:19]} {e.master_id} v{e.version} {e.kind}", markup=False)
    if dry_run or not plan.events:
        # What the replay would close, decided as it would be: a dry run that listed only
        # the events could not tell a dead letter sent again from one a newer version made
        # moot.
        _dead_letters(dead_letter_fates(hub.store, plan, sub.domain), "would close")
        hub.close()
        return
    with progress_bar() as bar:
        task = bar.add_task(f"replay {plan.replay_id}", total=len(plan.events))
        done = queue_and_settle(
            hub.store, plan, sub.domain, utc_now, lambda n: bar.advance(task, n)
        )
    console.print(
        f"queued {done.queued} deliveries as replay {plan.replay_id}; `mastersync run` sends them"
    )
    _dead_letters(done.settled, "closed")
    hub.close()


def _event_elsewhere(hub: Hub, event: str, domain: str, subscription: str) -> str:
    """Why ``--event`` selected nothing: an event of another domain, or none at all."""
    only = ReplaySelection(subscription, event_id=event)
    with hub.store.unit_of_work(write=False) as uow:
        for other in sorted(set(DOMAINS) - {domain}):
            if uow.replay_events(only, other):
                return (
                    f"event {event!r} is of domain {other}; subscription {subscription} "
                    f"carries {domain}"
                )
    return f"unknown event {event!r} (no event in the outbox has that id)"


def _dead_letters(fates: list[DeadLetterFate], done: str) -> None:
    """The open dead letters of the replayed versions and what the replay does for each."""
    if not fates:
        return
    resent = sum(f.resent for f in fates)
    console.print(
        f"{done} {len(fates)} open dead letter(s) of these versions: {resent} sent again, "
        f"{len(fates) - resent} superseded (nothing sent)"
    )
    for f in fates[:10]:
        what = "sent again" if f.resent else f.note
        console.print(f"  #{f.entry_id} {f.master_id} v{f.version}: {what}", markup=False)
    if len(fates) > 10:
        console.print(f"  … and {len(fates) - 10} more (`mastersync exceptions list`)")


def _instant(option: str, text: str | None) -> str | None:
    """An ISO 8601 date or time given on the command line, as the store's UTC text."""
    if text is None:
        return None
    try:
        return parse_timestamp(text, None, dt.UTC)
    except ValueError:
        fail(f"{option}: {text!r} is not a date or time (ISO 8601: 2026-12-01, 2026-12-01T08:00Z)")
