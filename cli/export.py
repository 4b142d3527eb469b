"""`undertow export`: labeled posts as CSV, JSON Lines or Parquet, streamed page by page."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import typer

from cli.common import atomic_output, check_output_dir, fail, is_tty, load_settings


def _utc(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def export(
    fmt: str = typer.Option("jsonl", "--format", help="csv, jsonl or parquet."),
    theme: str | None = typer.Option(None, help="Only posts with this theme."),
    product: str | None = typer.Option(None, help="Only posts naming this product."),
    platform: str | None = typer.Option(None, help="Only this platform."),
    since: datetime | None = typer.Option(None, help="From this time (UTC)."),
    until: datetime | None = typer.Option(None, help="Until this time (UTC)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default stdout)."),
    include_handles: bool = typer.Option(
        False, "--include-handles", help="Add author handles (otherwise only pseudonymous keys)."
    ),
) -> None:
    """Export labeled posts with authors pseudonymized, page by page (never all in memory)."""
    from core.db import get_engine
    from core.errors import UndertowError
    from core.taxonomy import load_taxonomy
    from trends.exports import ExportFilters, count_rows, stream_export

    settings = load_settings()
    engine = get_engine(settings)
    filters = ExportFilters(
        theme=theme, product=product, platform=platform, since=_utc(since), until=_utc(until)
    )
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise fail("parquet is binary: write it to a file with -o", 2)
    check_output_dir(output)
    n = 0
    progress: Any = None
    task: Any = None

    def on_rows(k: int) -> None:
        nonlocal n
        n += k
        if progress is not None:
            progress.advance(task, k)

    try:
        chunks = stream_export(
            engine=engine,
            taxonomy=load_taxonomy(settings.taxonomy_path),
            fmt=fmt,
            filters=filters,
            with_handle=include_handles,
            on_rows=on_rows,
        )
        if is_tty():
            from rich.console import Console
            from rich.progress import Progress

            progress = Progress(console=Console(stderr=True))
            task = progress.add_task("exporting", total=count_rows(engine=engine, filters=filters))
        sink: Any = atomic_output(output, binary=True) if output else nullcontext(sys.stdout.buffer)
        with sink as fh, progress if progress is not None else nullcontext():
            out: BinaryIO = fh
            for chunk in chunks:
                out.write(chunk)
            out.flush()
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    typer.echo(f"exported {n} posts", err=True)
