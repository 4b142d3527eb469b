"""Classifying stored posts: idempotent on (post, model version, text), labels kept in force."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from classify.base import Classifier, PostInput
from core.db import hour_bucket, insert_ignoring_conflicts, mark_dirty
from core.logging import get_logger
from core.models import Classification, Label, Post, PostTag, utcnow
from core.posttext import classify_text

log = get_logger(__name__)
CLS = Classification.__table__  # type: ignore[attr-defined]
TAG = PostTag.__table__  # type: ignore[attr-defined]
POST = Post.__table__  # type: ignore[attr-defined]


def effective_labels(
    classification: Classification | None, label: Label | None
) -> tuple[list[str], list[str]] | None:
    """(themes, products) in force: the human label over the model; None when neither exists."""
    if label is not None:
        products = (
            label.products
            if label.products is not None
            else (classification.products if classification else [])
        )
        return list(label.themes), list(products)
    if classification is not None:
        return list(classification.themes), list(classification.products)
    return None


def refresh_tags(*, session: Session, post: Post) -> None:
    """Rewrite the post_tag rows of ``post`` from its classification and label in force."""
    refresh_tags_many(session=session, posts=[post])


def refresh_tags_many(*, session: Session, posts: list[Post]) -> None:
    """`refresh_tags` for many posts in a few statements (a classify batch, not one per post)."""
    if not posts:
        return
    cls_ids = [p.classification_id for p in posts if p.classification_id]
    label_ids = [p.label_id for p in posts if p.label_id]
    classifications = (
        {c.id: c for c in session.exec(select(Classification).where(CLS.c.id.in_(cls_ids)))}
        if cls_ids
        else {}
    )
    labels_by_id = (
        {lb.id: lb for lb in session.exec(select(Label).where(Label.id.in_(label_ids)))}  # type: ignore[union-attr]
        if label_ids
        else {}
    )
    session.execute(sa.delete(TAG).where(TAG.c.post_id.in_([p.id for p in posts])))
    rows = []
    for post in posts:
        labels = effective_labels(
            classifications.get(post.classification_id),
            labels_by_id.get(post.label_id),
        )
        if labels is None:
            continue
        themes, products = labels
        rows += [{"post_id": post.id, "kind": "theme", "value": t} for t in sorted(set(themes))]
        rows += [{"post_id": post.id, "kind": "product", "value": p} for p in sorted(set(products))]
    if rows:
        session.execute(sa.insert(TAG), rows)


def parent_texts(
    session: Session, keys: set[tuple[str, str | None]]
) -> dict[tuple[str, str | None], str]:
    """The classify text of each (platform, external id) parent that is stored."""
    wanted = sorted((p, e) for p, e in keys if e)
    out: dict[tuple[str, str | None], str] = {}
    for start in range(0, len(wanted), 500):  # bound the IN list on any backend
        stmt = sa.select(POST.c.platform, POST.c.external_id, POST.c.title, POST.c.text).where(
            sa.tuple_(POST.c.platform, POST.c.external_id).in_(wanted[start : start + 500])
        )
        for platform, ext, title, text in session.execute(stmt):
            out[(platform, ext)] = classify_text(title=title, text=text)
    return out


def classify_posts(
    *, session: Session, post_ids: list[int], classifier: Classifier
) -> dict[str, Any]:
    """Classify the given posts with ``classifier``; already-done (post, version, text) is a no-op."""
    version = classifier.version
    posts = [
        p
        for p in session.exec(select(Post).where(Post.id.in_(post_ids)))  # type: ignore[union-attr]
        if p.deleted_at is None
    ]
    done = {
        (pid, th)
        for pid, th in session.execute(
            sa.select(CLS.c.post_id, CLS.c.text_hash).where(
                CLS.c.post_id.in_([p.id for p in posts]), CLS.c.model_version == version
            )
        )
    }
    todo = [p for p in posts if (p.id, p.text_hash) not in done]
    parents = parent_texts(session, {(p.platform, p.parent_external_id) for p in todo})
    inputs = [
        PostInput(
            id=str(p.id),
            text=classify_text(title=p.title, text=p.text),
            parent_text=parents.get((p.platform, p.parent_external_id or "")),
            author_handle=p.author_handle,
            platform=p.platform,
        )
        for p in todo
    ]
    predictions = classifier.predict(inputs) if inputs else []
    now = utcnow()
    rows = [
        {
            "post_id": int(pred.id),
            "model_version": version,
            "text_hash": p.text_hash,
            "themes": pred.themes,
            "scores": {k: round(float(v), 4) for k, v in pred.scores.items()},
            "products": pred.products,
            "targets": pred.targets,
            "evidence": pred.evidence,
            "created_at": now,
        }
        for p, pred in zip(todo, predictions, strict=True)
    ]
    insert_ignoring_conflicts(session, CLS, rows, ["post_id", "model_version", "text_hash"])
    # Point every post (new or already done) at its classification for this version and text.
    ids = {
        (pid, th): cid
        for cid, pid, th in session.execute(
            sa.select(CLS.c.id, CLS.c.post_id, CLS.c.text_hash).where(
                CLS.c.post_id.in_([p.id for p in posts]), CLS.c.model_version == version
            )
        )
    }
    dirty = set()
    repointed = []
    for p in posts:
        cid = ids.get((p.id, p.text_hash))
        if cid is not None and p.classification_id != cid:
            p.classification_id = cid
            session.add(p)
            repointed.append(p)
            dirty.add(hour_bucket(p.created_at))
    session.flush()
    refresh_tags_many(session=session, posts=repointed)
    mark_dirty(session, dirty)
    log.info("classify.batch", n=len(posts), new=len(rows), version=version)
    return {"posts": len(posts), "classified": len(rows), "skipped": len(posts) - len(rows)}


def pending_post_ids(
    *, session: Session, model_version: str, stale_after_s: int, limit: int = 10_000
) -> list[int]:
    """Posts with no classification for ``model_version`` and their current text, not requested lately."""
    done = sa.exists().where(
        CLS.c.post_id == POST.c.id,
        CLS.c.model_version == model_version,
        CLS.c.text_hash == POST.c.text_hash,
    )
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stmt = (
        sa.select(POST.c.id)
        .where(
            ~done,
            POST.c.deleted_at.is_(None),
            sa.or_(POST.c.classify_requested_at.is_(None), POST.c.classify_requested_at < cutoff),
        )
        .order_by(POST.c.id)
        .limit(limit)
    )
    return [r[0] for r in session.execute(stmt)]


def mark_requested(*, session: Session, post_ids: list[int]) -> None:
    """Record that classification of these posts was enqueued now."""
    if post_ids:
        session.execute(
            sa.update(POST).where(POST.c.id.in_(post_ids)).values(classify_requested_at=utcnow())
        )
