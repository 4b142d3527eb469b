"""Faults: PostgreSQL stopped for 30 seconds in the middle of an ingest run."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.message import Message

import pytest

from tests.survival.conftest import (
    base_env,
    db_counts,
    free_port,
    wait_all_classified,
    wait_for,
)

pytestmark = [pytest.mark.survival, pytest.mark.faults]
OUTAGE_S = 30


def _get(url: str, key: str | None = None) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_postgres_outage_under_ingest(tmp_path, pg_server, pg_url, redis_url, hn_feed, procs):
    """Breaks: PostgreSQL stops (fast shutdown) for 30 s while a source is being ingested.

    Expected: the ingest run fails on the database, retries with backoff and, once PostgreSQL is
    back, resumes from its last committed cursor without anyone re-sending it; the API answers
    503 with Retry-After (never 500) while the database is down; in the end every story the
    source served (including those published during the outage) is stored once and classified once.
    """
    hn_feed.add(300)
    hn_feed.delay = 0.25  # 15 pages of 20: a run lasts several seconds
    port = free_port()
    env = base_env(
        tmp_path,
        database_url=pg_url,
        broker_url=redis_url,
        UNDERTOW_SOURCES=json.dumps([hn_feed.source()]),
        UNDERTOW_API_PORT=str(port),
        UNDERTOW_CLASSIFY_BATCH_SIZE="20",
    )
    p = procs(env)
    key = p.run("keys", "create", "--scope", "read", "--name", "faults").stdout.strip().split()[-1]
    api = f"http://127.0.0.1:{port}"
    p.start("api", "api")
    p.start("worker", "worker", "--concurrency", "2")
    wait_for(lambda: _get(f"{api}/readyz")[0] == 200, 60, "the API to be ready")
    # What the scheduler does every interval: one message; nobody sends another below.
    p.run("scheduler", "--run-job", "ingest.hn")
    wait_for(lambda: len(db_counts(pg_url)["posts"]) >= 20, 60, "the first committed page")

    pg_server.stop()
    down_at = time.monotonic()
    hn_feed.add(40)  # published while the database is down
    for path in (
        "/v1/posts?limit=5",
        "/v1/trends/weekly?week=2026-W43",
        "/v1/sources",
        "/v1/alerts",
    ):
        status, headers, body = _get(api + path, key)
        assert status == 503, (path, body[:500])
        assert int(headers.get("Retry-After", "0")) > 0, (path, dict(headers))
        assert json.loads(body)["status"] == 503
    assert _get(f"{api}/readyz")[0] == 503
    assert _get(f"{api}/healthz")[0] == 200
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    pg_server.start()

    wait_for(lambda: _get(f"{api}/v1/posts?limit=5", key)[0] == 200, 30, "the API to recover")
    everything = {s["objectID"] for s in hn_feed.stories}

    counts = wait_all_classified(pg_url, everything, logs=p)
    assert everything <= hn_feed.served
    assert set(counts["per_post"].values()) == {1}
    retried = [
        line
        for line in p.log("worker").splitlines()
        if "Task ingest.run_source[" in line and "Retry in" in line
    ]
    assert retried, "the ingest run never retried"
    assert "api.unhandled" not in p.log("api")


def test_a_page_committed_but_never_handed_on_is_handed_on_by_the_retry(pg_server, pg_url, hn_feed):
    """Breaks: PostgreSQL stops between the commit of a page and the hand-over of its posts to
    classification (which marks them requested in the database first), the window a CI run once
    fell into.

    Expected: the run fails on the database; its retry reads the page again and hands on the posts
    it had stored but never handed on, with the new ones; nothing is handed on twice by the retry.
    """
    from sqlalchemy.exc import OperationalError

    from classify.store import mark_requested
    from core.db import session_scope
    from core.settings import Settings, SourceConfig
    from ingest.pipeline import run_source
    from ingest.registry import open_source

    hn_feed.add(60)  # three pages of 20
    settings = Settings(database_url=pg_url, classifier="rules")
    config = SourceConfig(**hn_feed.source())
    handed: list[int] = []

    def hand_on(ids: list[int]) -> None:
        if not handed and pg_server_up[0]:
            pg_server.stop()
            pg_server_up[0] = False
        with session_scope(settings) as session:
            mark_requested(session=session, post_ids=ids)
        handed.extend(ids)

    def run() -> None:
        with session_scope(settings) as session, open_source(config, settings=settings) as src:
            run_source(
                session=session, config=config, adapter=src, secret="s", on_committed=hand_on
            )

    pg_server_up = [True]
    try:
        with pytest.raises(OperationalError):
            run()
    finally:
        pg_server.start()
    stored = db_counts(pg_url)["posts"]
    assert len(stored) == 20 and handed == []  # the first page: committed, never handed on
    run()
    assert sorted(handed) == sorted(db_counts(pg_url)["posts"].values())
    assert len(handed) == len(set(handed)) == 60
