"""Classification tasks: a batch of post ids in, Classification rows out."""

from __future__ import annotations

from typing import Any

from classify.loader import get_classifier
from classify.store import classify_posts, pending_post_ids
from core.db import session_scope
from core.settings import get_settings
from workers.app import DB_RETRY, celery_app
from workers.enqueue import enqueue_classification, enqueue_rollups


@celery_app.task(name="classify.posts", acks_late=True, **DB_RETRY)
def classify_posts_task(post_ids: list[int]) -> dict[str, Any]:
    """Classify these posts with the configured model (idempotent), then refresh rollups."""
    classifier = get_classifier()  # loaded once per worker process
    with session_scope() as session:
        result = classify_posts(session=session, post_ids=post_ids, classifier=classifier)
    enqueue_rollups()
    return result


@celery_app.task(name="classify.sweep", acks_late=True)
def sweep_task() -> int:
    """Re-enqueue posts without a classification for the current model and text."""
    return sweep()


def sweep() -> int:
    """The recovery sweep: a lost queue message never loses a post; returns posts enqueued."""
    settings = get_settings()
    classifier = get_classifier()
    with session_scope() as session:
        ids = pending_post_ids(
            session=session,
            model_version=classifier.version,
            stale_after_s=settings.requeue_after_s,
        )
    if ids:
        enqueue_classification(ids)
    return len(ids)
