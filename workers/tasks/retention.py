"""Retention task: delete posts older than ``retention_days``, batch by batch."""

from __future__ import annotations

from typing import Any

from core.logging import get_logger
from core.settings import get_settings
from ingest.retention import prune
from workers.app import celery_app

log = get_logger(__name__)


@celery_app.task(name="retention.prune", acks_late=True)
def prune_task() -> dict[str, Any]:
    """Delete what is older than the retention setting (a logged no-op when it is unset)."""
    days = get_settings().retention_days
    if not days:
        log.info("retention.off")
        return {"posts": 0}
    r = prune(days=days)
    return {"posts": r.posts, "quarantined": r.quarantined, "alerts_scrubbed": r.alerts_scrubbed}
