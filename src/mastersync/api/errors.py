"""Errors as one small JSON shape that names what was wrong and never how the hub works."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An expected failure with a status, a message for the caller and optional details."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        problems: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.problems = problems or []
        self.headers = headers or {}


def error_body(request: Request | None, status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The error document: status, code, message, the request id, and any problems."""
    body: dict[str, Any] = {
        "status": status,
        "code": _CODES.get(status, "error"),
        "message": message,
    }
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v})
    return {"error": body}


def keep_headers(request: Request, response: Response, headers: dict[str, str]) -> None:
    """Headers every answer to this request carries, an error's too (the rate limit's, a
    deprecation's): set on the success response alone, an error answer lost them."""
    response.headers.update(headers)
    kept = getattr(request.state, "answer_headers", None)
    if kept is None:
        kept = request.state.answer_headers = {}
    kept.update(headers)


def _headers(request: Request, own: Mapping[str, str] | None) -> dict[str, str] | None:
    kept = getattr(request.state, "answer_headers", None)
    if not kept:
        return dict(own) if own else None
    return {**kept, **(own or {})}


def install(app: FastAPI) -> None:
    """Register the handlers: ours, HTTP errors, validation errors, and anything else."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(request, exc.status, exc.message, problems=exc.problems),
            exc.status,
            headers=_headers(request, exc.headers),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(
            error_body(request, exc.status_code, message),
            exc.status_code,
            headers=_headers(request, getattr(exc, "headers", None)),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "-",
                "rule": str(err.get("type", "invalid")),
                "message": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body(request, 422, "the request is not valid", problems=problems),
            422,
            headers=_headers(request, None),
        )
