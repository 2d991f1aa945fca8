"""Routes of the webhook receiver: verify, ingest durably, then acknowledge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Generator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from mastersync.bootstrap import Hub, open_connector
from mastersync.connectors.webhook.receiver import BadPush, WebhookConnector
from mastersync.connectors.webhook.signatures import Rejected
from mastersync.pipeline.pushes import InFlight, PushIntake
from mastersync.ports.connector import ConnectorError

log = logging.getLogger("mastersync.webhooks")


def _problem(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status, headers=headers or None)


def receivers(hub: Hub) -> dict[str, WebhookConnector]:
    """The webhook connector of every system whose connector is of type webhook, and the
    receiver of every connector that subscribes to its system's events (``events:``)."""
    found = {}
    for system, cfg in hub.landscape.config.systems.items():
        if cfg.connector.get("type") == "webhook":
            connector = open_connector(hub.landscape, system)
            assert isinstance(connector, WebhookConnector)
            found[system] = connector
        elif cfg.connector.get("events"):
            receiver = open_connector(hub.landscape, system).push_receiver()
            assert isinstance(receiver, WebhookConnector)
            found[system] = receiver
    return found


def webhook_router(hub: Hub, clock: Any = time.time) -> APIRouter:
    """POST /hooks/{system} and /hooks/{system}/{domain} for the landscape's webhooks."""
    hooks = receivers(hub)
    intake = PushIntake(hub.ingestor, clock)
    router = APIRouter(tags=["webhooks"])

    async def receive(request: Request, system: str, domain: str | None) -> JSONResponse:
        connector = hooks.get(system)
        if connector is None:
            return _problem(404, f"no webhook receiver for system {system!r}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > connector.settings.max_body:
            return _problem(413, f"body exceeds {connector.settings.max_body} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > connector.settings.max_body:  # chunked bodies declare no length
                return _problem(413, f"body exceeds {connector.settings.max_body} bytes")
        for name in connector.guarded_headers:
            values = request.headers.getlist(name)
            if len(set(values)) > 1:
                # Which one the signature was made with, or names the push, is anybody's
                # guess: taking the last let a request carry one id for the signature
                # and another for the de-duplication.
                return _problem(
                    400,
                    f"header {name} is sent {len(values)} times with different values; "
                    "send it once",
                )
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verified = connector.verify(headers, bytes(body), clock())
            # In a thread: a receiver may read from its system (Akeneo's events name a
            # product, which is read).
            push = await asyncio.to_thread(connector.parse, headers, bytes(body), verified, domain)
        except Rejected as exc:
            log.warning("%s: push refused: %s", system, exc)
            return _problem(401, str(exc))
        except BadPush as exc:
            return _problem(400, str(exc))
        except ConnectorError as exc:
            log.warning("%s: push %s not taken: %s", system, verified.message_id, exc.message)
            return _problem(503, f"{system} could not be read; retry later", **{"Retry-After": "5"})
        if push.domain is None:
            # A topic this landscape takes nothing from: acknowledged so it is not re-sent.
            return JSONResponse({"status": "ignored", "topic": push.topic})
        try:
            outcome = await asyncio.to_thread(
                intake.accept,
                system,
                push.domain,
                push.message_id,
                push.records,
                connector.id_lifetime,
                push.digest,
            )
        except InFlight as exc:
            log.info("%s: %s", system, exc)
            return _problem(503, f"{exc}; retry later", **{"Retry-After": "5"})
        except Exception:
            # Not stored, so not acknowledged: the sender retries later.
            log.exception("%s: push %s could not be stored", system, push.message_id)
            return _problem(
                503, "the change could not be stored; retry later", **{"Retry-After": "5"}
            )
        if outcome.duplicate:
            return JSONResponse({"status": "duplicate", "id": push.message_id})
        return JSONResponse(
            {
                "status": "accepted",
                "id": push.message_id,
                "domain": push.domain,
                "outcomes": outcome.outcomes,
                "master_ids": outcome.master_ids,
            }
        )

    @router.post("/hooks/{system}", summary="Receive a push whose topic names the domain")
    async def receive_topic(request: Request, system: str) -> JSONResponse:
        return await receive(request, system, None)

    @router.post("/hooks/{system}/{domain}", summary="Receive a push of one domain")
    async def receive_domain(request: Request, system: str, domain: str) -> JSONResponse:
        return await receive(request, system, domain)

    return router


def webhook_app(hub: Hub, clock: Any = time.time) -> FastAPI:
    """A stand-alone ASGI app of the receiver (what `mastersync run --listen` serves)."""
    app = FastAPI(title="mastersync webhooks", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(webhook_router(hub, clock))
    return app


class _HubServer(uvicorn.Server):
    """uvicorn inside the hub's loop: the hub, not uvicorn, handles SIGTERM and SIGINT."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self.socket = sock

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave signal handling to the hub."""
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on the socket bound when the server was made."""
        await super().serve(sockets=sockets or [self.socket])


def webhook_server(hub: Hub, listen: str) -> uvicorn.Server:
    """A uvicorn server for the receiver at HOST:PORT, to run in the hub's event loop.

    The socket is bound (and listening) here, before the hub starts: uvicorn binding it
    itself called sys.exit(3) on a taken port, inside the running hub, which tore its loops
    down mid-round. Raises ValueError for a malformed HOST:PORT, OSError when the address
    cannot be bound.
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT (a port up to 65535), got {listen!r}")
    # [::1]:8080 names an IPv6 address as URLs do; the socket wants it bare.
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    config = uvicorn.Config(webhook_app(hub), host=host, port=int(port), log_level="warning")
    sock = socket.create_server((host, int(port)), family=family, backlog=config.backlog)
    return _HubServer(config, sock)
