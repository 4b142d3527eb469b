"""The real app plus one bench-only route: the weekly counts aggregated from the raw posts table.

`uvicorn bench.api_app:app` serves both through the same HTTP stack, so the baseline and
GET /v1/trends/weekly differ only in where the numbers come from (rollups vs raw rows).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request

from api.app import create_app
from api.deps import SessionDep, require_scope
from core.models import Post, PostTag
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
