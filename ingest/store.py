"""Persisting normalized posts: upsert on (platform, external_id), quarantine, pseudonymous authors."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import hour_bucket, insert_ignoring_conflicts, mark_dirty
from core.models import Post, Quarantine, utcnow
from core.posttext import text_hash
from ingest.base import NormalizedPost, Quarantined

POST = Post.__table__  # type: ignore[attr-defined]


def author_key(*, platform: str, handle: str | None, secret: str) -> str | None:
    """A keyed hash of the author: stable per platform and handle, not reversible without the key."""
    if not handle:
        return None
    msg = f"{platform}:{handle.strip().lstrip('@').lower()}".encode()
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:24]


@dataclass
class UpsertResult:
    """Ids of posts that are new, and of posts whose text changed (both need classifying)."""

    inserted: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: int = 0

    @property
    def to_classify(self) -> list[int]:
        return self.inserted + self.changed


def _row(post: NormalizedPost, secret: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "platform": post.platform,
        "external_id": post.external_id,
        "url": post.url,
        "title": post.title,
        "text": post.text,
        "text_hash": text_hash(title=post.title, text=post.text),
        "lang": post.lang,
        "author_handle": post.author_handle,
        "author_key": post.author_key
        or author_key(platform=post.platform, handle=post.author_handle, secret=secret),
        "parent_external_id": post.parent_external_id,
        "root_external_id": post.root_external_id or post.external_id,
        "engagement": dict(post.engagement),
        "raw": post.raw,
        "source": post.source,
        "query": post.query,
        "created_at": post.created_at,
        "collected_at": now,
        "updated_at": now,
        "deleted_at": now if post.deleted else None,
    }


def upsert_posts(*, session: Session, posts: list[NormalizedPost], secret: str) -> UpsertResult:
    """Insert new posts, update edited ones, leave identical ones alone; caller commits."""
    result = UpsertResult()
    # The last occurrence wins when a page repeats a post.
    by_key = {(p.platform, p.external_id): p for p in posts}
    if not by_key:
        return result
    existing: dict[tuple[str, str], tuple[int, str, Any]] = {}
    keys = list(by_key)
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        stmt = sa.select(
            POST.c.id, POST.c.platform, POST.c.external_id, POST.c.text_hash, POST.c.deleted_at
        ).where(sa.tuple_(POST.c.platform, POST.c.external_id).in_(chunk))
        for pid, platform, ext, th, deleted in session.execute(stmt):
            existing[(platform, ext)] = (pid, th, deleted)
    new_rows = [_row(p, secret) for k, p in by_key.items() if k not in existing]
    dirty: set[Any] = set()
    if new_rows:
        insert_ignoring_conflicts(session, POST, new_rows, ["platform", "external_id"])
        stmt = sa.select(POST.c.id, POST.c.created_at).where(
            sa.tuple_(POST.c.platform, POST.c.external_id).in_(
                [(r["platform"], r["external_id"]) for r in new_rows]
            )
        )
        for pid, _created in session.execute(stmt):
            result.inserted.append(pid)
    for key, (pid, old_hash, old_deleted) in existing.items():
        post = by_key[key]
        row = _row(post, secret)
        if row["text_hash"] == old_hash and (old_deleted is not None) == post.deleted:
            # Same text: refresh engagement only, keep labels as they are.
            session.execute(
                sa.update(POST).where(POST.c.id == pid).values(engagement=row["engagement"])
            )
            result.unchanged += 1
            continue
        values = {k: row[k] for k in ("text", "title", "text_hash", "engagement", "raw", "url")}
        values["updated_at"] = row["updated_at"]
        if post.deleted:
            values = {"deleted_at": old_deleted or utcnow(), "updated_at": row["updated_at"]}
        elif old_deleted is not None:
            values["deleted_at"] = None
        session.execute(sa.update(POST).where(POST.c.id == pid).values(**values))
        dirty.add(hour_bucket(post.created_at))
        if not post.deleted:
            result.changed.append(pid)
    mark_dirty(session, dirty)
    return result


def quarantine(*, session: Session, items: list[Quarantined]) -> int:
    """Keep malformed items raw with their reason, once per payload; returns how many are new."""
    rows = []
    for q in items:
        payload = q.payload if isinstance(q.payload, str) else json.dumps(q.payload, default=str)
        rows.append(
            {
                "source": q.source,
                "reason": q.reason[:2000],
                "payload": payload,
                "payload_hash": hashlib.sha256(payload.encode("utf-8", "replace")).hexdigest(),
                "created_at": utcnow(),
            }
        )
    table = Quarantine.__table__  # type: ignore[attr-defined]
    if rows:
        seen = {
            (src, h)
            for src, h in session.execute(
                sa.select(table.c.source, table.c.payload_hash).where(
                    table.c.payload_hash.in_([r["payload_hash"] for r in rows])
                )
            )
        }
        rows = [r for r in rows if (r["source"], r["payload_hash"]) not in seen]
        insert_ignoring_conflicts(session, table, rows, ["source", "payload_hash"])
    return len({(r["source"], r["payload_hash"]) for r in rows})
