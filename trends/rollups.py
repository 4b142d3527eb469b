"""Rollups: posts per hour x platform x product x theme, recomputed for dirty hours only.

An hour is recomputed from the posts and the labels in force, so the incremental path and a
full rebuild give the same numbers by construction, and a repeated task changes nothing.
"""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import is_postgres
from core.models import Classification, DirtyBucket, Label, Post, Rollup, utcnow

ALL = "*"
POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]
ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
DIRTY = DirtyBucket.__table__  # type: ignore[attr-defined]


def count_bucket(session: Session, bucket: datetime) -> Counter[tuple[str, str, str]]:
    """Counts keyed (platform, product, theme) for one hour, from the labels in force."""
    stmt = (
        sa.select(
            POST.c.platform,
            CLS.c.themes,
            CLS.c.products,
            CLS.c.targets,
            LABEL.c.themes.label("label_themes"),
            LABEL.c.products.label("label_products"),
        )
        .select_from(POST)
        .outerjoin(CLS, CLS.c.id == POST.c.classification_id)
        .outerjoin(LABEL, LABEL.c.id == POST.c.label_id)
        .where(
            POST.c.created_at >= bucket,
            POST.c.created_at < bucket + timedelta(hours=1),
            POST.c.deleted_at.is_(None),
            sa.or_(POST.c.classification_id.is_not(None), POST.c.label_id.is_not(None)),
        )
    )
    counts: Counter[tuple[str, str, str]] = Counter()
    for platform, themes, products, targets, l_themes, l_products in session.execute(stmt):
        if l_themes is not None:
            themes = l_themes
            products = l_products if l_products is not None else (products or [])
            targets = {}
        themes, products, targets = themes or [], products or [], targets or {}
        for product in [ALL, *set(products)]:
            counts[(platform, product, ALL)] += 1
        for theme in set(themes):
            target = targets.get(theme)
            theme_products = [target] if target else sorted(set(products))
            for product in [ALL, *theme_products]:
                counts[(platform, product, theme)] += 1
    return counts


def _lock(session: Session, bucket: datetime) -> None:
    # Two workers recomputing one hour must not interleave read and write (PostgreSQL);
    # SQLite serializes writers already.
    if is_postgres(session):
        key = zlib.crc32(bucket.isoformat().encode()) & 0x7FFFFFFF
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def recompute_bucket(session: Session, bucket: datetime) -> int:
    """Replace the rollup rows of one hour with fresh counts; returns rows written."""
    _lock(session, bucket)
    counts = count_bucket(session, bucket)
    session.execute(sa.delete(ROLLUP).where(ROLLUP.c.bucket == bucket))
    rows = [
        {"bucket": bucket, "platform": pl, "product": pr, "theme": th, "count": n}
        for (pl, pr, th), n in sorted(counts.items())
    ]
    if rows:
        session.execute(sa.insert(ROLLUP), rows)
    return len(rows)


def refresh_dirty(*, session: Session, limit: int = 500) -> dict[str, Any]:
    """Recompute the hours marked dirty (oldest first); the caller commits."""
    dirty = list(
        session.execute(
            sa.select(DIRTY.c.bucket, DIRTY.c.marked_at).order_by(DIRTY.c.bucket).limit(limit)
        )
    )
    written = 0
    for bucket, marked_at in dirty:
        written += recompute_bucket(session, bucket)
        # Only clear the mark if nobody re-marked the hour since we read it.
        session.execute(
            sa.delete(DIRTY).where(DIRTY.c.bucket == bucket, DIRTY.c.marked_at <= marked_at)
        )
    return {"buckets": len(dirty), "rows": written}


def rebuild_all(*, session: Session) -> dict[str, Any]:
    """Recompute every hour that holds posts, and drop rollups of hours that hold none."""
    hours: set[datetime] = set()
    for (created,) in session.execute(sa.select(POST.c.created_at)):
        hours.add(created.replace(minute=0, second=0, microsecond=0))
    session.execute(sa.delete(ROLLUP))
    written = sum(recompute_bucket(session, h) for h in sorted(hours))
    session.execute(sa.delete(DIRTY).where(DIRTY.c.marked_at <= utcnow()))
    return {"buckets": len(hours), "rows": written}


def snapshot(*, session: Session) -> dict[tuple[Any, ...], int]:
    """All rollup rows as a dict, for comparing the incremental path with a rebuild."""
    return {
        (b.isoformat(), pl, pr, th): n
        for b, pl, pr, th, n in session.execute(
            sa.select(
                ROLLUP.c.bucket, ROLLUP.c.platform, ROLLUP.c.product, ROLLUP.c.theme, ROLLUP.c.count
            )
        )
    }
