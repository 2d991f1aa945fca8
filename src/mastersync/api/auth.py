"""Authentication (API keys, OAuth2 client-credentials tokens signed as JWTs with rotating
keys) and the per-request checks that follow it: rate limit, quota, usage counting."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

import jwt
from fastapi import Depends, Request, Response, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2

from mastersync.api.context import ApiContext, context
from mastersync.api.errors import ApiError, keep_headers
from mastersync.api.limits import retry_headers
from mastersync.api.settings import VERSIONS
from mastersync.domain.governance.access import Principal
from mastersync.pipeline.governance.consumers import check_api_key, check_secret, signing_key
from mastersync.ports.governance import Consumer

AUDIENCE = "mastersync-api"
TOKEN_URL = "/oauth/token"

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey", description="name.secret"
)
oauth2 = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL)),
    auto_error=False,
    scheme_name="OAuth2",
    description="client credentials: client_id = consumer name, client_secret = its secret",
)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="mastersync"'})


def issue_token(ctx: ApiContext, consumer: Consumer, scopes: list[str]) -> dict[str, Any]:
    """An access token for a consumer, signed by the current key."""
    key = signing_key(ctx.governance)
    now = int(time.time())
    claims = {
        "iss": ctx.settings.issuer,
        "aud": AUDIENCE,
        "sub": consumer.name,
        "iat": now,
        "exp": now + ctx.settings.token_seconds,
        "jti": secrets.token_hex(8),
        "scope": " ".join(scopes),
    }
    token = jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.kid})
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ctx.settings.token_seconds,
        "scope": claims["scope"],
    }


def token_request(ctx: ApiContext, body: bytes, authorization: str | None) -> dict[str, Any]:
    """Answer an OAuth2 client-credentials token request (RFC 6749 section 4.4)."""
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode(), strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise ApiError(400, "the token request must be form-encoded UTF-8") from None
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
            client_id, _, client_secret = decoded.partition(":")
        except ValueError:
            raise _unauthenticated("malformed Basic credentials") from None
    if form.get("grant_type") != "client_credentials":
        raise ApiError(400, "grant_type must be client_credentials")
    if not client_id or not client_secret:
        raise _unauthenticated("client_id and client_secret are required")
    if "\x00" in client_id or "\x00" in client_secret:
        # No consumer has one, and PostgreSQL keeps none in text (the look-up was a 500).
        raise _unauthenticated("unknown client or wrong secret")
    secret = client_secret.rpartition(".")[2] if "." in client_secret else client_secret
    consumer = check_secret(ctx.governance, client_id, secret)
    if consumer is None:
        raise _unauthenticated("unknown client or wrong secret")
    wanted = form.get("scope")
    scopes = sorted(consumer.scopes)
    if wanted:
        asked = set(wanted.split())
        if not asked <= set(consumer.scopes):
            raise ApiError(
                400,
                f"scope not granted to {consumer.name}: "
                f"{', '.join(sorted(asked - set(consumer.scopes)))}",
            )
        scopes = sorted(asked)
    return issue_token(ctx, consumer, scopes)


def _from_token(ctx: ApiContext, token: str) -> tuple[Consumer, list[str]]:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise _unauthenticated("the access token is malformed") from None
    key = next((k for k in ctx.governance.signing_keys() if k.kid == kid), None)
    if key is None:
        raise _unauthenticated("the access token's signing key is unknown or retired")
    try:
        claims = jwt.decode(
            token,
            key.secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ctx.settings.issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthenticated("the access token has expired") from None
    except jwt.PyJWTError:
        raise _unauthenticated("the access token is not valid") from None
    consumer = ctx.governance.consumer(str(claims["sub"]))
    if consumer is None or consumer.status != "active":
        raise _unauthenticated("the consumer of this token is revoked")
    granted = set(consumer.scopes)
    return consumer, sorted(s for s in str(claims.get("scope", "")).split() if s in granted)


def authenticate(
    request: Request,
    response: Response,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    authorization: Annotated[str | None, Security(oauth2)] = None,
) -> Principal:
    """The consumer behind a request, after its rate limit; counts the call."""
    ctx = context(request)
    if authorization and authorization.lower().startswith("bearer "):
        consumer, scopes = _from_token(ctx, authorization[7:].strip())
        how = "token"
    elif api_key:
        found = check_api_key(ctx.governance, api_key)
        if found is None:
            raise _unauthenticated("unknown or revoked API key")
        consumer, scopes, how = found, list(found.scopes), "api_key"
    else:
        raise _unauthenticated("send an API key (X-API-Key) or a bearer token")
    allowed, remaining, wait = ctx.limiter.take(
        consumer.name, consumer.rate_per_minute, consumer.quota_per_day
    )
    if not allowed:
        raise ApiError(
            429,
            f"{consumer.name} is over its limit ({consumer.rate_per_minute}/min"
            + (f", {consumer.quota_per_day}/day" if consumer.quota_per_day else "")
            + f"); retry after {wait} s",
            headers=retry_headers(wait, consumer.rate_per_minute),
        )
    limits = {
        "X-RateLimit-Limit": str(consumer.rate_per_minute),
        "X-RateLimit-Remaining": str(remaining),
    }
    keep_headers(request, response, limits)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    version = template.split("/")[1] if template.split("/")[1:2] else ""
    # Keyed by method and path: GET /v1/items (deprecated) and POST /v1/items (the upsert,
    # which has no successor) share a path, and adoption counted upserts as deprecated.
    route_key = f"{request.method} {template}"
    ctx.count(consumer.name, version if version in VERSIONS else "-", route_key)
    return Principal(
        consumer.name,
        consumer.person,
        frozenset(scopes),
        consumer.system,
        consumer.partner_channel,
        how,
    )


Caller = Annotated[Principal, Depends(authenticate)]


def need(principal: Principal, scope: str) -> None:
    """Refuse (403) unless the caller holds ``scope``."""
    if not principal.may(scope):
        raise ApiError(403, f"{principal.consumer} lacks the scope {scope!r}")
