"""Test setup: real SQLite and PostgreSQL databases built by the migrations, one per run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="undertow-test-"))
# Settings are read once per process: fix the environment before any project import.
os.environ.setdefault("UNDERTOW_ENV", "test")
os.environ["UNDERTOW_DATA_DIR"] = str(_TMP / "var")
os.environ.setdefault("UNDERTOW_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("UNDERTOW_AUTHOR_KEY_SECRET", "test-secret")
# Pipeline tests count labels, so they use the deterministic rules baseline; the classifier's own
# tests and the embedded-run test load the transformers model explicitly.
os.environ.setdefault("UNDERTOW_CLASSIFIER", "rules")
os.environ.setdefault(
    "UNDERTOW_SHARED_DIR", str(Path(__file__).resolve().parents[1].parent / "shared")
)

import psycopg  # noqa: E402
import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

PG_ADMIN = os.environ.get("UNDERTOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ["UNDERTOW_SHARED_DIR"])


def _pg_database() -> Iterator[str]:
    name = f"undertow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        yield url
    finally:
        from core.db import _engine_for

        _engine_for(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, schema from the migrations."""
    from core.migrate import upgrade

    for url in _pg_database():
        upgrade(url=url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url() -> str:
    """A fresh SQLite file for this run, schema from the migrations."""
    from core.migrate import upgrade

    url = f"sqlite:///{_TMP / 'test.db'}"
    upgrade(url=url)
    return url


def _truncate(url: str) -> None:
    import core.models  # noqa: F401
    from core.db import _engine_for

    engine = _engine_for(url)
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on both databases, starting empty."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    _truncate(url)
    return url


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at the test database (process settings replaced for the test)."""
    from core import settings as settings_mod

    monkeypatch.setenv("UNDERTOW_DATABASE_URL", db_url)
    settings_mod.get_settings.cache_clear()
    s = settings_mod.get_settings()
    yield s
    settings_mod.get_settings.cache_clear()


@pytest.fixture
def session(settings) -> Iterator[Session]:
    """A session on the test database; tests commit as the code under test would."""
    from core.db import get_engine

    with Session(get_engine(settings), expire_on_commit=False) as s:
        yield s
