"""Streamed exports of labeled posts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import PLATFORM, UTCTime, is_admin, require_scope
from api.errors import PROBLEM_RESPONSES
from core.db import get_engine
from core.errors import Forbidden
from core.models import ApiKey
from trends.exports import MEDIA_TYPES, ExportFilters, export_filename, stream_export

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
    theme: Annotated[str | None, Query(max_length=64)] = None,
    product: Annotated[str | None, Query(max_length=32)] = None,
    platform: Annotated[str | None, Query(pattern=PLATFORM)] = None,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    include_handles: Annotated[
        bool, Query(description="Add author handles; admin keys only.")
    ] = False,
) -> StreamingResponse:
    """Posts with themes, scores, model version, human overrides and pseudonymous authors."""
    if include_handles and not is_admin(key):
        raise Forbidden("author handles need an admin key", param="include_handles")
    filters = ExportFilters(
        theme=theme, product=product, platform=platform, since=since, until=until
    )
    chunks = request.app.state.export_slots.guard(
        stream_export(
            engine=get_engine(request.app.state.settings),
            taxonomy=request.app.state.taxonomy,
            fmt=format,
            filters=filters,
            with_handle=include_handles,
        )
    )
    name = export_filename(format, filters)
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
