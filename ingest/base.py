"""The contract every source adapter meets: normalized posts and quarantined items, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from core.posttext import storable


def _clean(item: Any, names: tuple[str, ...]) -> None:
    """Make the text fields and the raw payload `storable`: one cut emoji or NUL in an API
    response must not fail the batch's insert (and, the cursor not moving, every later one)."""
    for name in names:
        value = getattr(item, name)
        clean = storable(value)
        if clean is not value:
            setattr(item, name, clean)


@dataclass
class NormalizedPost:
    """One public post, as every adapter yields it. ``created_at`` is timezone-aware UTC."""

    platform: str
    external_id: str
    text: str
    created_at: datetime
    url: str | None = None
    title: str | None = None
    lang: str | None = None
    author_handle: str | None = None
    # Keyed hash of (platform, handle); filled by the pipeline from the secret setting when None.
    author_key: str | None = None
    parent_external_id: str | None = None
    root_external_id: str | None = None
    engagement: dict[str, int] = field(default_factory=dict)
    raw: Any = None
    source: str = ""
    query: str | None = None
    deleted: bool = False

    def __post_init__(self) -> None:
        _clean(self, _POST_TEXT)


# Every field that holds text from outside (engagement's keys are the adapters' own names).
_POST_TEXT = tuple(
    f.name for f in fields(NormalizedPost) if f.name not in ("created_at", "engagement", "deleted")
)


@dataclass
class Quarantined:
    """An item (or a whole response) that could not be normalized, kept raw with the reason."""

    source: str
    reason: str
    payload: str

    def __post_init__(self) -> None:
        _clean(self, ("source", "reason", "payload"))


@dataclass
class Batch:
    """What one page of a source yields; ``cursor`` is the state to store once it is committed."""

    posts: list[NormalizedPost] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    cursor: dict[str, Any] | None = None


class Source(Protocol):
    """A source adapter: reads pages from ``cursor`` on, yields batches in order."""

    name: str
    kind: str

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]: ...
