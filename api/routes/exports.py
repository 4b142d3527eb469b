"""Streamed exports of labeled posts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import (
    IncludeHandles,
    PlatformFilter,
    ProductFilter,
    ThemeFilter,
    UTCTime,
    allow_handles,
    require_scope,
)
from api.downloads import export_response
from api.errors import PROBLEM_RESPONSES
from core.models import ApiKey
from trends.exports import MEDIA_TYPES, ExportFilters

router = APIRouter(prefix="/v1", tags=["exports"], responses=PROBLEM_RESPONSES)


@router.get(
    "/exports",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the posts, streamed",
            "content": {m.split(";")[0]: {} for m in MEDIA_TYPES.values()},
        }
    },
)
def export(
    request: Request,
    key: Annotated[ApiKey, Depends(require_scope("export"))],
    format: Annotated[str, Query(pattern=r"^(csv|jsonl|parquet)$")] = "jsonl",
    theme: ThemeFilter = None,
    product: ProductFilter = None,
    platform: PlatformFilter = None,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    include_handles: IncludeHandles = False,
) -> StreamingResponse:
    """Posts with themes, scores, model version, human overrides and pseudonymous authors."""
    with_handle = allow_handles(key, include_handles)
    filters = ExportFilters(
        theme=theme, product=product, platform=platform, since=since, until=until
    )
    return export_response(
        request,
        fmt=format,
        filters=filters,
        with_handle=with_handle,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )
