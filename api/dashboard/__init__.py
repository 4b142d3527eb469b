"""The dashboard: server-rendered pages under /ui/, signed in with an API key."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.dashboard.auth import CsrfFailed, LoginRequired, current_user
from api.dashboard.render import page
from api.dashboard.routes import router
from core.errors import UndertowError

STATIC = Path(__file__).resolve().parents[1] / "static"


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes, static files and HTML error pages to ``app``."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    api_handler = app.exception_handlers.get(UndertowError)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.method != "GET":
            return page(
                request,
                "error.html",
                user=None,
                status_code=401,
                title="Signed out",
                detail="Your session has ended; sign in again.",
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return page(
            request,
            "error.html",
            user=None,
            status_code=403,
            title="Refused",
            detail="This form was not sent from an Undertow page (missing or wrong CSRF token).",
        )

    @app.exception_handler(UndertowError)
    async def _domain(request: Request, exc: UndertowError) -> Response:
        # Dashboard pages get an HTML page; the JSON API keeps its problem+json.
        if request.url.path.startswith("/ui/") or api_handler is None:
            return page(
                request,
                "error.html",
                user=None,
                status_code=exc.status,
                title=exc.title,
                detail=exc.detail,
            )
        return await api_handler(request, exc)  # type: ignore[misc,no-any-return]


__all__ = ["current_user", "mount"]
