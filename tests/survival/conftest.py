"""Fault-test fixtures: a PostgreSQL and a Redis of our own (temporary folders, other ports).

Fault tests stop and restart these; the shared services on 5432 and 6379 are never touched.
Also: a synthetic Hacker News search API on loopback that grows while the test runs, and
helpers to run the real `undertow` processes against the private services.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], bool], timeout: float, what: str, every: float = 0.3) -> None:
    """Poll ``pred`` until it holds; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if pred():
                return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _pg_bin() -> Path:
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    found = shutil.which("initdb")
    assert found, "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    return Path(found).resolve().parent


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; sessions and CI are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class PgServer:
    """A PostgreSQL cluster in a temporary folder that a test may stop and start."""

    datadir: Path
    port: int
    log: Path
    bin: Path = field(default_factory=_pg_bin)

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.datadir), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self._ctl(
            "-l",
            str(self.log),
            "-w",
            "-o",
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Our own PostgreSQL (initdb + pg_ctl in a temporary folder, another port)."""
    root = Path(tempfile.mkdtemp(prefix="undertow-pg-"))
    os.chmod(root, 0o755)
    datadir = root / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(datadir, "postgres")
    server = PgServer(datadir=datadir, port=free_port(), log=root / "postgres.log")
    subprocess.run(
        _as_postgres(
            [str(server.bin / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on our own PostgreSQL, schema from the migrations."""
    from core.migrate import upgrade

    name = "f_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    name += f"_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    url = pg_server.create_database(name)
    upgrade(url=url)
    return url


@dataclass
class RedisServer:
    """A redis-server of our own; no persistence, so a restart loses every queued message."""

    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=(self.dir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ping, 20, "redis-server to answer")

    def ping(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Our own redis-server on another port, in a temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="undertow-redis-"))
    server = RedisServer(dir=root, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """Our Redis, empty at the start and the end of the test (restarted if a test left it down)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    yield redis_server.url
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()


class Procs:
    """`undertow` sub-processes of one test, each in its own process group, ended at teardown."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        p = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(p)
        return p

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert r.returncode == 0, f"undertow {' '.join(args)}: {r.stderr[-2000:]}"
        return r

    def kill(self, p: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal a process and, for SIGKILL, its orphaned pool children (its own group only)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, sig)
        if sig == signal.SIGKILL:
            p.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in self.started:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def base_env(tmp: Path, *, database_url: str, broker_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of the `undertow` processes of a fault test."""
    env = {
        **os.environ,
        "UNDERTOW_DATA_DIR": str(tmp / "var"),
        "UNDERTOW_DATABASE_URL": database_url,
        "UNDERTOW_BROKER_URL": broker_url,
        "UNDERTOW_REDIS_URL": "",
        "UNDERTOW_CLASSIFIER": "rules",
        "UNDERTOW_SOURCES": "[]",
        "UNDERTOW_LOG_LEVEL": "INFO",
    }
    env.pop("UNDERTOW_CONFIG", None)
    env.update(extra)
    return env


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Procs]]:
    """Make a Procs for an environment; every process it started is ended after the test."""
    made: list[Procs] = []

    def make(env: dict[str, str]) -> Procs:
        p = Procs(tmp_path, env)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop_all()


class HnFeed:
    """A synthetic Algolia HN search API that grows: every story it served is recorded.

    Stories are served newest first, ``hitsPerPage`` per page, filtered by the
    ``created_at_i>=`` numeric filter the client sends; comment searches are empty.
    """

    def __init__(self, start: int) -> None:
        self.lock = threading.Lock()
        self.stories: list[dict[str, Any]] = []
        self.served: set[str] = set()
        self.requests = 0
        self.t = start
        # Seconds each search request takes, so that one ingest run lasts long enough to break.
        self.delay = 0.0
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = feed._answer(self.path)
                self.send_response(200 if body is not None else 404)
                content = json.dumps(body if body is not None else {"error": "NotFound"}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def add(self, n: int) -> None:
        """Publish ``n`` new stories (one second apart)."""
        with self.lock:
            for _ in range(n):
                self.t += 1
                i = len(self.stories)
                theme = (
                    "Claude refused to help with my homework again, so annoying",
                    "ChatGPT lost my whole conversation history today",
                    "Trying the new Gemini release this weekend",
                )[i % 3]
                self.stories.append(
                    {
                        "objectID": str(800000 + i),
                        "title": f"{theme} (story {i})",
                        "story_text": None,
                        "author": f"hn_user{i % 17}",
                        "created_at_i": self.t,
                        "points": i % 50,
                        "num_comments": 0,
                        "_tags": ["story", f"story_{800000 + i}"],
                    }
                )

    def _answer(self, raw_path: str) -> dict[str, Any] | None:
        parts = urlsplit(raw_path)
        if parts.path != "/api/v1/search_by_date":
            return None
        q = dict(parse_qsl(parts.query))
        self.requests += 1
        time.sleep(self.delay)
        if q.get("tags") != "(story)":
            return {"hits": [], "nbPages": 0, "page": 0}
        floor = 0
        flt = q.get("numericFilters", "")
        if flt.startswith("created_at_i>="):
            floor = int(flt.split(">=", 1)[1])
        per = int(q.get("hitsPerPage", 100))
        page = int(q.get("page", 0))
        with self.lock:
            hits = sorted(
                (s for s in self.stories if s["created_at_i"] >= floor),
                key=lambda s: -s["created_at_i"],
            )
            n_pages = (len(hits) + per - 1) // per
            chunk = hits[page * per : (page + 1) * per]
            self.served.update(s["objectID"] for s in chunk)
        return {"hits": chunk, "nbPages": n_pages, "page": page, "hitsPerPage": per}

    def source(self, name: str = "hn", interval_s: int = 30) -> dict[str, Any]:
        """The `[[sources]]` entry that reads this feed (for UNDERTOW_SOURCES)."""
        return {
            "name": name,
            "kind": "hackernews",
            "base_url": self.url,
            "queries": ["ai"],
            "interval_s": interval_s,
            "backfill_hours": 24,
            "max_pages": 50,
            "options": {"expand_comments": False, "hits_per_page": 20},
        }


@pytest.fixture
def hn_feed() -> Iterator[HnFeed]:
    """A growing synthetic HN feed on loopback, created a little before now."""
    feed = HnFeed(start=int(time.time()) - 3600)
    feed.thread.start()
    try:
        yield feed
    finally:
        feed.httpd.shutdown()
        feed.httpd.server_close()


def db_counts(url: str) -> dict[str, Any]:
    """Posts and classifications as stored: ids, and classifications per post."""
    import sqlalchemy as sa

    from core.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            posts = {
                ext: pid for pid, ext in conn.execute(sa.text("SELECT id, external_id FROM post"))
            }
            per_post: dict[int, int] = dict(
                conn.execute(
                    sa.text("SELECT post_id, count(*) FROM classification GROUP BY post_id")
                ).all()
            )
    finally:
        engine.dispose()
    return {"posts": posts, "per_post": per_post}


def wait_all_classified(
    url: str, external_ids: set[str], timeout: float = 90, logs: Procs | None = None
) -> dict[str, Any]:
    """Wait until exactly these posts are stored, each with a classification; their counts.

    On a timeout the failure says what is missing, and which task lines of ``logs``' worker
    failed or retried, so that a run on a CI host can be explained from its output alone.
    """

    def done() -> bool:
        c = db_counts(url)
        return set(c["posts"]) == external_ids and len(c["per_post"]) == len(external_ids)

    try:
        wait_for(done, timeout, "every story stored and classified", every=1.0)
    except AssertionError as e:
        c = db_counts(url)
        stored = set(c["posts"])
        unlabelled = sorted(ext for ext, pid in c["posts"].items() if pid not in c["per_post"])
        said = [
            line[:300]
            for line in (logs.log("worker") if logs else "").splitlines()
            if any(k in line for k in ("raised unexpected", "Retry in", "ingest.", "ERROR"))
        ]
        raise AssertionError(
            f"{e}: {len(stored)} of {len(external_ids)} stored, "
            f"not stored {sorted(external_ids - stored)[:20]}, "
            f"stored unexpectedly {sorted(stored - external_ids)[:20]}, "
            f"{len(unlabelled)} unlabelled {unlabelled[:20]}; worker said:\n"
            + "\n".join(said[-60:])
        ) from None
    return db_counts(url)
