"""Reads the dashboard and the weekly report share: daily series, weekly history, breakdowns,
coverage, text search, examples and chart markers. All counts come from the rollups (human
labels already override model labels there); posts come through trends.posts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import is_postgres
from core.models import Rollup, Source, utcnow
from core.taxonomy import Taxonomy
from trends.posts import POST, filtered_query, list_posts
from trends.rollups import ALL
from trends.weekly import iso_week, parse_week

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]


def latest_week(*, session: Session, now: datetime | None = None) -> str:
    """The ISO week of the newest rollup, so a dashboard over old data opens where the data is."""
    newest = session.execute(sa.select(sa.func.max(ROLLUP.c.bucket))).scalar()
    if newest is None:
        return iso_week(now or utcnow())
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    return iso_week(newest)


def shift_week(week: str, weeks: int) -> str:
    """The ISO week ``weeks`` after (negative: before) ``week``."""
    return iso_week(parse_week(week) + timedelta(weeks=weeks))


def breakdown(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    product: str | None = None,
    platform: str | None = None,
) -> dict[str, dict[str, dict[str, int]]]:
    """Counts per product (on ``platform``) and per platform (about ``product``) in [start, end).

    Returns {dimension: {value: {theme or "*": n}}}.
    """
    out: dict[str, dict[str, dict[str, int]]] = {"product": {}, "platform": {}}
    by_product = (
        sa.select(ROLLUP.c.product, ROLLUP.c.theme, sa.func.sum(ROLLUP.c.count))
        .where(ROLLUP.c.bucket >= start, ROLLUP.c.bucket < end, ROLLUP.c.product != ALL)
        .group_by(ROLLUP.c.product, ROLLUP.c.theme)
    )
    if platform:
        by_product = by_product.where(ROLLUP.c.platform == platform)
    for name, theme, n in session.execute(by_product):
        out["product"].setdefault(name, {})[theme] = int(n or 0)
    by_platform = (
        sa.select(ROLLUP.c.platform, ROLLUP.c.theme, sa.func.sum(ROLLUP.c.count))
        .where(
            ROLLUP.c.bucket >= start, ROLLUP.c.bucket < end, ROLLUP.c.product == (product or ALL)
        )
        .group_by(ROLLUP.c.platform, ROLLUP.c.theme)
    )
    for name, theme, n in session.execute(by_platform):
        out["platform"].setdefault(name, {})[theme] = int(n or 0)
    return out


def coverage(*, session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per source: health now, posts per day in [start, end), and the days it collected nothing."""
    days = [(start + timedelta(days=i)).date() for i in range((end - start).days)]
    per_day: dict[str, dict[date, int]] = defaultdict(dict)
    # The UTC day of each post, counted in the database (SQLite stores naive UTC text).
    day = (
        sa.func.date(sa.func.timezone("UTC", POST.c.created_at))
        if is_postgres(session)
        else sa.func.date(POST.c.created_at)
    )
    stmt = (
        sa.select(POST.c.source, day, sa.func.count())
        .where(POST.c.created_at >= start, POST.c.created_at < end, POST.c.deleted_at.is_(None))
        .group_by(POST.c.source, day)
    )
    for source, d, n in session.execute(stmt):
        d = date.fromisoformat(d) if isinstance(d, str) else d
        per_day[source][d] = int(n)
    sources = {s.name: s for s in session.execute(sa.select(Source)).scalars()}
    out = []
    for name in sorted(set(per_day) | set(sources)):
        s = sources.get(name)
        counts = [per_day[name].get(d, 0) for d in days]
        out.append(
            {
                "name": name,
                "kind": s.kind if s else "import",
                # A source is healthy when its last run succeeded (imports have no runs).
                "healthy": s is None or s.consecutive_failures == 0,
                "last_success_at": s.last_success_at if s else None,
                "last_error": s.last_error if s else None,
                "consecutive_failures": s.consecutive_failures if s else 0,
                "posts": sum(counts),
                "per_day": counts,
                "gaps": [d.isoformat() for d, n in zip(days, counts, strict=True) if n == 0],
            }
        )
    return out


def count_posts(
    *,
    session: Session,
    theme: str | None = None,
    product: str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> int:
    """How many posts match the filters, with the labels in force."""
    base = sa.select(POST.c.id).select_from(POST)
    stmt = filtered_query(
        base=base, theme=theme, product=product, platform=platform, since=since, until=until
    )
    if text and text.strip():
        stmt = stmt.where(
            sa.func.lower(POST.c.text).contains(text.strip().lower(), autoescape=True)
        )
    return int(
        session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar() or 0
    )


def top_examples(
    *,
    session: Session,
    taxonomy: Taxonomy,
    theme: str,
    start: datetime,
    end: datetime,
    product: str | None = None,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """The posts of ``theme`` in [start, end) with the highest score (human labels first)."""
    page = list_posts(
        session=session,
        taxonomy=taxonomy,
        theme=theme,
        product=product,
        since=start,
        until=end,
        limit=300,
    )["items"]

    def rank(p: dict[str, Any]) -> tuple[int, float, int]:
        likes = sum(int(v) for v in (p.get("engagement") or {}).values() if isinstance(v, int))
        return (1 if p["human_label"] else 0, float(p["scores"].get(theme, 0.0)), likes)

    return sorted(page, key=rank, reverse=True)[:limit]
