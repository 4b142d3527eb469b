"""Trend summaries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SessionDep, require_scope
from trends.weekly import weekly_summary

router = APIRouter(prefix="/v1/trends", tags=["trends"])


@router.get("/weekly", dependencies=[Depends(require_scope("read"))])
def weekly(
    request: Request,
    session: SessionDep,
    week: Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W47"])],
    product: Annotated[str | None, Query(max_length=32)] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Per theme of the taxonomy: count, share with 95% interval, change against the week before."""
    return weekly_summary(
        session=session,
        taxonomy=request.app.state.taxonomy,
        week=week,
        product=product,
        platform=platform,
    )
