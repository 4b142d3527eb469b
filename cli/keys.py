"""`undertow keys`: API keys (only their hashes are stored)."""

from __future__ import annotations

import typer

from cli.common import fail, load_settings
from core.errors import UndertowError

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="Who or what the key is for."),
    scope: list[str] = typer.Option(
        ..., "--scope", help="read, label, export or admin (repeatable)."
    ),
) -> None:
    """Create a key; the key itself is printed alone on the last line, once."""
    from core.db import session_scope
    from core.keys import create_key

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            row, plaintext = create_key(session=session, name=name, scopes=scope)
            prefix, scopes = row.prefix, row.scopes
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    typer.echo(
        f"created key {prefix} ({name}) with scopes {','.join(scopes)}; store it now:", err=True
    )
    typer.echo(plaintext)


@app.command("list")
def list_() -> None:
    """List keys (prefix, name, scopes, last used, revoked)."""
    from core.db import session_scope
    from core.keys import list_keys

    with session_scope(load_settings()) as session:
        for k in list_keys(session=session):
            used = k.last_used_at.isoformat() if k.last_used_at else "never"
            revoked = f" revoked {k.revoked_at.isoformat()}" if k.revoked_at else ""
            typer.echo(f"{k.prefix}  {k.name}  {','.join(k.scopes)}  last used {used}{revoked}")


@app.command()
def revoke(prefix: str = typer.Argument(..., help="The key's prefix (from `keys list`).")) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from core.db import session_scope
    from core.keys import revoke_key

    try:
        with session_scope(load_settings()) as session:
            revoke_key(session=session, prefix=prefix)
    except UndertowError as e:
        raise fail(e.detail, 1) from None
    typer.echo(f"revoked {prefix}")
