"""The `undertow` command: sub-commands grouped by domain."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from cli import db, ingest, keys, report, trends
from cli.common import config_problem, load_settings
from cli.run import run
from core.settings import CONFIG_ENV

# sysexits.h EX_IOERR: the database could not be written (disk full, file-size limit, read-only).
EXIT_STORAGE = 74


class _App(typer.Typer):
    """The CLI, turning a database that cannot be written, or a configuration that does not
    load wherever a command first reads it, into one clear line and exit code."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as e:
            from core.db import storage_failure

            problem = config_problem(e)
            if problem is not None:
                typer.echo(f"undertow: {problem}", err=True)
                sys.exit(2)

            reason = storage_failure(e)
            if reason is None:
                raise
            typer.echo(
                f"undertow: cannot write the database ({reason}): the disk may be full, a file-size "
                "limit reached or the file read-only. Work committed before this error is kept; "
                "free space or fix permissions, then run the command again.",
                err=True,
            )
            sys.exit(EXIT_STORAGE)


app = _App(
    help="Undertow: watch what the public says about AI assistants.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help="Path to undertow.toml (default: ./undertow.toml if present).",
    ),
) -> None:
    """Global options."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
        from core.settings import get_settings

        get_settings.cache_clear()


app.add_typer(db.app, name="db")
app.add_typer(ingest.app, name="ingest")
app.add_typer(trends.app, name="trends")
app.add_typer(keys.app, name="keys")
app.add_typer(report.app, name="report")
app.command("run")(run)


def _mount_optional() -> None:
    from cli import alerts, classify, classify_db, export, releases

    classify.app.command("sweep")(classify_db.sweep)
    classify.app.command("reclassify")(classify_db.reclassify)
    app.add_typer(classify.app, name="classify")
    app.add_typer(alerts.app, name="alerts")
    app.add_typer(releases.app, name="releases")
    app.command("export")(export.export)


_mount_optional()


@app.command()
def api(
    host: str | None = typer.Option(None, help="Bind address (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
    workers: int = typer.Option(1, min=1, help="Uvicorn worker processes."),
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = load_settings()
    uvicorn.run(
        "api.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@app.command()
def worker(
    queues: str = typer.Option("ingest,classify,default", help="Comma-separated queues."),
    concurrency: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Run a Celery worker (the classify queue is best served by its own low-concurrency worker)."""
    settings = load_settings()
    from workers.app import celery_app

    celery_app.worker_main(
        [
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "--loglevel",
            settings.log_level,
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{queues.replace(',', '-')}@%h",
        ]
    )


@app.command()
def scheduler(
    run_job: str | None = typer.Option(
        None, "--run-job", help="Enqueue this job once, now, and exit."
    ),
    list_jobs: bool = typer.Option(False, "--list", help="List the jobs and exit."),
) -> None:
    """Run the scheduler (one per deployment; a second one waits for the lease)."""
    settings = load_settings()
    from workers.scheduler import job_table, run_job_now, serve

    if list_jobs:
        for j in job_table(settings):
            when = f"cron '{j.cron}' ({settings.timezone})" if j.cron else f"every {j.every_s}s"
            typer.echo(f"{j.id}  {when}  -> {j.task}{list(j.args) or ''}")
        return
    if run_job:
        try:
            run_job_now(run_job, settings)
        except KeyError:
            typer.echo(f"undertow: no job {run_job!r}; see --list", err=True)
            raise typer.Exit(2) from None
        return
    serve(settings)


if __name__ == "__main__":
    app()
