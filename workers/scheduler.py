"""The scheduler process: one table of jobs, each only enqueues a task; one holder of the lease."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.logging import get_logger
from core.settings import Settings, get_settings
from workers.app import celery_app
from workers.lease import FileLease, Lease, RedisLease

log = get_logger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """A periodic job: which task to enqueue, with what arguments, how often."""

    id: str
    task: str
    every_s: int
    args: tuple[Any, ...] = field(default_factory=tuple)
    run_at_start: bool = False
    # Run once this many seconds after start, then every ``every_s`` (None: first run after one period).
    first_after_s: int | None = None
    # A crontab line in Settings.timezone (for calendar jobs); ``every_s`` is then its period.
    cron: str | None = None


def job_table(settings: Settings) -> list[JobSpec]:
    """Every scheduled job, in one place."""
    jobs = [
        JobSpec("classify.sweep", "classify.sweep", settings.sweep_interval_s, run_at_start=True),
        JobSpec("trends.refresh_rollups", "trends.refresh_rollups", settings.rollup_interval_s),
        # Detection refreshes the dirty rollups itself first, so it always reads fresh counts. Its
        # first run comes soon after start (once the start-up sweep's work is classified), so a
        # replayed or backfilled history shows its incidents without waiting a whole period.
        JobSpec(
            "alerts.detect",
            "alerts.detect",
            settings.alerts.detect_interval_s,
            first_after_s=min(settings.alerts.detect_interval_s, 120),
        ),
        JobSpec("reports.weekly", "reports.weekly", 7 * 86400, cron="0 8 * * mon"),
    ]
    if settings.retention_days:
        # Daily at 03:30 in the configured time zone, and once at start (a no-op when done).
        jobs.append(
            JobSpec(
                "retention.prune", "retention.prune", 86400, run_at_start=True, cron="30 3 * * *"
            )
        )
    for src in settings.sources:
        if src.enabled and src.kind != "replay":
            jobs.append(
                JobSpec(f"ingest.{src.name}", "ingest.run_source", src.interval_s, (src.name,))
            )
    return jobs


def enqueue(task: str, args: tuple[Any, ...]) -> None:
    """What every job does: send one task by name."""
    celery_app.send_task(task, args=list(args))
    log.info("scheduler.enqueued", task=task, args=list(args))


def make_lease(settings: Settings) -> Lease:
    """Redis lease when Redis is configured, otherwise a file lock under the data folder."""
    if settings.redis_url:
        return RedisLease(settings.redis_url)
    return FileLease((settings.data_dir / "scheduler.lock").resolve())


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """An APScheduler with the job table; nothing runs until ``start()``."""
    sched = BackgroundScheduler(timezone=UTC)
    now = datetime.now(UTC)
    for job in job_table(settings):
        # next_run_time=None would add the job paused (APScheduler 3): pass it only to run now.
        start: dict[str, Any] = {}
        if job.run_at_start:
            start["next_run_time"] = now
        elif job.first_after_s is not None:
            start["next_run_time"] = now + timedelta(seconds=job.first_after_s)
        trigger = (
            CronTrigger.from_crontab(job.cron, timezone=ZoneInfo(settings.timezone))
            if job.cron
            else IntervalTrigger(seconds=job.every_s)
        )
        sched.add_job(
            enqueue,
            trigger,
            args=[job.task, job.args],
            id=job.id,
            max_instances=1,
            coalesce=True,
            # A late run may still fire within half its period (a calendar job within 6 hours),
            # never stack up behind it.
            misfire_grace_time=max(
                1, min(job.every_s // 2, 6 * 3600) if job.cron else job.every_s // 2
            ),
            **start,
        )
    return sched


def run_job_now(job_id: str, settings: Settings | None = None) -> None:
    """Enqueue one job's task immediately (the CLI's `scheduler run-job`)."""
    for job in job_table(settings or get_settings()):
        if job.id == job_id:
            enqueue(job.task, job.args)
            return
    raise KeyError(job_id)


def serve(settings: Settings | None = None, *, poll_s: float = 2.0) -> None:
    """Wait for the lease, run the jobs while it is held, stop on SIGTERM/SIGINT or a lost lease."""
    settings = settings or get_settings()
    lease = make_lease(settings)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.is_set():
        log.info("scheduler.waiting_for_lease")
        while not stop.is_set() and not lease.try_acquire():
            stop.wait(poll_s)
        if stop.is_set():
            return
        sched = build_scheduler(settings)
        sched.start()
        log.info("scheduler.started", jobs=[j.id for j in job_table(settings)])
        try:
            while not stop.wait(poll_s):
                if not lease.renew():
                    # Another process may hold it now; go back to waiting rather than double-fire.
                    log.error("scheduler.lease_lost")
                    break
        finally:
            sched.shutdown(wait=False)
            lease.release()
    log.info("scheduler.stopped")
