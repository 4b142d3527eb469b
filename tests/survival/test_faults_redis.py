"""Faults: Redis (broker and scheduler lease) restarted, empty, while ingest and classification run."""

from __future__ import annotations

import json
import time

import pytest

from tests.survival.conftest import (
    base_env,
    db_counts,
    wait_all_classified,
    wait_for,
)

pytestmark = [pytest.mark.survival, pytest.mark.faults]


def test_redis_restart_loses_no_post(tmp_path, pg_url, redis_server, redis_url, hn_feed, procs):
    """Breaks: redis-server is SIGKILLed and restarted without persistence while an ingest run
    and classification batches are in flight, so every queued message is gone.

    Expected: posts committed before the crash stay, the next ingest run resumes from the stored
    cursor, the scheduler survives the outage and its recovery sweep re-enqueues the posts whose
    messages were lost: every story served ends up stored once and classified once.
    """
    hn_feed.add(300)
    hn_feed.delay = 0.2
    env = base_env(
        tmp_path,
        database_url=pg_url,
        broker_url=redis_url,
        UNDERTOW_REDIS_URL=redis_url,
        UNDERTOW_SOURCES=json.dumps([hn_feed.source(interval_s=3600)]),
        UNDERTOW_CLASSIFY_BATCH_SIZE="20",
        UNDERTOW_SWEEP_INTERVAL_S="10",
        UNDERTOW_REQUEUE_AFTER_S="10",
    )
    p = procs(env)
    scheduler = p.start("scheduler", "scheduler")
    # One worker process for ingest and classification, so classify batches queue up behind it.
    p.start("worker", "worker", "--concurrency", "1")
    wait_for(lambda: "scheduler.started" in p.log("scheduler"), 30, "the scheduler")
    p.run("scheduler", "--run-job", "ingest.hn")
    wait_for(lambda: len(db_counts(pg_url)["posts"]) >= 40, 60, "two committed pages")

    redis_server.stop()  # SIGKILL: nothing saved, every queued message lost
    time.sleep(3)
    hn_feed.add(30)  # published while Redis was down
    redis_server.start()
    at_restart = db_counts(pg_url)
    assert len(at_restart["posts"]) < len(hn_feed.stories), "the run finished before the crash"

    # The next ingest run (the scheduler's job, run now): it starts from the committed cursor.
    p.run("ingest", "once", "hn")
    everything = {s["objectID"] for s in hn_feed.stories}

    counts = wait_all_classified(pg_url, everything, logs=p)
    assert set(counts["per_post"].values()) == {1}, "a post was classified twice"
    assert scheduler.poll() is None, "the scheduler died with Redis"
    assert p.log("scheduler").count("scheduler.started") >= 2, "the lease was not taken again"
