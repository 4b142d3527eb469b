"""Weekly summaries read from rollups: count, share with a Wilson interval, change vs last week."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.errors import InvalidInput
from core.models import Post, Rollup, Source
from core.taxonomy import Taxonomy
from trends.rollups import ALL, EXAMPLE, EXAMPLES_KEPT

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
POST = Post.__table__  # type: ignore[attr-defined]
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
) -> dict[str, list[dict[str, Any]]]:
    """The top example posts per theme in [start, end) (whole UTC days), from the stored rollups.

    Each day keeps its top posts per platform x product x theme (``rollup_example``, recomputed
    with the rollups, so a human label changes them like it changes the counts); the week's top
    ``per_theme`` are the best of the days' top ``per_theme``: human-labeled first, then the
    model's score for the theme, then the newest. One read of at most
    7 x platforms x ``per_theme`` rows per theme, whatever the week's volume.
    """
    per_theme = min(per_theme, EXAMPLES_KEPT)
    if per_theme <= 0 or not theme_keys:
        return {}
    c = EXAMPLE.c
    rn = (
        sa.func.row_number()
        .over(
            partition_by=c.theme,
            order_by=[c.human.desc(), c.score.desc(), c.created_at.desc(), c.post_id.desc()],
        )
        .label("rn")
    )
    days = sa.select(c.theme, c.post_id, c.score, c.human, rn).where(
        c.span == "day",
        c.product == (product or ALL),
        c.bucket >= start,
        c.bucket < end,
        c.rank <= per_theme,
        c.theme.in_(theme_keys),
    )
    if platform:
        days = days.where(c.platform == platform)
    best = days.subquery()
    stmt = (
        sa.select(
            best.c.theme,
            best.c.score,
            best.c.human,
            POST.c.id,
            POST.c.platform,
            POST.c.url,
            POST.c.title,
            sa.func.substr(POST.c.text, 1, EXCERPT + 1).label("text"),
            POST.c.created_at,
            POST.c.author_key,
        )
        .select_from(best.join(POST, POST.c.id == best.c.post_id))
        .where(best.c.rn <= per_theme, POST.c.deleted_at.is_(None))
        .order_by(best.c.theme, best.c.rn)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in session.execute(stmt):
        text = r.text or ""
        out.setdefault(r.theme, []).append(
            {
                "id": r.id,
                "platform": r.platform,
                "url": r.url,
                "title": r.title,
                "excerpt": text[:EXCERPT] + ("…" if len(text) > EXCERPT else ""),
                "created_at": r.created_at.isoformat(),
                "author_key": r.author_key,
                "score": round(float(r.score), 4),
                "human_label": bool(r.human),
            }
        )
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
