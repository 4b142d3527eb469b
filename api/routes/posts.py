"""Posts with the labels in force."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SessionDep, require_scope
from trends.posts import get_post, list_posts

router = APIRouter(prefix="/v1/posts", tags=["posts"])


@router.get("", dependencies=[Depends(require_scope("read"))])
def posts(
    request: Request,
    session: SessionDep,
    theme: Annotated[str | None, Query(max_length=64)] = None,
    product: Annotated[str | None, Query(max_length=32)] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
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
    )


@router.get("/{post_id}", dependencies=[Depends(require_scope("read"))])
def post(session: SessionDep, post_id: int) -> dict[str, Any]:
    """One post with its thread."""
    return get_post(session=session, post_id=post_id)
