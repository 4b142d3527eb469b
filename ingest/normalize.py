"""Helpers every adapter shares: UTC times, safe getters, quarantine records, watermarks."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from core.logging import get_logger
from core.timeparse import read_time
from ingest.base import NormalizedPost, Quarantined

log = get_logger(__name__)

MAX_PAYLOAD_CHARS = 1_000_000
# Times outside this range are data errors, not posts.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST_SKEW = timedelta(days=2)


class ItemError(ValueError):
    """One item cannot be normalized; it goes to quarantine with this message as the reason."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _check_range(dt: datetime, raw: object) -> datetime:
    if dt < _EARLIEST or dt > utc_now() + _LATEST_SKEW:
        raise ItemError(f"time out of range: {raw!r:.60}")
    return dt


def parse_time(value: object) -> datetime:
    """A timezone-aware UTC datetime from epoch seconds/ms, ISO 8601 or RFC 822, within the
    range a post can have; else ItemError."""
    try:
        dt = read_time(value)
    except ValueError as e:
        raise ItemError(str(e)) from e
    return _check_range(dt, value)


def get_str(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """``data[key]`` as a non-empty string (numbers become strings), else None or ItemError."""
    value = data.get(key)
    if isinstance(value, bool):
        value = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value) if not isinstance(value, float) or math.isfinite(value) else None
    if isinstance(value, str) and value != "":
        return value
    if required:
        raise ItemError(f"missing or invalid field {key!r}")
    return None


def req_str(data: Mapping[str, Any], key: str) -> str:
    """``data[key]`` as a non-empty string, or ItemError."""
    value = get_str(data, key, required=True)
    assert value is not None
    return value


def get_int(data: Mapping[str, Any], key: str) -> int | None:
    """``data[key]`` as an int when it is an integral number (or numeric string), else None."""
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value.strip())
    return None


def get_dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a dict, else an empty dict."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def get_list(data: Mapping[str, Any], key: str) -> list[Any]:
    """``data[key]`` when it is a list, else an empty list."""
    value = data.get(key)
    return value if isinstance(value, list) else []


def as_dict(value: object, what: str = "item") -> dict[str, Any]:
    """``value`` when it is a dict, else ItemError."""
    if not isinstance(value, dict):
        raise ItemError(f"{what} is a {type(value).__name__}, not an object")
    return value


def engagement(**counts: int | None) -> dict[str, int]:
    """Engagement counts without the unknown ones."""
    return {k: v for k, v in counts.items() if v is not None}


def payload_text(payload: object) -> str:
    """The raw item as JSON (or text), bounded in size, for the quarantine table."""
    if isinstance(payload, bytes):
        text = payload.decode("utf-8", errors="replace")
    elif isinstance(payload, str):
        text = payload
    else:
        try:
            text = json.dumps(payload, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(payload)
    return text[:MAX_PAYLOAD_CHARS]


def quarantine(*, source: str, reason: str, payload: object) -> Quarantined:
    """A quarantine record for an item that could not be normalized."""
    log.warning("ingest.quarantined", source=source, reason=reason[:200])
    return Quarantined(source=source, reason=reason[:500], payload=payload_text(payload))


# What a bug in a normalizer looks like; caught so one item cannot stop a page.
_UNEXPECTED = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


def safely(
    build: Callable[[Any], NormalizedPost],
    raw: Any,
    *,
    source: str,
    strict: bool = False,
) -> NormalizedPost | Quarantined:
    """``build(raw)``, or a quarantine record when the item is malformed.

    ``strict`` re-raises anything that is not an ItemError, so tests see normalizer bugs.
    """
    try:
        return build(raw)
    except ItemError as e:
        return quarantine(source=source, reason=str(e), payload=raw)
    except _UNEXPECTED as e:
        if strict:
            raise
        log.exception("ingest.normalize_bug", source=source)
        return quarantine(source=source, reason=f"unexpected {type(e).__name__}: {e}", payload=raw)


def cursor_section(state: dict[str, Any], key: str) -> dict[str, Any]:
    """The dict under ``key`` of a cursor, made (or replaced, if a stored cursor is malformed)."""
    section = state.setdefault(key, {})
    if not isinstance(section, dict):
        section = state[key] = {}
    return section


def cursor_snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cursor to hand out, without an empty ``backlog`` (ranges a run left unread)."""
    out = copy.deepcopy(state)
    if not out.get("backlog"):
        out.pop("backlog", None)
    return out


class Watermark:
    """The newest time seen on a stream, plus the ids seen at exactly that time.

    Stored as ``{"t": epoch_seconds, "ids": [...]}``; items at or before it are not new.
    """

    def __init__(self, state: object = None) -> None:
        state = state if isinstance(state, dict) else {}
        t = state.get("t")
        self.t: float | None = float(t) if isinstance(t, int | float) else None
        ids = state.get("ids")
        self.ids: set[str] = (
            {i for i in ids if isinstance(i, str)} if isinstance(ids, list) else set()
        )

    def is_new(self, t: float, item_id: str) -> bool:
        """Whether an item at time ``t`` is after the mark."""
        if self.t is None:
            return True
        return t > self.t or (t == self.t and item_id not in self.ids)

    def advance(self, t: float, item_id: str) -> None:
        """Move the mark to include an item."""
        if self.t is None or t > self.t:
            self.t, self.ids = t, {item_id}
        elif t == self.t:
            self.ids.add(item_id)

    def state(self) -> dict[str, Any] | None:
        """The JSON form, or None when nothing was ever seen."""
        if self.t is None:
            return None
        return {"t": self.t, "ids": sorted(self.ids)[-200:]}


def first(values: Iterable[str | None]) -> str | None:
    """The first non-empty string."""
    for v in values:
        if v:
            return v
    return None


def post_version(post: NormalizedPost) -> str:
    """A short fingerprint of what an edit changes (title, text, deletion)."""
    raw = f"{post.title or ''}\x00{post.text}\x00{post.deleted}".encode("utf-8", "replace")
    return hashlib.sha256(raw).hexdigest()[:16]


class Page:
    """The posts and quarantine records of one page, without repeats within a run."""

    def __init__(self, *, source: str, seen: set[str]) -> None:
        self.source = source
        self.seen = seen
        self.posts: list[NormalizedPost] = []
        self.quarantined: list[Quarantined] = []

    def add(self, item: NormalizedPost | Quarantined) -> NormalizedPost | None:
        """Keep a post or a quarantine record; return the post if it was new in this run.

        A repeat is dropped unless its text differs: then the post was edited between two
        requests of the run, and the later copy is kept too (the upsert keeps the last one).
        """
        if isinstance(item, Quarantined):
            self.quarantined.append(item)
            return None
        version = f"{item.external_id}\x00{post_version(item)}"
        if item.external_id in self.seen:
            if version not in self.seen:
                self.seen.add(version)
                self.posts.append(item)
            return None
        self.seen.update((item.external_id, version))
        self.posts.append(item)
        return item

    def __bool__(self) -> bool:
        return bool(self.posts or self.quarantined)
