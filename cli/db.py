"""`undertow db`: the schema, through migrations only."""

from __future__ import annotations

import typer

from cli.common import load_settings

app = typer.Typer(
    help="Database schema: migrations are the only way it is made.", no_args_is_help=True
)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from core.migrate import upgrade as do_upgrade

    settings = load_settings()
    do_upgrade(settings=settings, rev=revision)
    typer.echo(f"database at {revision} ({settings.sqlalchemy_url.split('@')[-1]})")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base.")) -> None:
    """Revert migrations down to REVISION."""
    from core.migrate import downgrade as do_downgrade

    do_downgrade(settings=load_settings(), rev=revision)
    typer.echo(f"database at {revision}")


@app.command()
def current() -> None:
    """Print the revision the database is at."""
    from core.migrate import current as cur

    typer.echo(cur(settings=load_settings()) or "(empty database)")
