"""Shared pieces of the hostile-input tests: a seeded app, route enumeration, hostile strings."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import create_key, revoke_key
from tests.api.conftest import seed

# SQL metacharacters, LIKE wildcards, escapes, NUL, quotes in other scripts, very long input.
HOSTILE = [
    "'",
    '"',
    "' OR '1'='1",
    "'; DROP TABLE post; --",
    '"; DELETE FROM api_key; --',
    "--",
    "/* */",
    "%",
    "_",
    "%%",
    "\\",
    "\\'",
    "a\x00b",
    "\x00",
    "claude%",
    "clau_e",
    "ʼ OR 1=1 --",
    "＇ OR ＇1＇=＇1",
    "Claude\u202e",
    "😀",
    "$1",
    "?",
    ":name",
    "x" * 300,
]


@dataclass(frozen=True)
class RouteInfo:
    """One route of the app: its full path, methods, the scope it needs (None: no API key)."""

    path: str
    methods: frozenset[str]
    scope: str | None
    route: Any
    # A dashboard page that needs a signed-in session.
    session: bool = False


def _scopes(dependant: Any) -> set[str]:
    found: set[str] = set()
    for dep in dependant.dependencies:
        call = getattr(dep, "call", None)
        if call is not None and call.__qualname__.endswith("require_scope.<locals>._dep"):
            found.add(inspect.getclosurevars(call).nonlocals["scope"])
        found |= _scopes(dep)
    return found


def _needs_session(dependant: Any) -> bool:
    return any(
        (
            getattr(dep, "call", None) is not None
            and dep.call.__module__ == "api.dashboard.routes"
            and dep.call.__name__ == "_user"
        )
        or _needs_session(dep)
        for dep in dependant.dependencies
    )


def iter_routes(app: Any) -> Iterator[RouteInfo]:
    """Every route the app serves, included routers flattened (FastAPI includes them lazily)."""
    for r in app.routes:
        contexts = r.effective_route_contexts() if hasattr(r, "effective_route_contexts") else [r]
        for ctx in contexts:
            route = getattr(ctx, "original_route", ctx)
            path = getattr(ctx, "path", None) or getattr(route, "path", "")
            methods = frozenset(getattr(route, "methods", None) or ())
            scope, session = None, False
            if isinstance(route, APIRoute):
                scopes = _scopes(route.dependant)
                assert len(scopes) <= 1, (path, scopes)
                scope = next(iter(scopes), None)
                session = _needs_session(route.dependant)
            yield RouteInfo(path, methods, scope, route, session)


def fill(path: str, value: str = "1") -> str:
    """A concrete URL for a path template (every parameter set to ``value``)."""
    return re.sub(r"\{[^}]+\}", value, path)


def make_client(settings: Any, session: Any, **overrides: Any) -> TestClient:
    """The API test data plus a revoked key, on an app without rate limiting in the way."""
    data = seed(session)
    _, revoked = create_key(session=session, name="gone", scopes=["admin"])
    revoke_key(session=session, prefix=revoked.split("_")[1])
    session.commit()
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 100_000, **overrides}))
    c = TestClient(app, follow_redirects=False)
    c.keys = {**data["keys"], "revoked": revoked}  # type: ignore[attr-defined]
    c.post_ids = data["post_ids"]  # type: ignore[attr-defined]
    c.releases = data["releases"]  # type: ignore[attr-defined]
    return c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
