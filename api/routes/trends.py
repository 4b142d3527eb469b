"""Trend summaries, series and release comparisons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import (
    PlatformFilter,
    ProductFilter,
    RowId,
    SessionDep,
    UTCTime,
    require_scope,
)
from api.errors import PROBLEM_RESPONSES
from trends.compare import release_comparison
from trends.rollups import EXAMPLES_KEPT
from trends.series import series as read_series
from trends.weekly import weekly_summary

router = APIRouter(
    prefix="/v1/trends",
    tags=["trends"],
    dependencies=[Depends(require_scope("read"))],
    responses=PROBLEM_RESPONSES,
)


@router.get("/weekly")
def weekly(
    request: Request,
    session: SessionDep,
    week: Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W47"])],
    product: ProductFilter = None,
    platform: PlatformFilter = None,
    examples: Annotated[
        int, Query(ge=0, le=EXAMPLES_KEPT, description="Example posts per theme.")
    ] = 3,
) -> dict[str, Any]:
    """Per theme: count, share with 95% interval, change against the week before, top examples;
    total volume and source coverage."""
    return weekly_summary(
        session=session,
        taxonomy=request.app.state.taxonomy,
        week=week,
        product=product,
        platform=platform,
        examples=examples,
    )


@router.get("/series")
def series(
    request: Request,
    session: SessionDep,
    themes: Annotated[
        list[str] | None, Query(description="Repeat or comma-separate; default all.")
    ] = None,
    product: ProductFilter = None,
    platform: PlatformFilter = None,
    granularity: Annotated[str, Query(pattern=r"^(hour|day|week)$")] = "day",
    from_: Annotated[UTCTime | None, Query(alias="from")] = None,
    to: UTCTime | None = None,
) -> dict[str, Any]:
    """Counts and shares per hour, day or week (UTC); marks where the model version changed."""
    wanted = [t.strip() for v in themes or [] for t in v.split(",") if t.strip()] or None
    return read_series(
        session=session,
        taxonomy=request.app.state.taxonomy,
        themes=wanted,
        product=product,
        platform=platform,
        granularity=granularity,
        start=from_,
        end=to,
    )


@router.get("/releases/{release_id}")
def release(request: Request, session: SessionDep, release_id: RowId) -> dict[str, Any]:
    """T-7..T+14 days around a release against the same window around earlier releases."""
    return release_comparison(
        session=session, taxonomy=request.app.state.taxonomy, release_id=release_id
    )
