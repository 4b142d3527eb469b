"""`undertow export`: labeled posts as CSV or JSON Lines, streamed page by page."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import typer

from cli.common import fail, load_settings

COLUMNS = [
    "id", "platform", "external_id", "url", "created_at", "author_key", "parent_external_id",
    "root_external_id", "source", "query", "themes", "products", "scores", "model_version",
    "human_label", "title", "text",
]  # fmt: skip


def neutralize(value: str) -> str:
    """Stop spreadsheets from running a cell as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_row(item: dict[str, Any]) -> list[str]:
    out = []
    for col in COLUMNS:
        v = item.get(col)
        s = (
            json.dumps(v, ensure_ascii=False)
            if isinstance(v, list | dict)
            else ("" if v is None else str(v))
        )
        out.append(neutralize(s))
    return out


def export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    theme: str | None = typer.Option(None, help="Only posts with this theme."),
    product: str | None = typer.Option(None, help="Only posts naming this product."),
    platform: str | None = typer.Option(None, help="Only this platform."),
    since: datetime | None = typer.Option(None, help="From this time (UTC)."),
    until: datetime | None = typer.Option(None, help="Until this time (UTC)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default stdout)."),
) -> None:
    """Export labeled posts with authors pseudonymized, page by page (never all in memory)."""
    from core.db import session_scope
    from core.errors import UndertowError
    from core.taxonomy import load_taxonomy
    from trends.posts import list_posts

    if fmt not in ("jsonl", "csv"):
        raise fail(f"format must be jsonl or csv, not {fmt!r}", 2)
    settings = load_settings()
    taxonomy = load_taxonomy(settings.taxonomy_path)
    fh: TextIO = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    writer = csv.writer(fh) if fmt == "csv" else None
    if writer:
        writer.writerow(COLUMNS)
    cursor, n = None, 0
    try:
        while True:
            with session_scope(settings) as session:
                page = list_posts(
                    session=session, taxonomy=taxonomy, theme=theme, product=product,
                    platform=platform, since=since, until=until, cursor=cursor, limit=1000,
                )  # fmt: skip
            for item in page["items"]:
                item.pop("evidence", None)
                if writer:
                    writer.writerow(_csv_row(item))
                else:
                    fh.write(json.dumps(item, ensure_ascii=False) + "\n")
                n += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    finally:
        if output:
            fh.close()
    typer.echo(f"exported {n} posts", err=True)
