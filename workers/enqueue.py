"""Handing work to the queue, always after the commit that made the rows it reads."""

from __future__ import annotations

from functools import lru_cache

import redis

from classify.store import mark_requested
from core.db import session_scope
from core.logging import get_logger
from core.settings import get_settings
from workers.app import celery_app

log = get_logger(__name__)
# Set while a rollup refresh is queued and not yet started (Redis brokers only).
ROLLUPS_PENDING_KEY = "undertow:rollups:pending"
ROLLUPS_PENDING_TTL_S = 60
ROLLUPS_DEBOUNCE_S = 3


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
    """Ask for the dirty hours to be recomputed, unless a refresh is already waiting to run.

    A burst makes hundreds of classify batches; each used to queue a refresh that recomputed
    the same busy hour again (20,000 replies: 313 recomputes of 0.5-1 s each). One refresh reads
    every hour marked dirty when it starts, so a queued one covers all batches committed before
    it; the countdown lets a few more batches land first. A lost message or a Redis error only
    costs freshness until the scheduler's periodic refresh.
    """
    url = get_settings().celery_broker_url
    if url.startswith(("redis://", "rediss://")):
        try:
            if not _redis(url).set(ROLLUPS_PENDING_KEY, "1", nx=True, ex=ROLLUPS_PENDING_TTL_S):
                return
        except redis.RedisError:
            log.exception("rollups.pending_flag_failed")
        celery_app.send_task("trends.refresh_rollups", countdown=ROLLUPS_DEBOUNCE_S)
        return
    celery_app.send_task("trends.refresh_rollups")


def rollups_refresh_started() -> None:
    """Clear the pending flag before the dirty hours are read: later batches queue a new refresh."""
    url = get_settings().celery_broker_url
    if url.startswith(("redis://", "rediss://")):
        try:
            _redis(url).delete(ROLLUPS_PENDING_KEY)
        except redis.RedisError:
            log.exception("rollups.pending_flag_failed")


@lru_cache(maxsize=2)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)
