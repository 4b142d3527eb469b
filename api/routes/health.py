"""Liveness and readiness."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from core.db import get_engine
from core.settings import Settings

router = APIRouter(tags=["health"])


def _broker_ok(settings: Settings) -> tuple[bool, str]:
    url = settings.celery_broker_url
    if url.startswith("filesystem"):
        folder = settings.broker_dir / "queue"
        return (folder.is_dir() and os.access(folder, os.W_OK), "filesystem")
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
            return (True, "redis")
        except redis.RedisError as e:
            return (False, f"redis: {type(e).__name__}")
    return (False, "unsupported broker")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
def readyz(request: Request) -> Any:
    """Database and broker reachable."""
    settings: Settings = request.app.state.settings
    checks: dict[str, Any] = {}
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as e:
        checks["database"] = f"down: {type(e).__name__}"
    ok, what = _broker_ok(settings)
    checks["broker"] = "ok" if ok else f"down: {what}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )
