"""Persisting normalized posts: upsert on (platform, external_id), quarantine, pseudonymous authors."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from core.db import hour_bucket, insert_ignoring_conflicts, is_postgres, mark_dirty
from core.models import Classification, Post, Quarantine, utcnow
from core.posttext import text_hash
from ingest.base import NormalizedPost, Quarantined

POST = Post.__table__  # type: ignore[attr-defined]
CLASSIFICATION = Classification.__table__  # type: ignore[attr-defined]


def author_key(*, platform: str, handle: str | None, secret: str) -> str | None:
    """A keyed hash of the author: stable per platform and handle, not reversible without the key."""
    if not handle:
        return None
    msg = f"{platform}:{handle.strip().lstrip('@').lower()}".encode()
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:24]


@dataclass
class UpsertResult:
    """Ids of the posts that need classifying: new, with changed text, or stored unclassified.

    ``unclassified`` are unchanged posts that were never handed on and have no classification:
    a run that stored them and failed before handing them on (the database or the process gone
    between the commit and the enqueue) hands them on when it reads them again. Posts handed on
    and still queued are left to the queue (and to the sweep, if their message was lost), so a
    backlog is not enqueued again on every re-read.
    """

    inserted: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unclassified: list[int] = field(default_factory=list)
    unchanged: int = 0

    @property
    def to_classify(self) -> list[int]:
        return self.inserted + self.changed + self.unclassified


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


def _existing(
    session: Session, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str, Any, Any]]:
    """(platform, external_id) -> (id, text_hash, deleted_at, engagement) for stored posts."""
    cols = (
        POST.c.id,
        POST.c.platform,
        POST.c.external_id,
        POST.c.text_hash,
        POST.c.deleted_at,
        POST.c.engagement,
    )
    out = {}
    if is_postgres(session):
        # Two array parameters instead of thousands of bound values.
        keyset = (
            sa.func.unnest(
                sa.cast([k[0] for k in keys], ARRAY(sa.Text)),
                sa.cast([k[1] for k in keys], ARRAY(sa.Text)),
            )
            .table_valued("platform", "external_id")
            .render_derived(name="k")
        )
        stmt = sa.select(*cols).join(
            keyset,
            sa.and_(
                POST.c.platform == keyset.c.platform, POST.c.external_id == keyset.c.external_id
            ),
        )
        rows = list(session.execute(stmt))
    else:
        rows = []
        for i in range(0, len(keys), 400):
            chunk = keys[i : i + 400]
            stmt = sa.select(*cols).where(sa.tuple_(POST.c.platform, POST.c.external_id).in_(chunk))
            rows += list(session.execute(stmt))
    for pid, platform, ext, th, deleted, engagement in rows:
        out[(platform, ext)] = (pid, th, deleted, engagement)
    return out


_COPY_COLS = [c.name for c in POST.c if c.name != "id"]
_JSON_COLS = {"engagement", "raw"}


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows, skipping keys that exist by now; ids of the rows this call inserted."""
    if not rows:
        return []
    if not is_postgres(session):
        stmt = (
            sqlite_insert(POST)
            .on_conflict_do_nothing(index_elements=["platform", "external_id"])
            .returning(POST.c.id)
        )
        return [r[0] for r in session.execute(stmt, rows)]
    # PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT (5-10x executemany).
    from psycopg.types.json import Jsonb

    raw = session.connection().connection.driver_connection
    cols = [c for c in _COPY_COLS if c in rows[0]]
    col_list = ", ".join(cols)
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute("DROP TABLE IF EXISTS _post_in")
        cur.execute(
            f"CREATE TEMP TABLE _post_in ON COMMIT DROP AS SELECT {col_list} FROM post WITH NO DATA"
        )
        with cur.copy(f"COPY _post_in ({col_list}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([Jsonb(r[c]) if c in _JSON_COLS else r[c] for c in cols])
        cur.execute(
            f"INSERT INTO post ({col_list}) SELECT {col_list} FROM _post_in "
            "ON CONFLICT (platform, external_id) DO NOTHING RETURNING id"
        )
        return [r[0] for r in cur.fetchall()]


def upsert_posts(*, session: Session, posts: list[NormalizedPost], secret: str) -> UpsertResult:
    """Insert new posts, update edited ones, leave identical ones alone; caller commits."""
    result = UpsertResult()
    # The last occurrence wins when a page repeats a post.
    by_key = {(p.platform, p.external_id): p for p in posts}
    if not by_key:
        return result
    existing = _existing(session, list(by_key))
    result.inserted = _insert_new(
        session, [_row(p, secret) for k, p in by_key.items() if k not in existing]
    )
    dirty: set[Any] = set()
    engagement_updates = []
    kept: list[int] = []
    for key, (pid, old_hash, old_deleted, old_engagement) in existing.items():
        post = by_key[key]
        new_hash = text_hash(title=post.title, text=post.text)
        if new_hash == old_hash and (old_deleted is not None) == post.deleted:
            # Same text: refresh engagement only (if it moved), keep labels as they are.
            if dict(post.engagement) != (old_engagement or {}):
                engagement_updates.append({"pid": pid, "eng": dict(post.engagement)})
            result.unchanged += 1
            if old_deleted is None:
                kept.append(pid)
            continue
        row = _row(post, secret)
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
    if engagement_updates:
        session.execute(
            sa.update(POST)
            .where(POST.c.id == sa.bindparam("pid"))
            .values(engagement=sa.bindparam("eng", type_=POST.c.engagement.type)),
            engagement_updates,
        )
    mark_dirty(session, dirty)
    result.unclassified = _never_handed_on(session, kept)
    return result


def _never_handed_on(session: Session, ids: list[int]) -> list[int]:
    """The posts among ``ids`` never requested for classification and never classified."""
    out: list[int] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        labelled = sa.exists().where(CLASSIFICATION.c.post_id == POST.c.id)
        stmt = sa.select(POST.c.id).where(
            POST.c.id.in_(chunk), POST.c.classify_requested_at.is_(None), ~labelled
        )
        out += [r[0] for r in session.execute(stmt)]
    return sorted(out)


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
