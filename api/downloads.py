"""Export downloads: the streamed response both the JSON API and the dashboard send."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import StreamingResponse

from core.db import get_engine
from trends.exports import MEDIA_TYPES, ExportFilters, export_filename, stream_export


def export_response(
    request: Request,
    *,
    fmt: str,
    filters: ExportFilters,
    with_handle: bool,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Posts matching ``filters`` streamed as an attachment in ``fmt``, within the export slots."""
    chunks = request.app.state.export_slots.guard(
        stream_export(
            engine=get_engine(request.app.state.settings),
            taxonomy=request.app.state.taxonomy,
            fmt=fmt,
            filters=filters,
            with_handle=with_handle,
        )
    )
    name = export_filename(fmt, filters)
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"', **(headers or {})},
    )
