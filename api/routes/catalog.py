"""What the service knows about: themes, products and sources with their health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.deps import SessionDep, require_scope
from api.errors import PROBLEM_RESPONSES
from ingest.pipeline import source_status

router = APIRouter(
    prefix="/v1",
    tags=["catalog"],
    dependencies=[Depends(require_scope("read"))],
    responses=PROBLEM_RESPONSES,
)


@router.get("/themes")
def themes(request: Request) -> dict[str, Any]:
    """The codebook's themes and the product keys."""
    tax = request.app.state.taxonomy
    return {
        "version": tax.version,
        "digest": tax.digest,
        "themes": [
            {"key": t.key, "label": t.label, "description": t.description} for t in tax.themes
        ],
        "products": list(tax.products),
    }


@router.get("/sources")
def sources(session: SessionDep) -> dict[str, Any]:
    """Configured sources with their health (no credentials or settings)."""
    return {
        "items": [
            {
                "name": s.name,
                "kind": s.kind,
                "queries": list((s.config or {}).get("queries", [])),
                "healthy": s.consecutive_failures == 0 and s.last_success_at is not None,
                "last_run_at": s.last_run_at.isoformat() if s.last_run_at else None,
                "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
                "last_error_at": s.last_error_at.isoformat() if s.last_error_at else None,
                "last_error": s.last_error,
                "consecutive_failures": s.consecutive_failures,
                "posts_collected": s.posts_collected,
                "quarantined": s.quarantined,
            }
            for s in source_status(session=session)
        ]
    }
