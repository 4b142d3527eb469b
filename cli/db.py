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


@app.command()
def prune(
    older_than_days: int | None = typer.Option(
        None, "--older-than-days", min=1, help="Default: the retention_days setting."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go."),
) -> None:
    """Delete posts older than N days with their labels, classifications and raw payloads."""
    from core.db import session_scope
    from ingest.retention import count_prunable, cutoff_for
    from ingest.retention import prune as do_prune

    settings = load_settings()
    days = older_than_days or settings.retention_days
    if not days:
        typer.echo(
            "undertow: retention is off; set retention_days or pass --older-than-days", err=True
        )
        raise typer.Exit(2)
    if dry_run:
        with session_scope(settings) as session:
            n = count_prunable(session=session, cutoff=cutoff_for(days))
        typer.echo(f"{n} posts are older than {days} days")
        return
    r = do_prune(days=days, settings=settings)
    typer.echo(
        f"deleted {r.posts} posts older than {days} days, {r.quarantined} quarantined items; "
        f"{r.alerts_scrubbed} alerts lost their example texts; {r.hours} hours to recount"
    )
