"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from api.deps import SessionDep
from trends.posts import service_counts

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, session: SessionDep) -> PlainTextResponse:
    """Request counts and latency, posts and rollup backlog, in Prometheus text format."""
    counts = service_counts(session=session)
    gauges = {
        "undertow_posts": ("Posts stored (not deleted).", counts["posts"]),
        "undertow_posts_labeled_by_humans": ("Posts with a human label.", counts["labeled"]),
        "undertow_rollup_dirty_hours": ("Hours waiting for a rollup.", counts["dirty_hours"]),
    }
    return PlainTextResponse(
        request.app.state.metrics.render(gauges), media_type="text/plain; version=0.0.4"
    )
