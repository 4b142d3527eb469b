"""Request-scoped dependencies: the session (committed at the end of the request) and the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from core.db import get_engine
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


SessionDep = Annotated[Session, Depends(get_session)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_scope(scope: str) -> Callable[..., ApiKey]:
    """A dependency that authenticates the bearer key and checks it grants ``scope``."""

    def _dep(request: Request, session: SessionDep) -> ApiKey:
        key = authenticate(session=session, key=_bearer(request))
        session.commit()  # keep last_used_at even if the route then fails
        require(key, scope)
        request.state.api_key = key
        return key

    return _dep
