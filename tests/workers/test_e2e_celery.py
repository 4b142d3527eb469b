"""A real Celery worker: a post goes in, is classified on the worker, counted, and summarized.

Also: a worker SIGKILLed mid-corpus, restarted, ends with every post classified exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.models import Classification, Post
from core.taxonomy import load_taxonomy
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--concurrency", "1"],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _write_corpus(path: Path, n: int) -> None:
    texts = [
        "Claude refused to continue my research, this is ridiculous",
        "ChatGPT deleted four hours of research from my project chat",
        "Reading the Gemini release notes over coffee",
        "Does anyone know a good Python linter?",
    ]
    start = datetime(2026, 10, 19, 8, tzinfo=UTC)
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "platform": "bluesky" if i % 2 else "reddit",
                        "external_id": f"e2e-{i}",
                        "text": texts[i % len(texts)] + f" #{i}",
                        "created_at": (start + timedelta(minutes=7 * i)).isoformat(),
                        "author_handle": f"author{i % 13}",
                        "parent_external_id": f"e2e-{i - 2}" if i % 4 == 3 else None,
                        "root_external_id": f"e2e-{i - 2}" if i % 4 == 3 else f"e2e-{i}",
                    }
                )
                + "\n"
            )


@pytest.fixture
def redis_broker(settings) -> Iterator[str]:
    import redis

    url = settings.celery_broker_url
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_post_flows_through_a_real_worker_on_redis(settings, session, redis_broker, tmp_path):
    from cli.ingest import replay_file
    from trends.weekly import weekly_summary

    corpus = tmp_path / "posts.jsonl"
    _write_corpus(corpus, 40)
    env = {**os.environ, "UNDERTOW_DATABASE_URL": settings.sqlalchemy_url}
    worker = _worker(env, tmp_path / "worker.log")
    try:
        counts = replay_file(corpus, name="e2e")
        assert counts["inserted"] == 40

        def n_cls():
            return session.execute(
                sa.select(sa.func.count()).select_from(Classification)
            ).scalar_one()

        _wait(lambda: n_cls() == 40, 90, "40 classifications")

        def summarized() -> bool:
            session.rollback()
            s = weekly_summary(session=session, taxonomy=load_taxonomy(), week="2026-W43")
            return s["total"] == 40

        _wait(summarized, 60, "rollups refreshed by the worker")
        s = weekly_summary(session=session, taxonomy=load_taxonomy(), week="2026-W43")
        themes = {t["theme"]: t["count"] for t in s["themes"]}
        assert themes["refusal_complaint"] == 10
        assert themes["lost_work_claim"] == 10
        assert replay_file(corpus, name="e2e")["inserted"] == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert session.execute(sa.select(sa.func.count()).select_from(Post)).scalar_one() == 40


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigkilled_embedded_worker_loses_and_doubles_nothing(settings, session, tmp_path):
    """Embedded mode (filesystem broker, SQLite): kill -9 mid-corpus, restart, sweep."""
    broker_dir = tmp_path / "var"
    env = {
        **os.environ,
        "UNDERTOW_DATABASE_URL": settings.sqlalchemy_url,
        "UNDERTOW_BROKER_URL": "",
        "UNDERTOW_DATA_DIR": str(broker_dir),
        "UNDERTOW_CLASSIFY_BATCH_SIZE": "8",
    }
    corpus = tmp_path / "posts.jsonl"
    n = 600
    _write_corpus(corpus, n)
    subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", "replay", str(corpus)],
        cwd=REPO, env=env, check=True, capture_output=True,
    )  # fmt: skip

    def n_cls():
        return session.execute(sa.select(sa.func.count()).select_from(Classification)).scalar_one()

    worker = _worker(env, tmp_path / "worker1.log")
    _wait(lambda: n_cls() > 0, 90, "the first classifications")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    # Its pool process is orphaned in the worker's own process group: end that group only.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    done_at_kill = n_cls()
    assert done_at_kill < n, "the worker finished before it was killed; raise n"
    # What `make run` does: the scheduler's first job is the recovery sweep, and it sweeps
    # again every interval. A sweep requeues only posts requested over UNDERTOW_REQUEUE_AFTER_S
    # ago, so the batch the killed worker held can need a later sweep than the first.
    worker2 = _worker(env, tmp_path / "worker2.log")
    try:
        deadline = time.time() + 120
        while n_cls() < n:
            assert time.time() < deadline, "timed out waiting for every post classified"
            subprocess.run(
                [sys.executable, "-m", "cli.main", "classify", "sweep"],
                cwd=REPO, env={**env, "UNDERTOW_REQUEUE_AFTER_S": "10"}, check=True,
                capture_output=True,
            )  # fmt: skip
            next_sweep = time.time() + 12
            while n_cls() < n and time.time() < next_sweep:
                time.sleep(0.3)
    finally:
        worker2.terminate()
        worker2.wait(timeout=30)
    per_post = session.execute(
        sa.select(Classification.post_id, sa.func.count()).group_by(Classification.post_id)
    ).all()
    assert len(per_post) == n
    assert all(c == 1 for _, c in per_post)
