"""Retention: posts older than ``retention_days`` are deleted with everything derived from them.

A post goes with its classifications, tags and labels (its raw payload is a column of the row);
quarantined raw items older than the cutoff go too, and alerts opened before it keep their
example post ids but lose the copied text. The hours the deleted posts counted in are marked
dirty, so the rollups are recomputed from what is left. Work is done in batches; the caller
commits after each one, so a first prune of a large history never holds one long transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import hour_bucket, mark_dirty, session_scope
from core.logging import get_logger
from core.models import Alert, Classification, Label, Post, PostTag, Quarantine, utcnow
from core.settings import Settings

log = get_logger(__name__)

POST = Post.__table__  # type: ignore[attr-defined]
DERIVED = [
    Classification.__table__,  # type: ignore[attr-defined]
    PostTag.__table__,  # type: ignore[attr-defined]
    Label.__table__,  # type: ignore[attr-defined]
]
QUARANTINE = Quarantine.__table__  # type: ignore[attr-defined]
ALERT = Alert.__table__  # type: ignore[attr-defined]
# What an alert keeps of an example post past retention: no text, no link to it.
_KEPT = frozenset({"id", "platform", "created_at"})


@dataclass
class PruneResult:
    """What one batch removed."""

    posts: int = 0
    quarantined: int = 0
    alerts_scrubbed: int = 0
    hours: int = 0

    def add(self, other: PruneResult) -> None:
        """Accumulate ``other`` into this result."""
        self.posts += other.posts
        self.quarantined += other.quarantined
        self.alerts_scrubbed += other.alerts_scrubbed
        self.hours += other.hours

    @property
    def empty(self) -> bool:
        """Whether the batch found nothing to do."""
        return not (self.posts or self.quarantined or self.alerts_scrubbed)


def cutoff_for(days: int, *, now: datetime | None = None) -> datetime:
    """The instant before which posts are pruned."""
    if days < 1:
        raise ValueError("retention needs at least one day")
    return (now or utcnow()) - timedelta(days=days)


def count_prunable(*, session: Session, cutoff: datetime) -> int:
    """How many posts a prune at ``cutoff`` would delete (for a dry run)."""
    stmt = sa.select(sa.func.count()).select_from(POST).where(POST.c.created_at < cutoff)
    return int(session.execute(stmt).scalar_one())


def prune_batch(*, session: Session, cutoff: datetime, batch_size: int = 1000) -> PruneResult:
    """Delete up to ``batch_size`` posts created before ``cutoff`` and what derives from them."""
    result = PruneResult()
    rows = session.execute(
        sa.select(POST.c.id, POST.c.created_at)
        .where(POST.c.created_at < cutoff)
        .order_by(POST.c.created_at)
        .limit(batch_size)
    ).all()
    if rows:
        ids = [r[0] for r in rows]
        # Explicit deletes rather than trusting ON DELETE CASCADE to be enforced everywhere.
        for table in DERIVED:
            session.execute(sa.delete(table).where(table.c.post_id.in_(ids)))
        session.execute(sa.delete(POST).where(POST.c.id.in_(ids)))
        hours = {hour_bucket(r[1]) for r in rows}
        mark_dirty(session, hours)
        result.posts, result.hours = len(ids), len(hours)
    q_ids = list(
        session.execute(
            sa.select(QUARANTINE.c.id).where(QUARANTINE.c.created_at < cutoff).limit(batch_size)
        ).scalars()
    )
    if q_ids:
        session.execute(sa.delete(QUARANTINE).where(QUARANTINE.c.id.in_(q_ids)))
        result.quarantined = len(q_ids)
    result.alerts_scrubbed = _scrub_alerts(session, cutoff, batch_size)
    return result


def _scrub_alerts(session: Session, cutoff: datetime, limit: int) -> int:
    """Drop the copied post text and link from alerts whose window ended before ``cutoff``."""
    done = 0
    rows = session.execute(
        sa.select(ALERT.c.id, ALERT.c.details).where(ALERT.c.window_end < cutoff)
    ).all()
    for alert_id, details in rows:
        examples = (details or {}).get("examples") or []
        if not any(isinstance(e, dict) and set(e) - _KEPT for e in examples):
            continue
        kept: dict[str, Any] = {
            **details,
            "examples": [
                {k: v for k, v in e.items() if k in _KEPT} for e in examples if isinstance(e, dict)
            ],
        }
        session.execute(sa.update(ALERT).where(ALERT.c.id == alert_id).values(details=kept))
        done += 1
        if done >= limit:
            break
    return done


def prune(*, days: int, settings: Settings | None = None, batch_size: int = 1000) -> PruneResult:
    """Prune everything older than ``days``, one committed transaction per batch."""
    cutoff = cutoff_for(days)
    total = PruneResult()
    while True:
        with session_scope(settings) as session:
            batch = prune_batch(session=session, cutoff=cutoff, batch_size=batch_size)
        total.add(batch)
        if batch.empty:
            break
    log.info(
        "retention.pruned",
        cutoff=cutoff.isoformat(),
        posts=total.posts,
        quarantined=total.quarantined,
        alerts_scrubbed=total.alerts_scrubbed,
        hours=total.hours,
    )
    return total
