"""Weekly summaries read from rollups: count, share with a Wilson interval, change vs last week."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.errors import InvalidInput
from core.models import Rollup
from core.taxonomy import Taxonomy
from trends.rollups import ALL

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
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


def weekly_summary(
    *,
    session: Session,
    taxonomy: Taxonomy,
    week: str,
    product: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """Per theme of the taxonomy: count, share (with interval) and change against the week before."""
    if product and product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    start = parse_week(week)
    end = start + timedelta(days=7)
    cur = theme_counts(session=session, start=start, end=end, product=product, platform=platform)
    prev = theme_counts(
        session=session,
        start=start - timedelta(days=7),
        end=start,
        product=product,
        platform=platform,
    )
    total, prev_total = cur.get(ALL, 0), prev.get(ALL, 0)
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
    }
