"""Ingest tasks: run one configured source, hand new posts to classification."""

from __future__ import annotations

from typing import Any

from celery import Task

from core.db import session_scope
from core.errors import NotFound
from core.logging import get_logger
from core.models import utcnow
from core.settings import get_settings
from workers.app import DB_RETRY, celery_app
from workers.enqueue import enqueue_classification

log = get_logger(__name__)


@celery_app.task(name="ingest.run_source", bind=True, acks_late=True, **DB_RETRY)
def run_source_task(self: Task, name: str) -> dict[str, Any]:
    """Run the source ``name`` now unless it is backing off after failures.

    An unreachable database retries the run with backoff (nothing is fetched for good until a
    batch and its cursor are committed); a retry ignores the source's own backoff.
    """
    return run_source_now(name, respect_backoff=self.request.retries == 0)


def run_source_now(name: str, *, respect_backoff: bool = False) -> dict[str, Any]:
    """Fetch and store what is new at source ``name``; new posts are enqueued after each commit."""
    from ingest.pipeline import get_or_create_source, run_source
    from ingest.registry import open_source

    settings = get_settings()
    config = next((s for s in settings.sources if s.name == name), None)
    if config is None:
        raise NotFound(f"no source named {name!r} in the configuration")
    with session_scope() as session:
        row = get_or_create_source(session=session, config=config)
        if respect_backoff and row.next_run_after and row.next_run_after > utcnow():
            log.info("ingest.backing_off", source=name, until=row.next_run_after.isoformat())
            return {"skipped": "backoff"}
        with open_source(config, settings=settings) as adapter:
            return run_source(
                session=session,
                config=config,
                adapter=adapter,
                secret=settings.author_key_secret.get_secret_value(),
                on_committed=enqueue_classification,
            )
