"""What an API server is allowed to take and give."""

from __future__ import annotations

from dataclasses import dataclass

# API versions (path prefixes); v1 stays until its sunset. Page sizes are capped at 200 in
# each list operation's parameters, so the OpenAPI document states the cap.
VERSIONS = ("v1", "v2")
# v1 route -> its v2 successor (the v1 route answers with Deprecation and Sunset headers).
SUCCESSORS = {"/v1/items": "/v2/items"}


@dataclass(frozen=True)
class ApiSettings:
    """Limits and lifetimes of one API server."""

    # Requests with a larger body are refused (413) before they are read to the end.
    max_body_bytes: int = 1_048_576
    # A request still running after this many seconds is answered 503.
    timeout_seconds: float = 10.0
    # Lifetime of an access token from the token endpoint.
    token_seconds: int = 900
    # When v1 endpoints that have a v2 successor stop (RFC 8594 Sunset, an HTTP date) and
    # since when they are deprecated (RFC 9745, epoch seconds).
    v1_sunset: str = "Wed, 30 Jun 2027 00:00:00 GMT"
    v1_deprecated_since: int = 1_795_000_000
    # How often buffered usage counts are written to the store (seconds).
    usage_flush_seconds: float = 5.0
    issuer: str = "mastersync"
