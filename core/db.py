"""Engine and sessions for SQLite (file, WAL, foreign keys) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings, get_settings


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while a worker writes; the timeout waits out a writer instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """A pooled engine for ``url`` with the settings each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 5}
    )


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the configured database."""
    return _engine_for((settings or get_settings()).sqlalchemy_url)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error: the unit-of-work boundary."""
    with Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (for dialect-specific upserts)."""
    return session.get_bind().dialect.name == "postgresql"


def insert_ignoring_conflicts(
    session: Session, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT rows, skipping those whose ``keys`` already exist (both dialects)."""
    if not rows:
        return
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).on_conflict_do_nothing(index_elements=keys), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=keys), rows)


def hour_bucket(ts: Any) -> Any:
    """The start of the UTC hour holding ``ts``."""
    return ts.replace(minute=0, second=0, microsecond=0)


def mark_dirty(session: Session, buckets: set[Any]) -> None:
    """Record hour buckets whose rollups must be recomputed, in the caller's transaction."""
    from core.models import DirtyBucket, utcnow

    now = utcnow()
    if not buckets:
        return
    rows = [{"bucket": b, "marked_at": now} for b in sorted(buckets)]
    table = DirtyBucket.__table__  # type: ignore[attr-defined]
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
        session.execute(
            stmt.on_conflict_do_update(index_elements=["bucket"], set_={"marked_at": now}), rows
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt2 = sqlite_insert(table)
        session.execute(
            stmt2.on_conflict_do_update(index_elements=["bucket"], set_={"marked_at": now}), rows
        )


# What SQLite and PostgreSQL say when the database cannot be written (full, limited, read-only).
_STORAGE_FAILURES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
    "no space left on device",
    "could not extend file",
    "read-only file system",
)


def storage_failure(exc: BaseException) -> str | None:
    """The database's own words when ``exc`` (or its cause) is a failure to write storage."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(getattr(cur, "orig", None) or cur).strip()
        if any(s in text.lower() for s in _STORAGE_FAILURES):
            return text.splitlines()[0][:200]
        cur = cur.__cause__ or cur.__context__
    return None
