"""The scheduler: one job table, polite job options, and a lease that only one process holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from core.settings import Settings, SourceConfig
from tests.conftest import REPO
from workers.lease import FileLease, RedisLease
from workers.scheduler import build_scheduler, job_table


def test_job_table_and_options():
    settings = Settings(
        sources=[
            SourceConfig(name="hn", kind="hackernews", interval_s=300),
            SourceConfig(name="off", kind="rss", enabled=False),
        ]
    )
    ids = [j.id for j in job_table(settings)]
    assert ids == [
        "classify.sweep",
        "trends.refresh_rollups",
        "alerts.detect",
        "reports.weekly",
        "ingest.hn",
    ]
    sched = build_scheduler(settings)
    specs = {j.id: j for j in job_table(settings)}
    for job in sched.get_jobs():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert 0 < job.misfire_grace_time < specs[job.id].every_s
    assert tuple(sched.get_job("ingest.hn").args) == ("ingest.run_source", ("hn",))
    # Jobs run on their schedule, none is added paused.
    sched.start(paused=True)
    try:
        assert all(job.next_run_time is not None for job in sched.get_jobs())
        weekly = sched.get_job("reports.weekly")
        assert weekly.next_run_time.weekday() == 0 and weekly.next_run_time.hour == 8
        # Detection first runs two minutes after start, not one 15-minute period later.
        detect = sched.get_job("alerts.detect").next_run_time
        rollups = sched.get_job("trends.refresh_rollups").next_run_time
        assert 100 <= (detect - rollups).total_seconds() + settings.rollup_interval_s <= 140
    finally:
        sched.shutdown(wait=False)


def test_file_lease_is_exclusive_and_released_on_death(tmp_path):
    path = tmp_path / "scheduler.lock"
    a, b = FileLease(path), FileLease(path)
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()
    # A holder that dies without releasing: the OS drops the lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from workers.lease import FileLease; import time; l=FileLease(__import__('pathlib').Path({str(path)!r})); assert l.try_acquire(); print('held', flush=True); time.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    assert not a.try_acquire()
    holder.kill()
    holder.wait()
    assert a.try_acquire()
    a.release()


def test_redis_lease_takeover_after_expiry():
    url = "redis://127.0.0.1:6379/14"
    key = f"undertow:test:lease:{uuid.uuid4().hex}"
    a = RedisLease(url, key=key, ttl_ms=400)
    b = RedisLease(url, key=key, ttl_ms=400)
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.renew() and not b.renew()
    time.sleep(0.6)  # a stops renewing (as if dead): its lease expires
    assert b.try_acquire()
    assert not a.renew(), "a lost lease cannot be renewed"
    a.release()  # releasing someone else's lease does nothing
    assert not a.try_acquire()
    b.release()
    assert a.try_acquire()
    a.release()


@pytest.mark.slow
def test_two_scheduler_processes_fire_once(tmp_path):
    """Two `undertow scheduler` processes on one lease: only one enqueues."""
    import redis

    broker = "redis://127.0.0.1:6379/13"
    r = redis.Redis.from_url(broker)
    r.flushdb()
    env = {
        **os.environ,
        "UNDERTOW_BROKER_URL": broker,
        "UNDERTOW_REDIS_URL": "redis://127.0.0.1:6379/13",
        "UNDERTOW_SWEEP_INTERVAL_S": "10",
        "UNDERTOW_ROLLUP_INTERVAL_S": "3600",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "scheduler"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"s{i}.log").open("w"),
        )
        for i in range(2)
    ]
    try:
        time.sleep(8)
        # The sweep runs at start: exactly one message from exactly one scheduler.
        assert r.llen("classify") == 1
        logs = [(tmp_path / f"s{i}.log").read_text() for i in range(2)]
        assert sum("scheduler.started" in log for log in logs) == 1
        assert sum("scheduler.waiting_for_lease" in log for log in logs) == 2
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
        r.flushdb()
