"""Release events (model launches)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import SessionDep, require_scope
from api.errors import PROBLEM_RESPONSES
from trends.compare import release_view
from trends.releases import add_release, list_releases

router = APIRouter(prefix="/v1/releases", tags=["releases"], responses=PROBLEM_RESPONSES)


class ReleaseIn(BaseModel):
    """A model launch."""

    model_config = {"extra": "forbid"}

    product: str = Field(max_length=32)
    date: date
    title: str = Field(min_length=1, max_length=256)


@router.get("", dependencies=[Depends(require_scope("read"))])
def releases(session: SessionDep) -> dict[str, Any]:
    """All releases, oldest first."""
    return {"items": [release_view(r) for r in list_releases(session=session)]}


@router.post("", status_code=201, dependencies=[Depends(require_scope("admin"))])
def create_release(request: Request, session: SessionDep, body: ReleaseIn) -> dict[str, Any]:
    """Record a release (the same product, date and title twice is one release)."""
    row = add_release(
        session=session,
        taxonomy=request.app.state.taxonomy,
        product=body.product,
        day=body.date,
        title=body.title,
    )
    return release_view(row)
