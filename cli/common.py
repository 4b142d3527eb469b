"""Shared CLI plumbing: settings with friendly errors, a session, printing."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import typer
from pydantic import ValidationError

from core.logging import configure_logging
from core.settings import CONFIG_ENV, Settings, get_settings


def config_problem(e: BaseException) -> str | None:
    """What is wrong with the configuration, if `e` says so (a setting that does not validate,
    a config file that is not TOML); None for any other error."""
    if isinstance(e, ValidationError) and e.title == Settings.__name__:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())) or "(settings)"
            lines.append(f"  {loc} (env UNDERTOW_{loc.upper().replace('.', '__')}): {err['msg']}")
        return "invalid configuration:\n" + "\n".join(lines)
    if isinstance(e, tomllib.TOMLDecodeError):
        path = os.environ.get(CONFIG_ENV) or "undertow.toml"
        return f"invalid configuration: {path} is not valid TOML: {e}"
    return None


def load_settings() -> Settings:
    """Settings, or exit 2 with a message naming each bad setting."""
    try:
        settings = get_settings()
    except (ValidationError, tomllib.TOMLDecodeError) as e:
        problem = config_problem(e)
        if problem is None:
            raise
        typer.echo(f"undertow: {problem}", err=True)
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


def check_output_dir(path: Path | None) -> None:
    """Exit 2 before any work when OUT's folder does not exist ("-" and None are stdout)."""
    if path is not None and str(path) != "-" and not path.parent.is_dir():
        raise fail(f"{path}: no such directory {str(path.parent)!r}", 2)


@contextmanager
def atomic_output(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A temp file beside `path`, renamed over it only when the block ends without an error:
    a failed or interrupted run leaves no partial OUT and keeps an earlier one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") if binary else tmp.open("w", encoding="utf-8") as f:
            yield f
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
