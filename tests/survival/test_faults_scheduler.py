"""Faults: two scheduler processes at once still fire each job once per period."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.survival.conftest import base_env, wait_for

pytestmark = [pytest.mark.survival, pytest.mark.faults]


def _fired(url: str) -> Counter[str]:
    """Tasks waiting in the broker's queues, by task name (nothing consumes them here)."""
    import redis

    r = redis.Redis.from_url(url)
    names: Counter[str] = Counter()
    for queue in ("classify", "default", "ingest"):
        for raw in r.lrange(queue, 0, -1):
            names[json.loads(raw)["headers"]["task"]] += 1
    return names


def test_two_schedulers_fire_each_job_once_per_period(tmp_path, redis_url, procs):
    """Breaks: a second `undertow scheduler` starts beside the first, on the same Redis.

    Expected: the lease lets one of them fire; over the window every job fired as often as one
    scheduler fires it (the sweep at start and every 10 s, rollups every 5 s), never twice as often.
    Then the holder is SIGKILLed: the other takes over once the lease expires and fires alone.
    """
    env = base_env(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'sched.db'}",
        broker_url=redis_url,
        UNDERTOW_REDIS_URL=redis_url,
        UNDERTOW_SWEEP_INTERVAL_S="10",
        UNDERTOW_ROLLUP_INTERVAL_S="5",
    )
    p = procs(env)
    a = p.start("sched-a", "scheduler")
    b = p.start("sched-b", "scheduler")
    wait_for(lambda: _fired(redis_url)["classify.sweep"] >= 1, 30, "the start-up sweep")
    first = time.monotonic()
    time.sleep(21)
    fired = _fired(redis_url)
    window = time.monotonic() - first
    # One scheduler fires the sweep at start and then every 10 s; rollups every 5 s.
    assert 1 + window // 10 - 1 <= fired["classify.sweep"] <= 1 + window // 10 + 1, fired
    assert window // 5 - 1 <= fired["trends.refresh_rollups"] <= window // 5 + 1, fired
    logs = {"sched-a": p.log("sched-a"), "sched-b": p.log("sched-b")}
    holders = [name for name, log in logs.items() if "scheduler.started" in log]
    assert len(holders) == 1, logs

    # The holder dies without releasing: the other one takes over after the lease's 30 s TTL.
    holder, other = (a, "sched-b") if holders == ["sched-a"] else (b, "sched-a")
    p.kill(holder)
    before = _fired(redis_url)["classify.sweep"]
    wait_for(lambda: "scheduler.started" in p.log(other), 45, "the takeover")
    wait_for(lambda: _fired(redis_url)["classify.sweep"] == before + 1, 10, "its start-up sweep")
