"""Request-scoped dependencies: the session (committed at the end of the request) and the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator
from sqlmodel import Session

from core.db import get_engine
from core.errors import Forbidden
from core.keys import authenticate, require
from core.models import ApiKey


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; commit on success, roll back on error."""
    with Session(get_engine(request.app.state.settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Commit before the response goes out, so a client that got 200 can read what it wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _as_utc(ts: datetime) -> datetime:
    # A time without an offset is read as UTC (buckets are UTC), never compared naive.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


UTCTime = Annotated[datetime, AfterValidator(_as_utc)]
# Row ids are 32-bit integers in the database; a larger one is a 422, not a database error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PLATFORM = r"^[a-z0-9_.-]{1,32}$"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_scope(scope: str) -> Callable[..., ApiKey]:
    """A dependency that authenticates the bearer key and checks it grants ``scope``."""

    def _dep(request: Request, session: SessionDep) -> ApiKey:
        key = authenticate(session=session, key=_bearer(request))
        session.commit()  # keep last_used_at even if the route then fails
        request.app.state.limiter.check(key.prefix)
        require(key, scope)
        request.state.api_key = key
        return key

    return _dep


def is_admin(key: ApiKey) -> bool:
    """Whether ``key`` holds the admin scope (author handles, keys, rules)."""
    return "admin" in key.scopes


IncludeHandles = Annotated[bool, Query(description="Add author handles; admin keys only.")]
# The filters most read routes take, bounded once: a theme or product key, a platform name.
ThemeFilter = Annotated[str | None, Query(max_length=64)]
ProductFilter = Annotated[str | None, Query(max_length=32)]
PlatformFilter = Annotated[str | None, Query(pattern=PLATFORM)]


def allow_handles(key: ApiKey, asked: bool) -> bool:
    """Whether to add author handles: ``asked``, or Forbidden when ``key`` is not an admin key."""
    if asked and not is_admin(key):
        raise Forbidden("author handles need an admin key", param="include_handles")
    return asked


ReadKey = Annotated[ApiKey, Depends(require_scope("read"))]
