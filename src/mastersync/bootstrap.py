"""The composition root: URL -> store backend, path -> landscape. The only place that knows
every concrete implementation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mastersync.connectors import registry
from mastersync.connectors.files.dropfolder import DropFolder
from mastersync.connectors.files.settings import file_settings
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.landscape import load_landscape
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.inbound import Poll, incremental_poller, parked_poller, poller
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.feed import EventFeed, Relay
from mastersync.ports.governance import Governance
from mastersync.ports.store import Store

DEFAULT_LANDSCAPE = "landscape.yaml"
DEFAULT_STORE_FILE = "mastersync.db"
SCHEMES = ("sqlite:///path", "postgresql://user@host:port/database")


class BootstrapError(Exception):
    """The hub cannot be assembled from the given settings."""


def shown_url(url: str) -> str:
    """The URL as it may be printed: its password, if any, replaced by ***."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        pass
    # Not parseable, so not split by SQLAlchemy: hide all from the first ":" after the user
    # to the last "@" before any query (a password may hold "/", ":" or "@") ...
    if "@" in url.split("?", 1)[0]:
        return re.sub(r"^([\w+.-]+://[^:/@?]*):[^?]*@", r"\1:***@", url)
    # ... and with no "@", what follows "host:" unless it is a port ("user:secret/db").
    found = re.match(r"^([\w+.-]+://[^:/?\[\]]*):([^/?]*)", url)
    if found and not found.group(2).isdigit():
        return f"{found.group(1)}:***{url[found.end() :]}"
    return url


def open_store(url: str, *, upgrade_embedded: bool = True) -> Store:
    """Open the store a URL names; the embedded SQLite store migrates itself."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        from mastersync.backends.sqlite import open_sqlite

        try:
            store = open_sqlite(url)
        except ValueError as exc:  # a URL or an option that does not parse
            raise BootstrapError(f"store URL {shown_url(url)}: {exc}") from None
        try:
            # Read on opening, even for `db status`: a file that is no SQLite database
            # (--store pointed at a CSV file) fails here, not with a driver traceback later.
            current, head = store.schema_revision()
        except sa.exc.DatabaseError as exc:
            store.close()
            if isinstance(exc, sa.exc.OperationalError):
                raise  # the database is there but failed (locked, read-only): said as such
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise BootstrapError(f"{shown_url(url)} is not a mastersync store: {reason}") from None
        if upgrade_embedded and current != head:
            store.upgrade()
        return store
    if scheme in ("postgresql", "postgres"):
        from mastersync.backends.postgres import open_postgres

        try:
            return open_postgres(url)
        except ValueError as exc:
            raise BootstrapError(f"store URL {shown_url(url)}: {exc}") from None
    raise BootstrapError(
        f"unsupported store URL {url.split('://')[0]}://...; use {' or '.join(SCHEMES)}"
    )


def resolve_store_url(explicit: str | None, landscape: CompiledLandscape | None) -> str:
    """Store URL by precedence: command line, MASTERSYNC_STORE, the landscape, a local file."""
    given = explicit or os.environ.get("MASTERSYNC_STORE")
    url = given or (landscape.config.store if landscape else None)
    # A relative SQLite path in a landscape means "next to the landscape file"; one given on
    # the command line or in the environment, as any path there, means the working directory
    # (the demo's "mastersync-demo/mastersync.db" landed in mastersync-demo/mastersync-demo/).
    base = Path(landscape.base_dir) if landscape and not given else Path.cwd()
    if not url:
        return f"sqlite:///{base / DEFAULT_STORE_FILE}"
    if url.startswith("sqlite"):
        try:
            parsed = sa.make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            raise BootstrapError(
                f"store URL {shown_url(url)} does not parse; use sqlite:///path "
                "(three slashes, then the path: sqlite:////abs/path for an absolute one)"
            ) from None
        if (
            parsed.database
            and parsed.database != ":memory:"
            and not Path(parsed.database).is_absolute()
        ):
            url = parsed.set(database=str(base / parsed.database)).render_as_string(False)
    return url


def open_connector(landscape: CompiledLandscape, system: str) -> Any:
    """The connector a system's settings describe, made through the registry."""
    settings = landscape.config.systems[system].connector
    if "type" not in settings:
        raise BootstrapError(f"system {system!r} has no connector (systems.{system}.connector)")
    context = registry.ConnectorContext(system, Path(landscape.base_dir))
    try:
        return registry.build(settings, context)
    except registry.ConnectorSetupError as exc:
        raise BootstrapError(str(exc)) from None


def _pollers(
    landscape: CompiledLandscape, ingestor: Ingestor, connectors: dict[str, Any]
) -> list[Poll]:
    """Drop folders and incremental readers of every system that has them."""
    polls: list[Poll] = []
    for system, cfg in landscape.config.systems.items():
        settings = cfg.connector
        drop = file_settings(settings)
        reads = settings.get("read") or {}
        # Connectors that take input in claims of their own (EDI) name the domains they feed.
        pushed = list(settings.get("domains") or [])
        for domain in [*drop.watch, *reads, *pushed]:
            if (system, domain) not in landscape.mappers:
                raise BootstrapError(
                    f"system {system!r} reads {domain} but has no inbound "
                    f"mapping for it (systems.{system}.inbound.{domain})"
                )
        if not drop.watch and not reads and not pushed:
            continue
        if system not in connectors and "type" in settings:
            connectors[system] = open_connector(landscape, system)
        connector: Any = connectors.get(system)
        if pushed and hasattr(connector, "claim") and not drop.watch:
            polls.append(poller(ingestor, connector, connector.resume))
        if drop.watch:
            source: Any = (
                connector
                if hasattr(connector, "claim")
                else DropFolder(
                    system,
                    Path(landscape.base_dir) / (drop.folder or f"inbox/{system}"),
                    drop.watch,
                    drop,
                    drop.settle,
                )
            )
            polls.append(poller(ingestor, source, source.resume))
        if reads and not hasattr(connector, "read"):
            raise BootstrapError(
                f"system {system!r} has 'read' settings but its connector cannot read incrementally"
            )
        for domain in reads:
            polls.append(
                incremental_poller(
                    ingestor,
                    connector,
                    system,
                    domain,
                    every=connector.settings.poll_every,
                    page_size=connector.settings.page_size,
                )
            )
    return polls


def open_feed(store: Store, bus_url: str | None) -> tuple[EventFeed, Relay | None]:
    """The event feed: the outbox itself, or NATS JetStream when a bus URL is given."""
    if not bus_url:
        return OutboxFeed(store, utc_now), None
    if bus_url.startswith(("nats://", "tls://")):
        from mastersync.backends.nats import NatsFeed, NatsRelay

        return NatsFeed(store, bus_url, utc_now), NatsRelay(store, bus_url, utc_now)
    raise BootstrapError(
        f"unsupported bus URL {bus_url.split('://')[0]}://...; use nats://host:port "
        "(tls://host:port over TLS; several servers comma-separated)"
    )


@dataclass
class Hub:
    """The assembled application: landscape, store and the services over them."""

    landscape: CompiledLandscape
    store: Store

    @property
    def ingestor(self) -> Ingestor:
        """The ingest service."""
        return Ingestor(self.store, self.landscape)

    def distribution(
        self, bus_url: str | None = None, subscriptions: list[str] | None = None
    ) -> DistributionHub:
        """The distribution hub over this landscape's subscriptions."""
        subs = [
            s
            for s in self.landscape.subscriptions.values()
            if subscriptions is None or s.id in subscriptions
        ]
        connectors: dict[str, Any] = {}
        for sub in subs:
            if sub.system not in connectors:
                connectors[sub.system] = open_connector(self.landscape, sub.system)
            if not hasattr(connectors[sub.system], "send"):
                raise BootstrapError(
                    f"system {sub.system!r} has a subscription but its "
                    "connector cannot send deliveries"
                )
        # Sources, and records parked for a reference that had not arrived yet.
        pollers = [*_pollers(self.landscape, self.ingestor, connectors), parked_poller(self.inbox)]
        feed, relay = open_feed(self.store, bus_url or resolve_bus_url(None, self.landscape))
        # Every connector, sources too: the hub closes them all when it stops.
        return DistributionHub(
            self.store,
            subs,
            feed,
            connectors,
            relay=relay,
            pollers=pollers,
            every_subscription=list(self.landscape.subscriptions.values()),
        )

    @property
    def inbox(self) -> ExceptionsInbox:
        """The exceptions inbox service."""
        return ExceptionsInbox(self.store, self.ingestor)

    @property
    def governance(self) -> Governance:
        """The API's own state (consumers, keys, usage, audit, four-eyes) in the store."""
        from mastersync.backends.sql.governance import SqlGovernance

        engine = getattr(self.store, "engine", None)
        if engine is None:
            raise BootstrapError(f"the store at {self.store.url} keeps no API state")
        return SqlGovernance(engine)

    def close(self) -> None:
        """Release the store."""
        self.store.close()


def resolve_bus_url(explicit: str | None, landscape: CompiledLandscape | None) -> str | None:
    """Bus URL by precedence: command line, MASTERSYNC_BUS, the landscape (none: the outbox)."""
    return (
        explicit
        or os.environ.get("MASTERSYNC_BUS")
        or (landscape.config.bus if landscape else None)
    )


def landscape_path(explicit: str | Path | None) -> Path:
    """Landscape file by precedence: command line, MASTERSYNC_LANDSCAPE, ./landscape.yaml."""
    return Path(explicit or os.environ.get("MASTERSYNC_LANDSCAPE") or DEFAULT_LANDSCAPE)


def build_hub(landscape: str | Path | None = None, store_url: str | None = None) -> Hub:
    """Load the landscape, open its store."""
    path = landscape_path(landscape)
    if not path.exists():
        raise BootstrapError(
            f"no landscape at {path}: pass --landscape, set "
            "MASTERSYNC_LANDSCAPE, or run `mastersync init DIR`"
        )
    compiled = load_landscape(path)
    return Hub(compiled, open_store(resolve_store_url(store_url, compiled)))
