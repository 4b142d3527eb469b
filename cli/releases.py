"""`undertow releases`: model launches to compare trends around."""

from __future__ import annotations

import typer

from cli.common import fail, load_settings

app = typer.Typer(help="Release events (model launches).", no_args_is_help=True)


@app.command()
def add(
    product: str = typer.Option(..., help="Product key, e.g. claude."),
    date: str = typer.Option(..., help="YYYY-MM-DD (UTC)."),
    title: str = typer.Option(..., help="What was released."),
) -> None:
    """Record a release (idempotent)."""
    from core.db import session_scope
    from core.errors import UndertowError
    from core.taxonomy import load_taxonomy
    from trends.releases import add_release

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            row = add_release(
                session=session,
                taxonomy=load_taxonomy(settings.taxonomy_path),
                product=product,
                day=date,
                title=title,
            )
            typer.echo(f"release {row.id}: {row.product} {row.date.date()} {row.title}")
    except UndertowError as e:
        raise fail(e.detail, 2) from None


@app.command("list")
def list_() -> None:
    """List releases."""
    from core.db import session_scope
    from trends.releases import list_releases

    with session_scope(load_settings()) as session:
        for r in list_releases(session=session):
            typer.echo(f"{r.id}  {r.product}  {r.date.date()}  {r.title}")
