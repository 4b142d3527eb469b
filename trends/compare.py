"""Release-anchored comparison: T-7..T+14 days around a release vs the same window around earlier ones.

Each release is read for its own product (a theme's share of the posts about that product). The
days before T are the release's own baseline; the earlier releases, pooled, say what a launch
usually does, so "after" can be judged against both.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from core.errors import NotFound
from core.models import ReleaseEvent, Rollup
from core.taxonomy import Taxonomy
from trends.rollups import ALL
from trends.weekly import wilson

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
BEFORE_DAYS = 7
AFTER_DAYS = 14


def release_view(r: ReleaseEvent) -> dict[str, Any]:
    """A release as the API shows it."""
    return {"id": r.id, "product": r.product, "date": r.date.date().isoformat(), "title": r.title}


def _daily(
    session: Session, *, product: str, anchor: datetime, before: int, after: int
) -> dict[int, dict[str, int]]:
    """Counts per day offset from ``anchor`` (-before..after-1) and theme (``*`` is the total)."""
    start, end = anchor - timedelta(days=before), anchor + timedelta(days=after)
    stmt = (
        sa.select(ROLLUP.c.bucket, ROLLUP.c.theme, sa.func.sum(ROLLUP.c.count))
        .where(ROLLUP.c.bucket >= start, ROLLUP.c.bucket < end, ROLLUP.c.product == product)
        .group_by(ROLLUP.c.bucket, ROLLUP.c.theme)
    )
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bucket, theme, n in session.execute(stmt):
        out[(bucket - anchor) // timedelta(days=1)][theme] += int(n or 0)
    return out


def _window(days: dict[int, dict[str, int]], offsets: range, keys: list[str]) -> dict[str, Any]:
    total = sum(days.get(d, {}).get(ALL, 0) for d in offsets)
    themes = {}
    for k in keys:
        n = sum(days.get(d, {}).get(k, 0) for d in offsets)
        lo, hi = wilson(n, total)
        themes[k] = {
            "count": n,
            "share": round(n / total, 6) if total else 0.0,
            "share_ci": [round(lo, 6), round(hi, 6)],
        }
    return {"total": total, "themes": themes}


def _separated(a: dict[str, Any], b: dict[str, Any], total_a: int, total_b: int) -> bool:
    # Real when both sides have posts and the 95% intervals do not overlap.
    return bool(
        total_a
        and total_b
        and (a["share_ci"][0] > b["share_ci"][1] or a["share_ci"][1] < b["share_ci"][0])
    )


def release_comparison(
    *,
    session: Session,
    taxonomy: Taxonomy,
    release_id: int,
    before_days: int = BEFORE_DAYS,
    after_days: int = AFTER_DAYS,
) -> dict[str, Any]:
    """The release's window (daily and before/after) against the pooled earlier releases."""
    release = session.get(ReleaseEvent, release_id)
    if release is None:
        raise NotFound(f"no release with id {release_id}")
    keys = list(taxonomy.theme_keys)
    before, after = range(-before_days, 0), range(0, after_days)
    days = _daily(
        session, product=release.product, anchor=release.date, before=before_days, after=after_days
    )
    this_before, this_after = _window(days, before, keys), _window(days, after, keys)
    earlier = list(
        session.exec(
            select(ReleaseEvent).where(ReleaseEvent.date < release.date).order_by(ReleaseEvent.date)  # type: ignore[arg-type]
        )
    )
    pooled: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in earlier:
        for d, counts in _daily(
            session, product=e.product, anchor=e.date, before=before_days, after=after_days
        ).items():
            for k, n in counts.items():
                pooled[d][k] += n
    base_before, base_after = _window(pooled, before, keys), _window(pooled, after, keys)
    themes = []
    for k in keys:
        tb, ta = this_before["themes"][k], this_after["themes"][k]
        bb, ba = base_before["themes"][k], base_after["themes"][k]
        lift = (ta["share"] - tb["share"]) * 100
        base_lift = (ba["share"] - bb["share"]) * 100
        themes.append(
            {
                "theme": k,
                "before": tb,
                "after": ta,
                "change_pp": round(lift, 3),
                "significant": _separated(ta, tb, this_after["total"], this_before["total"]),
                "earlier_before": bb,
                "earlier_after": ba,
                "earlier_change_pp": round(base_lift, 3) if earlier else None,
                # This launch's after-share against what earlier launches' after-shares were.
                "unusual": _separated(ta, ba, this_after["total"], base_after["total"]),
            }
        )
    daily = [
        {
            "offset": d,
            "date": (release.date + timedelta(days=d)).date().isoformat(),
            "total": days.get(d, {}).get(ALL, 0),
            "counts": {k: days.get(d, {}).get(k, 0) for k in keys},
        }
        for d in range(-before_days, after_days)
    ]
    return {
        "release": release_view(release),
        "window": {"before_days": before_days, "after_days": after_days},
        "total_before": this_before["total"],
        "total_after": this_after["total"],
        "earlier_releases": [release_view(e) for e in earlier],
        "earlier_total_before": base_before["total"],
        "earlier_total_after": base_after["total"],
        "themes": themes,
        "daily": daily,
    }
