"""A real HTTP server on loopback that serves recorded API responses, routed by path and query."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
# Recorded responses are read from the shared folder at test time, never copied in.
SHARED_API = (
    Path(os.environ.get("UNDERTOW_SHARED_DIR") or (REPO / ".." / "shared")).resolve()
    / "fixtures"
    / "api"
)
OWN = REPO / "tests" / "fixtures" / "ingest"


@dataclass
class Reply:
    """One canned response; ``etag`` makes it answer 304 to a matching If-None-Match."""

    status: int = 200
    body: bytes | Path = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None

    def content(self) -> bytes:
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


@dataclass
class Route:
    method: str
    path: str
    params: dict[str, str]
    replies: list[Reply]
    hits: int = 0


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ApiServer:
    """Routes (method, path, query-subset) to replies served in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.requests.append(Seen(self.command, parts.path, params, headers, body))
                    reply = server._match(self.command, parts.path, params)
                if reply is None:
                    reply = Reply(404, b'{"error": "NotFound"}')
                status, content = reply.status, reply.content()
                extra = dict(reply.headers)
                if reply.etag is not None:
                    extra["ETag"] = reply.etag
                    if headers.get("if-none-match") == reply.etag:
                        status, content = 304, b""
                self.send_response(status)
                extra.setdefault("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v.replace("{base}", server.url))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = _serve
            do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _match(self, method: str, path: str, params: dict[str, str]) -> Reply | None:
        for route in self.routes:
            if route.method != method or route.path != path:
                continue
            if all(params.get(k) == v for k, v in route.params.items()):
                reply = route.replies[min(route.hits, len(route.replies) - 1)]
                route.hits += 1
                return reply
        return None

    def add(
        self,
        path: str,
        *replies: Reply,
        method: str = "GET",
        **params: str,
    ) -> None:
        """Serve ``replies`` at ``path`` when the query contains ``params``; earlier routes win."""
        self.routes.append(Route(method, path, params, list(replies)))

    def requests_to(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def recorded(rel: str, **kw: Any) -> Reply:
    """A recorded response from the shared folder."""
    path = SHARED_API / rel
    assert path.is_file(), f"missing recording {path}"
    return Reply(body=path, **kw)


def own(name: str, **kw: Any) -> Reply:
    """One of this project's recorded-style fixtures."""
    return Reply(body=OWN / name, **kw)


def own_json(name: str) -> Any:
    """One of this project's recorded-style fixtures, parsed."""
    return json.loads((OWN / name).read_text(encoding="utf-8"))


def as_json(data: Any, **kw: Any) -> Reply:
    return Reply(body=json.dumps(data).encode(), **kw)


def load_recorded(rel: str) -> Any:
    return json.loads((SHARED_API / rel).read_text(encoding="utf-8"))


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    from core.settings import get_settings
    from ingest.http import make_client

    with make_client(settings=get_settings()) as c:
        yield c


class Sleeps(list[float]):
    """An injectable sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@dataclass
class Drained:
    posts: list[Any]
    quarantined: list[Any]
    cursor: dict[str, Any]

    def by_id(self) -> dict[str, Any]:
        return {p.external_id: p for p in self.posts}


def drain(source: Any, cursor: dict[str, Any] | None = None) -> Drained:
    """Run a source to the end, keeping the last cursor it handed out."""
    out = Drained([], [], dict(cursor or {}))
    for batch in source.fetch(cursor=dict(cursor or {})):
        out.posts.extend(batch.posts)
        out.quarantined.extend(batch.quarantined)
        if batch.cursor is not None:
            out.cursor = batch.cursor
    return out


def config(kind: str, base_url: str | None = None, **kw: Any) -> Any:
    from core.settings import SourceConfig

    return SourceConfig(name=f"test-{kind}", kind=kind, base_url=base_url, **kw)


def freeze_now(monkeypatch: pytest.MonkeyPatch, module: Any, when: Any) -> None:
    """Pin a source module's clock (backfill windows are relative to now)."""
    monkeypatch.setattr(module, "utc_now", lambda: when)
