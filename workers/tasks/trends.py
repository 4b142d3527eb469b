"""Rollup tasks."""

from __future__ import annotations

from typing import Any

from core.db import session_scope
from trends.rollups import refresh_dirty
from workers.app import celery_app
from workers.enqueue import rollups_refresh_started


@celery_app.task(name="trends.refresh_rollups", acks_late=True)
def refresh_rollups_task() -> dict[str, Any]:
    """Recompute the hours marked dirty since the last run."""
    rollups_refresh_started()
    with session_scope() as session:
        return refresh_dirty(session=session)
