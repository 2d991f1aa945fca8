"""The API application factory: routers, security, limits, errors, versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mastersync import __version__
from mastersync.api import admin, errors, experience, process, system, v2
from mastersync.api.auth import TOKEN_URL, token_request
from mastersync.api.context import ApiContext, context, request_id
from mastersync.api.limits import GuardMiddleware
from mastersync.api.schemas import COMMON_ERRORS, TokenOut
from mastersync.api.settings import ApiSettings
from mastersync.bootstrap import Hub

DESCRIPTION = """\
Governed access to the golden records of a mastersync hub.

* **System APIs** (`/v1/<domain>`): canonical read, search and upsert per domain,
  cross-reference look-up, lineage, the exceptions inbox, deliveries, the audit log.
* **Process APIs** (`/v1/processes`): customer onboarding, item activation, supplier approval.
* **Experience APIs** (`/v1/sales`, `/v1/procurement`): shaped for sales and buying.

Authenticate with an API key (`X-API-Key: name.secret`) or an OAuth2 client-credentials
token from `POST /oauth/token`. Scopes: `<domain>:read`, `<domain>:write`,
`customer:credit`, `supplier:finance`, `approve`, `admin`.
"""


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if sane) and returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        rid = request_id(given)
        scope.setdefault("state", {})["request_id"] = rid

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, with_id)


def create_app(hub: Hub, settings: ApiSettings | None = None) -> FastAPI:
    """The API over a hub."""
    settings = settings or ApiSettings()
    ctx = ApiContext(hub, settings, hub.governance)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.flush_usage()

    app = FastAPI(
        title="mastersync API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)

    @app.post(
        TOKEN_URL,
        response_model=TokenOut,
        tags=["auth"],
        summary="OAuth2 client-credentials token",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                                "scope": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
        responses=COMMON_ERRORS,
    )
    async def token(request: Request) -> dict[str, Any]:
        """Exchange a consumer's credentials for a short-lived signed token."""
        body = await request.body()
        return token_request(context(request), body, request.headers.get("authorization"))

    @app.get("/health", tags=["meta"], summary="Liveness", responses=COMMON_ERRORS)
    def health() -> dict[str, str]:
        """The server answers."""
        return {"status": "ok"}

    for router in (system.router, admin.router, v2.router, process.router, experience.router):
        app.include_router(router, responses=COMMON_ERRORS)
    # Webhooks are received by the hub itself (`mastersync run --listen`), where the
    # pollers and deliverers run; they are not part of the governed API.
    app.add_middleware(
        GuardMiddleware, max_body=settings.max_body_bytes, timeout=settings.timeout_seconds
    )
    app.add_middleware(RequestIdMiddleware)
    return app
