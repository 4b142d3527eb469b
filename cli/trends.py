"""`undertow trends`: rollups and weekly summaries."""

from __future__ import annotations

import typer

from cli.common import echo_json, fail, load_settings

app = typer.Typer(help="Rollups and weekly summaries.", no_args_is_help=True)


@app.command()
def refresh() -> None:
    """Recompute the hours marked dirty (what the scheduler does every minute)."""
    from core.db import session_scope
    from trends.rollups import refresh_dirty

    with session_scope(load_settings()) as session:
        echo_json(refresh_dirty(session=session, limit=100_000))


@app.command()
def rebuild() -> None:
    """Recompute every rollup from the posts and labels in force."""
    from core.db import session_scope
    from trends.rollups import rebuild_all

    with session_scope(load_settings()) as session:
        echo_json(rebuild_all(session=session))


@app.command()
def weekly(
    week: str = typer.Argument(..., help="ISO week, e.g. 2026-W43."),
    product: str | None = typer.Option(None, help="Product key, e.g. claude."),
    platform: str | None = typer.Option(None, help="Platform, e.g. reddit."),
) -> None:
    """Print the weekly summary (same as GET /v1/trends/weekly)."""
    from core.db import session_scope
    from core.errors import UndertowError
    from core.taxonomy import load_taxonomy
    from trends.weekly import weekly_summary

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            echo_json(
                weekly_summary(
                    session=session,
                    taxonomy=load_taxonomy(settings.taxonomy_path),
                    week=week,
                    product=product,
                    platform=platform,
                )
            )
    except UndertowError as e:
        raise fail(e.detail, 2) from None
