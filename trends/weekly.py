"""Weekly summaries read from rollups: count, share with a Wilson interval, change vs last week."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.errors import InvalidInput
from core.models import Classification, Post, PostTag, Rollup, Source
from core.taxonomy import Taxonomy
from trends.rollups import ALL

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
TAG = PostTag.__table__  # type: ignore[attr-defined]
SOURCE = Source.__table__  # type: ignore[attr-defined]
EXCERPT = 280
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
Z95 = 1.959963984540054


def parse_week(week: str) -> datetime:
    """Monday 00:00 UTC of an ISO week such as ``2026-W47``; InvalidInput when malformed."""
    m = _WEEK.match(week or "")
    if not m:
        raise InvalidInput(f"week {week!r} is not an ISO week like 2026-W47", param="week")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as e:
        raise InvalidInput(f"week {week!r} does not exist: {e}", param="week") from e
    if not 1 < monday.year < 9999:
        raise InvalidInput(f"week {week!r} is out of range", param="week")
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def iso_week(ts: datetime) -> str:
    """The ISO week label of ``ts`` (UTC)."""
    y, w, _ = ts.astimezone(UTC).isocalendar()
    return f"{y}-W{w:02d}"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a proportion k/n; (0, 0) when n is 0."""
    if n <= 0:
        return (0.0, 0.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def theme_counts(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    product: str | None,
    platform: str | None,
) -> dict[str, int]:
    """Sum of hourly rollups in [start, end) per theme (``*`` is the total)."""
    stmt = (
        sa.select(ROLLUP.c.theme, sa.func.sum(ROLLUP.c.count))
        .where(
            ROLLUP.c.bucket >= start,
            ROLLUP.c.bucket < end,
            ROLLUP.c.product == (product or ALL),
        )
        .group_by(ROLLUP.c.theme)
    )
    if platform:
        stmt = stmt.where(ROLLUP.c.platform == platform)
    return {theme: int(n or 0) for theme, n in session.execute(stmt)}


def two_weeks(
    *, session: Session, start: datetime, product: str | None, platform: str | None
) -> tuple[dict[str, int], dict[str, int]]:
    """Per-theme sums for the week from ``start`` and the week before, in one read."""
    this_week = ROLLUP.c.bucket >= start
    stmt = (
        sa.select(
            ROLLUP.c.theme,
            sa.func.sum(sa.case((this_week, ROLLUP.c.count), else_=0)),
            sa.func.sum(sa.case((this_week, 0), else_=ROLLUP.c.count)),
        )
        .where(
            ROLLUP.c.bucket >= start - timedelta(days=7),
            ROLLUP.c.bucket < start + timedelta(days=7),
            ROLLUP.c.product == (product or ALL),
        )
        .group_by(ROLLUP.c.theme)
    )
    if platform:
        stmt = stmt.where(ROLLUP.c.platform == platform)
    cur, prev = {}, {}
    for theme, n, pn in session.execute(stmt):
        cur[theme], prev[theme] = int(n or 0), int(pn or 0)
    return cur, prev


def top_examples(
    *,
    session: Session,
    theme_keys: tuple[str, ...],
    start: datetime,
    end: datetime,
    product: str | None,
    platform: str | None,
    per_theme: int,
    candidates: int = 10,
) -> dict[str, list[dict[str, Any]]]:
    """Example posts per theme in [start, end): the highest-scoring of its latest ``candidates``.

    Each theme walks the created_at index back from the end of the week and probes the tag's
    primary key, so the cost follows ``candidates`` / theme rate, not the week's volume. A human
    label ranks first.
    """
    if per_theme <= 0 or not theme_keys:
        return {}
    parts = []
    for key in theme_keys:
        stmt = (
            sa.select(
                sa.literal(key).label("theme"),
                POST.c.id,
                POST.c.platform,
                POST.c.url,
                POST.c.title,
                POST.c.text,
                POST.c.created_at,
                POST.c.author_key,
                POST.c.label_id,
                CLS.c.scores,
            )
            .select_from(POST)
            .outerjoin(CLS, CLS.c.id == POST.c.classification_id)
            .where(
                POST.c.created_at >= start,
                POST.c.created_at < end,
                POST.c.deleted_at.is_(None),
                # A LIMITed scalar subquery, not EXISTS: the planner cannot turn it into a
                # join over every tag of the theme, so it probes the tag key post by post.
                sa.select(TAG.c.post_id)
                .where(TAG.c.post_id == POST.c.id, TAG.c.kind == "theme", TAG.c.value == key)
                .limit(1)
                .scalar_subquery()
                .is_not(None),
            )
            .order_by(POST.c.created_at.desc(), POST.c.id.desc())
            .limit(max(candidates, per_theme))
        )
        if product:
            ptag = TAG.alias("ptag")
            stmt = stmt.where(
                sa.select(ptag.c.post_id)
                .where(
                    ptag.c.post_id == POST.c.id,
                    ptag.c.kind == "product",
                    ptag.c.value == product,
                )
                .limit(1)
                .scalar_subquery()
                .is_not(None)
            )
        if platform:
            stmt = stmt.where(POST.c.platform == platform)
        parts.append(sa.select(stmt.subquery()))
    rows = list(session.execute(sa.union_all(*parts)))
    ts_type = POST.c.created_at.type
    dialect = session.get_bind().dialect
    by_theme: dict[str, list[tuple[bool, float, datetime, Any]]] = {}
    for r in rows:
        created = r.created_at
        if not isinstance(created, datetime):  # a union column loses the UTC type on SQLite
            created = datetime.fromisoformat(str(created))
        created = ts_type.process_result_value(created, dialect)
        score = float((r.scores or {}).get(r.theme, 1.0))
        by_theme.setdefault(r.theme, []).append((r.label_id is not None, score, created, r))
    out: dict[str, list[dict[str, Any]]] = {}
    for theme, found in by_theme.items():
        # Human-labeled first, then the model's score for the theme, then the newest.
        found.sort(key=lambda x: (x[0], x[1], x[2]), reverse=True)
        out[theme] = [
            {
                "id": r.id,
                "platform": r.platform,
                "url": r.url,
                "title": r.title,
                "excerpt": (r.text or "")[:EXCERPT] + ("…" if len(r.text or "") > EXCERPT else ""),
                "created_at": created.isoformat(),
                "author_key": r.author_key,
                "score": round(score, 4),
                "human_label": r.label_id is not None,
            }
            for _, score, created, r in found[:per_theme]
        ]
    return out


def coverage(
    *, session: Session, start: datetime, end: datetime, platform: str | None
) -> dict[str, Any]:
    """Which sources covered [start, end): a source that failed or never succeeded in it is a gap."""
    rows = list(session.execute(sa.select(SOURCE).order_by(SOURCE.c.name)))
    posts: dict[str, int] = {}
    if rows:
        collected = sa.select(POST.c.source, sa.func.count()).where(
            POST.c.created_at >= start, POST.c.created_at < end, POST.c.deleted_at.is_(None)
        )
        if platform:
            collected = collected.where(POST.c.platform == platform)
        posts = {name: int(n) for name, n in session.execute(collected.group_by(POST.c.source))}
    sources = []
    for row in rows:
        ok_at, err_at = row.last_success_at, row.last_error_at
        n = posts.get(row.name, 0)
        succeeded = n > 0 or (ok_at is not None and start <= ok_at < end)
        failed = err_at is not None and start <= err_at < end
        if platform and n == 0 and row.kind != platform:
            continue
        reason = None
        if failed:
            reason = "failed during the week"
        elif not succeeded:
            reason = "no successful run and no posts in the week"
        sources.append(
            {
                "name": row.name,
                "kind": row.kind,
                "healthy": reason is None,
                "reason": reason,
                "posts": n,
                "last_success_at": ok_at.isoformat() if ok_at else None,
                "last_error_at": err_at.isoformat() if err_at else None,
                "consecutive_failures": row.consecutive_failures,
            }
        )
    return {
        "sources": sources,
        "gaps": [s["name"] for s in sources if not s["healthy"]],
        "complete": all(s["healthy"] for s in sources),
    }


def weekly_summary(
    *,
    session: Session,
    taxonomy: Taxonomy,
    week: str,
    product: str | None = None,
    platform: str | None = None,
    examples: int = 3,
) -> dict[str, Any]:
    """Per theme: count, share (with interval), change against the week before, top examples; coverage."""
    if product and product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    start = parse_week(week)
    end = start + timedelta(days=7)
    cur, prev = two_weeks(session=session, start=start, product=product, platform=platform)
    total, prev_total = cur.get(ALL, 0), prev.get(ALL, 0)
    shown = top_examples(
        session=session,
        # A theme with no posts this week has no examples: do not look for any.
        theme_keys=tuple(k for k in taxonomy.theme_keys if cur.get(k)),
        start=start,
        end=end,
        product=product,
        platform=platform,
        per_theme=examples,
    )
    themes = []
    for key in taxonomy.theme_keys:
        n, pn = cur.get(key, 0), prev.get(key, 0)
        share = n / total if total else 0.0
        prev_share = pn / prev_total if prev_total else 0.0
        lo, hi = wilson(n, total)
        plo, phi = wilson(pn, prev_total)
        themes.append(
            {
                "theme": key,
                "count": n,
                "share": round(share, 6),
                "share_ci": [round(lo, 6), round(hi, 6)],
                "change": {
                    "previous_count": pn,
                    "previous_share": round(prev_share, 6),
                    "share_pp": round((share - prev_share) * 100, 3),
                    "count_rel": round((n - pn) / pn, 4) if pn else None,
                    # Real when the two weeks' intervals do not overlap.
                    "significant": bool(total and prev_total and (lo > phi or hi < plo)),
                },
                "examples": shown.get(key, []),
            }
        )
    return {
        "week": iso_week(start),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "product": product,
        "platform": platform,
        "total": total,
        "previous_total": prev_total,
        "themes": themes,
        "coverage": coverage(session=session, start=start, end=end, platform=platform),
    }
