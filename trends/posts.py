"""Reading posts with the labels in force: filters, keyset pagination, threads."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.errors import InvalidInput, NotFound
from core.models import Classification, Label, Post, PostTag
from core.taxonomy import Taxonomy

POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]
TAG = PostTag.__table__  # type: ignore[attr-defined]


def encode_cursor(created_at: datetime, post_id: int) -> str:
    """An opaque cursor for the post after which the next page starts."""
    raw = json.dumps([created_at.astimezone(UTC).isoformat(), post_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) inside a cursor; InvalidInput when it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, pid = json.loads(raw)
        return datetime.fromisoformat(ts).astimezone(UTC), int(pid)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as e:
        raise InvalidInput(
            "cursor is not valid; use next_cursor from a previous page", param="cursor"
        ) from e


def validate_filters(
    taxonomy: Taxonomy,
    *,
    theme: str | None,
    product: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Raise InvalidInput naming the parameter that is wrong."""
    if theme and theme not in taxonomy.theme_keys:
        raise InvalidInput(
            f"unknown theme {theme!r}; one of {list(taxonomy.theme_keys)}", param="theme"
        )
    if product and product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    if since and until and since > until:
        raise InvalidInput("since is after until", param="since")


def _serialize(row: Any, *, with_handle: bool) -> dict[str, Any]:
    human = row.label_themes is not None
    out = {
        "id": row.id,
        "platform": row.platform,
        "external_id": row.external_id,
        "url": row.url,
        "title": row.title,
        "text": row.text,
        "lang": row.lang,
        "created_at": row.created_at.isoformat(),
        "author_key": row.author_key,
        "parent_external_id": row.parent_external_id,
        "root_external_id": row.root_external_id,
        "engagement": row.engagement or {},
        "source": row.source,
        "query": row.query,
        "themes": list(row.label_themes if human else (row.themes or [])),
        "products": list(
            row.label_products if human and row.label_products is not None else (row.products or [])
        ),
        "scores": row.scores or {},
        "targets": row.targets or {},
        "evidence": row.evidence or {},
        "model_version": row.model_version,
        "human_label": human,
    }
    if with_handle:
        out["author_handle"] = row.author_handle
    return out


def _base_query() -> sa.Select[Any]:
    return (
        sa.select(
            POST,
            CLS.c.themes,
            CLS.c.products,
            CLS.c.scores,
            CLS.c.targets,
            CLS.c.evidence,
            CLS.c.model_version,
            LABEL.c.themes.label("label_themes"),
            LABEL.c.products.label("label_products"),
        )
        .select_from(POST)
        .outerjoin(CLS, CLS.c.id == POST.c.classification_id)
        .outerjoin(LABEL, LABEL.c.id == POST.c.label_id)
    )


def filtered_query(
    *,
    base: sa.Select[Any] | None = None,
    theme: str | None = None,
    product: str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> sa.Select[Any]:
    """``base`` (posts with the labels in force by default) narrowed by the filters, unordered."""
    stmt = (_base_query() if base is None else base).where(POST.c.deleted_at.is_(None))
    if theme:
        stmt = stmt.where(
            sa.exists().where(
                TAG.c.post_id == POST.c.id, TAG.c.kind == "theme", TAG.c.value == theme
            )
        )
    if product:
        stmt = stmt.where(
            sa.exists().where(
                TAG.c.post_id == POST.c.id, TAG.c.kind == "product", TAG.c.value == product
            )
        )
    if platform:
        stmt = stmt.where(POST.c.platform == platform)
    if since:
        stmt = stmt.where(POST.c.created_at >= since)
    if until:
        stmt = stmt.where(POST.c.created_at < until)
    return stmt


def after_cursor(stmt: sa.Select[Any], created_at: datetime, post_id: int) -> sa.Select[Any]:
    """``stmt`` limited to posts after (older than) the keyset position, newest first."""
    return stmt.where(
        # The plain bound lets the created_at index start at the cursor; the OR alone is only
        # a filter, and every page would rescan all newer rows.
        POST.c.created_at <= created_at,
        sa.or_(
            POST.c.created_at < created_at,
            sa.and_(POST.c.created_at == created_at, POST.c.id < post_id),
        ),
    ).order_by(POST.c.created_at.desc(), POST.c.id.desc())


def list_posts(
    *,
    session: Session,
    taxonomy: Taxonomy,
    theme: str | None = None,
    product: str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    with_handle: bool = False,
) -> dict[str, Any]:
    """A page of posts, newest first, with the labels in force and a cursor for the next page.

    ``text`` keeps posts whose text contains it, case-insensitively (for reviewers).
    """
    validate_filters(taxonomy, theme=theme, product=product, since=since, until=until)
    if text and "\x00" in text:
        # SQLite's LIKE stops at a NUL, so the search would match far more than was asked.
        raise InvalidInput("the search text holds a NUL byte", param="q")
    stmt = filtered_query(theme=theme, product=product, platform=platform, since=since, until=until)
    if text and text.strip():
        stmt = stmt.where(
            sa.func.lower(POST.c.text).contains(text.strip().lower(), autoescape=True)
        )
    if cursor:
        ts, pid = decode_cursor(cursor)
        stmt = after_cursor(stmt, ts, pid)
    else:
        stmt = stmt.order_by(POST.c.created_at.desc(), POST.c.id.desc())
    stmt = stmt.limit(limit + 1)
    rows = list(session.execute(stmt))
    items = [_serialize(r, with_handle=with_handle) for r in rows[:limit]]
    nxt = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return {"items": items, "next_cursor": nxt}


# How many of the newest matching posts the review queue ranks: bounded work per request.
REVIEW_SCAN = 5000


def _number(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def review_queue(
    *,
    session: Session,
    taxonomy: Taxonomy,
    model_version: str,
    thresholds: dict[str, float],
    theme: str | None = None,
    product: str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    with_handle: bool = False,
) -> dict[str, Any]:
    """Posts no one has reviewed that the model is least sure of: the ones worth a reviewer's time.

    Among the newest REVIEW_SCAN posts that match the filters, carry no human label and were
    classified by ``model_version``, a post's margin is how far its score lies from a theme's
    threshold, in log-odds, at its closest theme (or at ``theme`` alone: then the post need not
    carry it, since the ones just below the threshold are the model's likely misses). Smallest
    margin first; each item says which theme, its score and the threshold.
    """
    validate_filters(taxonomy, theme=theme, product=product, since=since, until=until)
    # Rank on ids and scores alone; only the posts shown are read whole (text, raw payload).
    light = (
        sa.select(POST.c.id, CLS.c.scores)
        .select_from(POST)
        .join(CLS, CLS.c.id == POST.c.classification_id)
    )
    stmt = (
        filtered_query(base=light, product=product, platform=platform, since=since, until=until)
        .where(POST.c.label_id.is_(None), CLS.c.model_version == model_version)
        .order_by(POST.c.created_at.desc(), POST.c.id.desc())
        .limit(REVIEW_SCAN)
    )
    rows = session.execute(stmt).all()
    keys = [t for t in ([theme] if theme else taxonomy.theme_keys) if t in thresholds]
    top: list[tuple[float, str, float, int]] = []
    if rows and keys:
        # One array op over every scanned post: (n, themes) distances from the thresholds.
        raw = [[_number(sc.get(t)) for t in keys] for _, sc in rows if isinstance(sc, dict)]
        ids = [pid for pid, sc in rows if isinstance(sc, dict)]
        from classify.heads import logit_margin  # the margin the decision itself uses

        score = np.asarray(raw, dtype=np.float64).reshape(len(ids), len(keys))
        dist = np.abs(logit_margin(score, np.array([thresholds[t] for t in keys])))
        dist[np.isnan(score)] = np.inf
        col = dist.argmin(axis=1)  # a tie goes to the theme listed first
        best = dist[np.arange(len(ids)), col]
        order = np.argsort(best, kind="stable")  # among equal margins, newest first
        top = [
            (float(best[i]), keys[col[i]], float(score[i, col[i]]), ids[i])
            for i in order[:limit]
            if np.isfinite(best[i])
        ]
    full = {
        r.id: r for r in session.execute(_base_query().where(POST.c.id.in_([m[3] for m in top])))
    }
    items = []
    for margin, t, value, post_id in top:
        item = _serialize(full[post_id], with_handle=with_handle)
        item["review"] = {
            "theme": t,
            "score": value,
            "threshold": round(thresholds[t], 4),
            "margin": round(margin, 4),
        }
        items.append(item)
    return {"items": items, "model_version": model_version, "scanned": len(rows)}


def get_post(*, session: Session, post_id: int, with_handle: bool = False) -> dict[str, Any]:
    """One post with its thread: the parent chain and the replies under the same root."""
    row = session.execute(_base_query().where(POST.c.id == post_id)).first()
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no post with id {post_id}")
    post = _serialize(row, with_handle=with_handle)
    thread_rows = session.execute(
        _base_query()
        .where(
            POST.c.platform == row.platform,
            POST.c.root_external_id == row.root_external_id,
            POST.c.deleted_at.is_(None),
        )
        .order_by(POST.c.created_at, POST.c.id)
        .limit(500)
    )
    post["thread"] = [_serialize(r, with_handle=with_handle) for r in thread_rows]
    return post


def service_counts(*, session: Session) -> dict[str, int]:
    """Posts, human-labeled posts and dirty rollup hours (for /metrics)."""
    from core.models import DirtyBucket

    live = POST.c.deleted_at.is_(None)
    posts, labeled = session.execute(
        sa.select(sa.func.count(), sa.func.count(POST.c.label_id)).where(live)
    ).one()
    dirty = session.execute(
        sa.select(sa.func.count()).select_from(DirtyBucket.__table__)  # type: ignore[attr-defined]
    ).scalar_one()
    return {"posts": int(posts), "labeled": int(labeled), "dirty_hours": int(dirty)}
