"""Handing work to the queue, always after the commit that made the rows it reads."""

from __future__ import annotations

from classify.store import mark_requested
from core.db import session_scope
from core.logging import get_logger
from core.settings import get_settings
from workers.app import celery_app

log = get_logger(__name__)


def enqueue_classification(post_ids: list[int]) -> int:
    """Mark posts as requested (committed), then send them in batches; returns batches sent."""
    settings = get_settings()
    size = settings.classify_batch_size
    batches = [post_ids[i : i + size] for i in range(0, len(post_ids), size)]
    with session_scope() as session:
        mark_requested(session=session, post_ids=post_ids)
    for batch in batches:
        celery_app.send_task("classify.posts", args=[batch])
    if batches:
        log.info("classify.enqueued", posts=len(post_ids), batches=len(batches))
    return len(batches)


def enqueue_rollups() -> None:
    """Ask for the dirty hours to be recomputed."""
    celery_app.send_task("trends.refresh_rollups")
