"""`undertow report`: the weekly report, generated now."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail, load_settings

app = typer.Typer(help="Weekly reports.", no_args_is_help=True)


@app.command()
def weekly(
    week: str | None = typer.Option(
        None, "--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)."
    ),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Folder to write into (default: data_dir/reports/WEEK)."
    ),
    send: bool = typer.Option(False, "--send", help="Also send it through the alert channels."),
) -> None:
    """Write the HTML, e-mail HTML, Markdown and CSV report of a week, and say where."""
    from core.db import session_scope
    from core.errors import UndertowError
    from core.taxonomy import load_taxonomy
    from trends.report import deliver_report, generate_weekly_report

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            report, path = generate_weekly_report(
                session=session,
                settings=settings,
                taxonomy=load_taxonomy(settings.taxonomy_path),
                week=week,
                out_dir=out,
            )
        if send:
            with session_scope(settings) as session:
                for outcome in deliver_report(session=session, settings=settings, report=report):
                    typer.echo(f"  {outcome['channel']} {outcome['target']}: {outcome['status']}")
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    typer.echo(f"report {report.week}: {report.summary['total']} posts")
    for name in sorted(report.files):
        typer.echo(f"  {path / name}")
