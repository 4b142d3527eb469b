"""Shared CLI plumbing: settings with friendly errors, a session, printing."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from pydantic import ValidationError

from core.logging import configure_logging
from core.settings import Settings, get_settings


def load_settings() -> Settings:
    """Settings, or exit 2 with a message naming each bad setting."""
    try:
        settings = get_settings()
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())) or "(settings)"
            lines.append(f"  {loc} (env UNDERTOW_{loc.upper().replace('.', '__')}): {err['msg']}")
        typer.echo("undertow: invalid configuration:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None
    except FileNotFoundError as e:
        typer.echo(f"undertow: {e}", err=True)
        raise typer.Exit(2) from None
    configure_logging(level=settings.log_level, json=settings.log_json)
    return settings


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON."""
    typer.echo(json.dumps(obj, indent=2, default=str))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error and return the Exit to raise."""
    typer.echo(f"undertow: {message}", err=True)
    return typer.Exit(code)


def is_tty() -> bool:
    return sys.stderr.isatty()
