"""Faults: a Celery worker SIGKILLed in the middle of a classification batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.survival.conftest import base_env, db_counts, wait_for

pytestmark = [pytest.mark.survival, pytest.mark.faults]


def write_corpus(path, n: int, prefix: str) -> set[str]:
    """A JSON Lines corpus of ``n`` posts (what the source served); returns their ids."""
    texts = [
        "Claude refused to continue my research, this is ridiculous",
        "ChatGPT deleted four hours of research from my project chat",
        "Reading the Gemini release notes over coffee",
        "Does anyone know a good Python linter?",
    ]
    start = datetime(2026, 10, 19, 8, tzinfo=UTC)
    with path.open("w") as fh:
        for i in range(n):
            row = {
                "platform": "reddit",
                "external_id": f"{prefix}-{i}",
                "text": f"{texts[i % len(texts)]} #{i}",
                "created_at": (start + timedelta(minutes=3 * i)).isoformat(),
                "author_handle": f"author{i % 11}",
            }
            fh.write(json.dumps(row) + "\n")
    return {f"{prefix}-{i}" for i in range(n)}


def test_sigkilled_worker_mid_batch_classifies_every_post_once(tmp_path, pg_url, redis_url, procs):
    """Breaks: SIGKILL of the worker (and its pool) while it classifies; a new worker starts.

    Expected: the killed batch is not lost (the scheduler's recovery sweep re-enqueues posts
    with no classification for the current model and text) and nothing is doubled (one
    classification per post and text), so the database holds every served post, each once.
    """
    env = base_env(
        tmp_path,
        database_url=pg_url,
        broker_url=redis_url,
        UNDERTOW_REDIS_URL=redis_url,
        UNDERTOW_CLASSIFY_BATCH_SIZE="50",
        UNDERTOW_SWEEP_INTERVAL_S="10",
        UNDERTOW_REQUEUE_AFTER_S="10",
    )
    p = procs(env)
    served = write_corpus(tmp_path / "posts.jsonl", 1200, "kill")
    p.run("ingest", "replay", str(tmp_path / "posts.jsonl"), "--name", "served")

    def classified() -> int:
        return len(db_counts(pg_url)["per_post"])

    worker = p.start("worker-1", "worker", "--queues", "classify", "--concurrency", "1")

    def mid_batch() -> bool:
        log = p.log("worker-1")
        received, done = log.count("] received"), log.count("] succeeded in")
        # One batch done and the next one taken: the kill lands inside a batch, mid-corpus.
        return done >= 1 and received > done

    wait_for(mid_batch, 90, "a batch in the worker's hands", every=0.02)
    p.kill(worker)
    at_kill = classified()
    assert 0 < at_kill < len(served), "the worker was not killed mid-corpus"

    p.start("worker-2", "worker", "--queues", "classify", "--concurrency", "1")
    p.start("scheduler", "scheduler")
    wait_for(lambda: classified() == len(served), 60, "every post classified")
    counts = db_counts(pg_url)
    assert set(counts["posts"]) == served
    assert set(counts["per_post"]) == set(counts["posts"].values())
    assert set(counts["per_post"].values()) == {1}, "a post was classified twice"
    assert "scheduler.enqueued" in p.log("scheduler")
