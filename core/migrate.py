"""Alembic driven from code: the only way the schema is made (`undertow db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.settings import Settings, get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(*, settings: Settings | None = None, url: str | None = None, rev: str = "head") -> None:
    """Bring the database schema up to ``rev``."""
    command.upgrade(alembic_config(url or (settings or get_settings()).sqlalchemy_url), rev)


def downgrade(*, settings: Settings | None = None, url: str | None = None, rev: str) -> None:
    """Take the schema back to ``rev``."""
    command.downgrade(alembic_config(url or (settings or get_settings()).sqlalchemy_url), rev)


def current(*, settings: Settings | None = None) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    from core.db import get_engine

    with get_engine(settings).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
