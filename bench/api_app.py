"""The real app plus bench-only baseline routes: the weekly counts aggregated from the raw posts
table, and a series whose model-version marks come from a scan of its posts.

`uvicorn bench.api_app:app` serves them through the same HTTP stack, so a baseline and its
/v1 route differ only in where the numbers come from (rollups vs raw rows).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request

from api.app import create_app
from api.deps import SessionDep, require_scope
from core.models import Post, PostTag
from trends.series import model_versions_scan, series
from trends.weekly import parse_week, wilson

POST = Post.__table__  # type: ignore[attr-defined]
TAG = PostTag.__table__  # type: ignore[attr-defined]

app = create_app()


def _raw_counts(session: Any, start: Any, end: Any) -> tuple[int, dict[str, int]]:
    live = sa.and_(
        POST.c.created_at >= start,
        POST.c.created_at < end,
        POST.c.deleted_at.is_(None),
        POST.c.classification_id.is_not(None),
    )
    total = session.execute(sa.select(sa.func.count()).select_from(POST).where(live)).scalar_one()
    rows = session.execute(
        sa.select(TAG.c.value, sa.func.count())
        .select_from(POST.join(TAG, TAG.c.post_id == POST.c.id))
        .where(live, TAG.c.kind == "theme")
        .group_by(TAG.c.value)
    )
    return int(total), {k: int(n) for k, n in rows}


@app.get("/bench/weekly-raw", dependencies=[Depends(require_scope("read"))])
def weekly_raw(request: Request, session: SessionDep, week: str) -> dict[str, Any]:
    """Baseline: per theme count and share for a week and the week before, from raw rows."""
    start = parse_week(week)
    end = start + timedelta(days=7)
    total, cur = _raw_counts(session, start, end)
    prev_total, prev = _raw_counts(session, start - timedelta(days=7), start)
    themes = []
    for key in request.app.state.taxonomy.theme_keys:
        n = cur.get(key, 0)
        lo, hi = wilson(n, total)
        themes.append(
            {
                "theme": key,
                "count": n,
                "share": n / total if total else 0.0,
                "share_ci": [lo, hi],
                "previous_count": prev.get(key, 0),
            }
        )
    return {"week": week, "total": total, "previous_total": prev_total, "themes": themes}


@app.get("/bench/series-scan", dependencies=[Depends(require_scope("read"))])
def series_scan(
    request: Request, session: SessionDep, granularity: str, start: str, end: str
) -> dict[str, Any]:
    """Baseline: GET /v1/trends/series with its version marks read from every post of the range
    (how the route worked before `rollup_version`); it also pays the rollup read it replaces."""
    a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)
    out = series(
        session=session,
        taxonomy=request.app.state.taxonomy,
        themes=["refusal_complaint"],
        granularity=granularity,
        start=a,
        end=b,
    )
    out["model_versions"] = model_versions_scan(
        session=session,
        start=datetime.fromisoformat(out["from"]),
        end=datetime.fromisoformat(out["to"]),
        platform=None,
    )
    return out
