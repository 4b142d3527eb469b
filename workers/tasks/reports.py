"""Report tasks: the weekly report (scheduled Monday 08:00 in Settings.timezone)."""

from __future__ import annotations

from typing import Any

from celery import Task

from core.db import session_scope
from core.logging import get_logger
from core.settings import get_settings
from core.taxonomy import load_taxonomy
from trends.report import deliver_report, generate_weekly_report
from workers.app import celery_app

log = get_logger(__name__)


@celery_app.task(name="reports.weekly", bind=True, acks_late=True, max_retries=5)
def weekly_report_task(self: Task, week: str | None = None) -> dict[str, Any]:
    """Write the report of ``week`` (default: the last complete week), then send it once per channel.

    Writing is idempotent (the folder is replaced atomically); sending skips channels that already
    got this week's report, so a redelivered message sends nothing twice.
    """
    settings = get_settings()
    with session_scope(settings) as session:
        report, path = generate_weekly_report(
            session=session,
            settings=settings,
            taxonomy=load_taxonomy(settings.taxonomy_path),
            week=week,
        )
    with session_scope(settings) as session:
        outcomes = deliver_report(session=session, settings=settings, report=report)
    log.info("report.weekly", week=report.week, path=str(path), deliveries=len(outcomes))
    if any(o["status"] == "retrying" for o in outcomes):
        # Backoff with a bound: 5, 10, 20, 40, 80 minutes.
        raise self.retry(countdown=300 * 2**self.request.retries, kwargs={"week": report.week})
    return {"week": report.week, "path": str(path), "deliveries": outcomes}
