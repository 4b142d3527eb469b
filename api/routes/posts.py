"""Posts with the labels in force, and human label corrections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import (
    IncludeHandles,
    PlatformFilter,
    ProductFilter,
    ReadKey,
    RowId,
    SessionDep,
    ThemeFilter,
    UTCTime,
    allow_handles,
    require_scope,
)
from api.errors import PROBLEM_RESPONSES
from classify.loader import scoring_basis
from classify.review import correct_labels, label_view
from core.models import ApiKey
from trends.posts import get_post, list_posts, review_queue
from trends.rollups import recompute_bucket

router = APIRouter(prefix="/v1/posts", tags=["posts"], responses=PROBLEM_RESPONSES)


@router.get("")
def posts(
    request: Request,
    session: SessionDep,
    key: ReadKey,
    theme: ThemeFilter = None,
    product: ProductFilter = None,
    platform: PlatformFilter = None,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    include_handles: IncludeHandles = False,
) -> dict[str, Any]:
    """Posts newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return list_posts(
        session=session,
        taxonomy=request.app.state.taxonomy,
        theme=theme,
        product=product,
        platform=platform,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
        with_handle=allow_handles(key, include_handles),
    )


@router.get("/review-queue")
def review_queue_(
    request: Request,
    session: SessionDep,
    key: Annotated[ApiKey, Depends(require_scope("label"))],
    theme: ThemeFilter = None,
    product: ProductFilter = None,
    platform: PlatformFilter = None,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_handles: IncludeHandles = False,
) -> dict[str, Any]:
    """Unreviewed posts the model is least sure of, closest to a theme's threshold first.

    Reviewing these first teaches `undertow classify train --reviewed` the most per label.
    """
    version, thresholds = scoring_basis(request.app.state.settings)
    return review_queue(
        session=session,
        taxonomy=request.app.state.taxonomy,
        model_version=version,
        thresholds=thresholds,
        theme=theme,
        product=product,
        platform=platform,
        since=since,
        until=until,
        limit=limit,
        with_handle=allow_handles(key, include_handles),
    )


@router.get("/{post_id}")
def post(
    session: SessionDep,
    key: ReadKey,
    post_id: RowId,
    include_handles: IncludeHandles = False,
) -> dict[str, Any]:
    """One post with its thread."""
    return get_post(
        session=session, post_id=post_id, with_handle=allow_handles(key, include_handles)
    )


class LabelIn(BaseModel):
    """A human correction: the themes that apply (may be empty), optionally the products."""

    model_config = {"extra": "forbid"}

    themes: list[Annotated[str, Field(max_length=64)]] = Field(max_length=32)
    products: list[Annotated[str, Field(max_length=32)]] | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=2000)


@router.put("/{post_id}/labels")
def put_labels(
    request: Request,
    session: SessionDep,
    post_id: RowId,
    body: LabelIn,
    key: Annotated[ApiKey, Depends(require_scope("label"))],
) -> dict[str, Any]:
    """Correct a post's labels; the correction overrides the model in every count and export."""
    label, bucket = correct_labels(
        session=session,
        taxonomy=request.app.state.taxonomy,
        post_id=post_id,
        themes=body.themes,
        products=body.products,
        author=f"key:{key.prefix}:{key.name}",
        note=body.note,
    )
    # Counts change at once: the hour is recomputed now (it is also marked dirty, so a
    # rollup run that races this one recomputes it again from the same rows).
    recompute_bucket(session, bucket)
    return {"label": label_view(label), "post": get_post(session=session, post_id=post_id)}
