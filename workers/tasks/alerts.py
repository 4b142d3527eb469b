"""Alert tasks: detection over the rollups (scheduled), and delivery of one alert to one channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Task

from core.db import session_scope
from core.logging import get_logger
from core.models import utcnow
from core.settings import get_settings
from trends.alerts import delivery_jobs, detect, stale_deliveries
from trends.notify import backoff_s, deliver
from trends.rollups import refresh_dirty
from workers.app import celery_app

log = get_logger(__name__)


@celery_app.task(name="alerts.detect", acks_late=True)
def detect_task(now: str | None = None) -> dict[str, Any]:
    """Refresh dirty rollups, run every enabled rule, then hand new alerts to their channels.

    ``now`` (ISO 8601) replays detection at another time; the scheduler leaves it out.
    """
    return run_detection(datetime.fromisoformat(now) if now else None)


def run_detection(now: datetime | None = None) -> dict[str, Any]:
    """What the task does, callable from the CLI: detect, commit, then enqueue deliveries."""
    settings = get_settings()
    # Every dirty hour first (a backfill can mark more than one pass takes): detection must not
    # read a stale rollup, least of all the newest hours.
    for _ in range(100):  # bounded: 500 hours a pass
        with session_scope(settings) as session:
            if not refresh_dirty(session=session)["buckets"]:
                break
    with session_scope(settings) as session:
        result = detect(session=session, settings=settings, now=now)
    # Enqueue only after the commit that made the alerts, plus any pair whose message was lost.
    with session_scope(settings) as session:
        jobs = delivery_jobs(session=session, alert_ids=result["opened"])
        if now is None:
            stale = stale_deliveries(session=session, now=utcnow(), settings=settings)
            jobs += [j for j in stale if j not in jobs]
    for alert_id, key in jobs:
        celery_app.send_task("alerts.deliver", args=[alert_id, key])
    result["deliveries_enqueued"] = len(jobs)
    log.info("alerts.detected", opened=result["opened"], resolved=result["resolved"])
    return result


@celery_app.task(name="alerts.deliver", bind=True, acks_late=True, max_retries=None)
def deliver_task(self: Task, alert_id: int, channel_key: str) -> dict[str, Any]:
    """Send one alert through one channel; transient failures retry with backoff and jitter.

    The bound is ``alerts.max_attempts`` counted in Delivery rows, so a redelivered message
    cannot retry forever; an alert sent once to a channel is never sent there again.
    """
    settings = get_settings()
    with session_scope(settings) as session:
        outcome = deliver(session=session, alert_id=alert_id, key=channel_key, settings=settings)
    if outcome.retry:
        raise self.retry(countdown=backoff_s(outcome.attempt, settings))
    return {"status": outcome.status, "attempt": outcome.attempt}
