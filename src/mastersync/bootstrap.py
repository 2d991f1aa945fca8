"""The composition root: URL -> store backend, path -> landscape. The only place that knows
every concrete implementation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from mastersync.connectors.files.dropfolder import DropFolder
from mastersync.connectors.files.settings import file_settings
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.landscape import load_landscape
from mastersync.pipeline.distribution.hub import DistributionHub
from mastersync.pipeline.distribution.queueing import OutboxFeed
from mastersync.pipeline.exceptions import ExceptionsInbox
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.inbound import poller
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.feed import EventFeed, Relay
from mastersync.ports.outbound import OutboundConnector
from mastersync.ports.store import Store

DEFAULT_LANDSCAPE = "landscape.yaml"
DEFAULT_STORE_FILE = "mastersync.db"
SCHEMES = ("sqlite:///path", "postgresql://user@host:port/database")


class BootstrapError(Exception):
    """The hub cannot be assembled from the given settings."""


def open_store(url: str, *, upgrade_embedded: bool = True) -> Store:
    """Open the store a URL names; the embedded SQLite store migrates itself."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        from mastersync.backends.sqlite import open_sqlite

        store = open_sqlite(url)
        if upgrade_embedded:
            current, head = store.schema_revision()
            if current != head:
                store.upgrade()
        return store
    if scheme in ("postgresql", "postgres"):
        from mastersync.backends.postgres import open_postgres

        return open_postgres(url)
    raise BootstrapError(
        f"unsupported store URL {url.split('://')[0]}://...; use {' or '.join(SCHEMES)}"
    )


def resolve_store_url(explicit: str | None, landscape: CompiledLandscape | None) -> str:
    """Store URL by precedence: command line, MASTERSYNC_STORE, the landscape, a local file."""
    url = (
        explicit
        or os.environ.get("MASTERSYNC_STORE")
        or (landscape.config.store if landscape else None)
    )
    base = Path(landscape.base_dir) if landscape else Path.cwd()
    if not url:
        return f"sqlite:///{base / DEFAULT_STORE_FILE}"
    if url.startswith("sqlite"):
        # A relative SQLite path in a landscape means "next to the landscape file".
        parsed = sa.make_url(url)
        if (
            parsed.database
            and parsed.database != ":memory:"
            and not Path(parsed.database).is_absolute()
        ):
            url = parsed.set(database=str(base / parsed.database)).render_as_string(False)
    return url


def open_connector(landscape: CompiledLandscape, system: str) -> OutboundConnector:
    """The outbound connector of a consumer system, from its connector settings."""
    settings = dict(landscape.config.systems[system].connector)
    kind = settings.get("type")
    if kind == "sandbox":
        from mastersync.connectors.sandbox.target import Faults, SandboxConnector

        database = Path(str(settings.get("database", f"targets/{system}.db")))
        if not database.is_absolute():
            database = Path(landscape.base_dir) / database
        faults = Faults.model_validate(settings["faults"]) if "faults" in settings else None
        return SandboxConnector(database, faults)
    raise BootstrapError(
        f"system {system!r} receives deliveries but its connector type {kind!r} cannot send "
        "(supported: sandbox)"
    )


def drop_folders(landscape: CompiledLandscape) -> list[DropFolder]:
    """The drop folders of systems whose connector has ``watch:`` patterns."""
    folders = []
    for system, cfg in landscape.config.systems.items():
        settings = file_settings(cfg.connector)
        if not settings.watch:
            continue
        unknown = [d for d in settings.watch if (system, d) not in landscape.mappers]
        if unknown:
            raise BootstrapError(
                f"system {system!r} watches files for {', '.join(unknown)} "
                "but has no inbound mapping for it"
            )
        folder = Path(settings.folder or f"inbox/{system}")
        if not folder.is_absolute():
            folder = Path(landscape.base_dir) / folder
        folders.append(DropFolder(system, folder, settings.watch, settings, settings.settle))
    return folders


def open_feed(store: Store, bus_url: str | None) -> tuple[EventFeed, Relay | None]:
    """The event feed: the outbox itself, or NATS JetStream when a bus URL is given."""
    if not bus_url:
        return OutboxFeed(store, utc_now), None
    if bus_url.startswith("nats://"):
        from mastersync.backends.nats import NatsFeed, NatsRelay

        return NatsFeed(store, bus_url, utc_now), NatsRelay(store, bus_url, utc_now)
    raise BootstrapError(
        f"unsupported bus URL {bus_url.split('://')[0]}://...; use nats://host:port"
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
        connectors = {s.system: open_connector(self.landscape, s.system) for s in subs}
        feed, relay = open_feed(self.store, bus_url or resolve_bus_url(None, self.landscape))
        pollers = [
            poller(self.ingestor, folder, folder.resume) for folder in drop_folders(self.landscape)
        ]
        return DistributionHub(self.store, subs, feed, connectors, relay=relay, pollers=pollers)

    @property
    def inbox(self) -> ExceptionsInbox:
        """The exceptions inbox service."""
        return ExceptionsInbox(self.store, self.ingestor)

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
