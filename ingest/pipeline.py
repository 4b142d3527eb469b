"""Running a source: fetch batches, upsert them, keep the cursor and the source's health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from core.logging import get_logger
from core.models import Source, SourceOutage, utcnow
from core.settings import SourceConfig
from ingest.base import Source as SourceAdapter
from ingest.store import quarantine, upsert_posts

log = get_logger(__name__)
MAX_BACKOFF = timedelta(hours=6)


def get_or_create_source(*, session: Session, config: SourceConfig) -> Source:
    """The Source row for ``config`` (created on first use; config refreshed)."""
    row = session.exec(select(Source).where(Source.name == config.name)).first()
    cfg = config.model_dump(mode="json", exclude={"options"})
    if row is None:
        row = Source(name=config.name, kind=config.kind, config=cfg, cursor={})
        session.add(row)
        session.flush()
    elif row.config != cfg or row.kind != config.kind:
        row.config, row.kind = cfg, config.kind
        session.add(row)
    return row


def record_failure(*, session: Session, source: Source, error: str, interval_s: int) -> None:
    """Count a failed run and push the next try back exponentially (bounded)."""
    now = utcnow()
    source.last_run_at = now
    source.last_error_at = now
    source.last_error = error[:2000]
    source.consecutive_failures += 1
    delay = min(timedelta(seconds=interval_s) * 2 ** (source.consecutive_failures - 1), MAX_BACKOFF)
    source.next_run_after = now + delay
    session.add(source)
    open_outage = session.exec(
        select(SourceOutage).where(
            SourceOutage.source == source.name,
            SourceOutage.ended_at.is_(None),  # type: ignore[union-attr]
        )
    ).first()
    if open_outage is None:
        # Coverage is known good up to the last success; the hours after it are a gap.
        started = source.last_success_at or now
        session.add(SourceOutage(source=source.name, started_at=min(started, now)))


def close_outages(*, session: Session, source: Source) -> None:
    """End the source's open outage window (it is running again)."""
    for row in session.exec(
        select(SourceOutage).where(
            SourceOutage.source == source.name,
            SourceOutage.ended_at.is_(None),  # type: ignore[union-attr]
        )
    ):
        row.ended_at = utcnow()
        session.add(row)


def run_source(
    *,
    session: Session,
    config: SourceConfig,
    adapter: SourceAdapter,
    secret: str,
    on_committed: Callable[[list[int]], object] | None = None,
) -> dict[str, Any]:
    """Fetch everything new from ``adapter``; each batch is committed with its cursor, then handed on.

    Returns counts. Errors from the adapter are recorded on the source's health and re-raised
    for the caller to decide on retries.
    """
    source = get_or_create_source(session=session, config=config)
    session.commit()
    totals = {"inserted": 0, "changed": 0, "unchanged": 0, "quarantined": 0, "batches": 0}
    try:
        for batch in adapter.fetch(cursor=dict(source.cursor or {})):
            result = upsert_posts(session=session, posts=batch.posts, secret=secret)
            nq = quarantine(session=session, items=batch.quarantined)
            if batch.cursor is not None:
                source.cursor = batch.cursor
            source.posts_collected += len(result.inserted)
            source.quarantined += nq
            session.add(source)
            session.commit()
            totals["inserted"] += len(result.inserted)
            totals["changed"] += len(result.changed)
            totals["unchanged"] += result.unchanged
            totals["quarantined"] += nq
            totals["batches"] += 1
            log.info(
                "ingest.batch",
                source=config.name,
                inserted=len(result.inserted),
                changed=len(result.changed),
                quarantined=nq,
            )
            if on_committed and result.to_classify:
                on_committed(result.to_classify)
    except Exception as e:
        session.rollback()
        record_failure(
            session=session,
            source=source,
            error=f"{type(e).__name__}: {e}",
            interval_s=config.interval_s,
        )
        session.commit()
        log.warning("ingest.failed", source=config.name, error=str(e)[:500])
        raise
    now = utcnow()
    source.last_run_at = now
    source.last_success_at = now
    source.consecutive_failures = 0
    source.next_run_after = None
    session.add(source)
    close_outages(session=session, source=source)
    session.commit()
    log.info("ingest.done", source=config.name, **totals)
    return totals


def source_status(*, session: Session) -> list[Source]:
    """Every known source with its health."""
    return list(session.exec(select(Source).order_by(Source.name)))
