"""One place that renders every error as problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import RateLimited, Unavailable, UndertowError
from core.logging import get_logger

log = get_logger(__name__)
PROBLEM = "application/problem+json"


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def _doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}}


# The errors every authenticated route can answer with, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc("missing, unknown or revoked API key"),
    403: _doc("the key lacks the scope"),
    404: _doc("no such resource"),
    422: _doc("invalid input; `param` names the parameter"),
    429: _doc("rate limit exceeded; see Retry-After"),
    503: _doc("the database is not reachable"),
}


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {}
    if status in (429, 503):
        headers["Retry-After"] = str(extra.get("retry_after", 5))
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(UndertowError)
    async def _domain(request: Request, exc: UndertowError) -> JSONResponse:
        extra = dict(exc.extra)
        if isinstance(exc, RateLimited | Unavailable):
            extra.setdefault("retry_after", 5)
        return problem(exc.status, exc.title, exc.detail, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"param": ".".join(str(p) for p in e.get("loc", ())[1:]) or None, "msg": e.get("msg")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['param']}: {e['msg']}" for e in errors)
        return problem(422, "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a NUL byte, an out-of-range number) is bad input.
        log.info("api.data_error", path=request.url.path, error=str(exc.orig)[:200])
        return problem(422, "Invalid input", "a value is out of range or holds a forbidden byte")

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _db(request: Request, exc: Exception) -> JSONResponse:
        log.warning("api.database_unavailable", error=type(exc).__name__)
        return problem(503, "Service unavailable", "the database is not reachable; retry shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unhandled", path=request.url.path, error=type(exc).__name__)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")
