"""Version headers: v1 endpoints that have a v2 successor say so, and until when."""

from __future__ import annotations

from fastapi import Request, Response

from mastersync.api.context import context
from mastersync.api.errors import keep_headers
from mastersync.api.settings import SUCCESSORS


def deprecate_v1(response: Response, request: Request) -> None:
    """Mark a v1 endpoint that has a v2 successor (RFC 9745 Deprecation, RFC 8594 Sunset)."""
    settings = context(request).settings
    route = getattr(request.scope.get("route"), "path", "")
    headers = {"Deprecation": f"@{settings.v1_deprecated_since}", "Sunset": settings.v1_sunset}
    successor = SUCCESSORS.get(route)
    if successor:
        headers["Link"] = f'<{successor}>; rel="successor-version"'
    keep_headers(request, response, headers)  # an error answer says so too
