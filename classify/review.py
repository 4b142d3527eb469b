"""Human review: a label correction that overrides the model in every count and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from classify.store import refresh_tags
from core.db import hour_bucket, mark_dirty
from core.errors import InvalidInput, NotFound
from core.models import Label, Post
from core.taxonomy import Taxonomy


def correct_labels(
    *,
    session: Session,
    taxonomy: Taxonomy,
    post_id: int,
    themes: list[str],
    products: list[str] | None,
    author: str,
    note: str | None = None,
) -> tuple[Label, datetime]:
    """Record a human label for a post and put it in force; returns it and the hour to recompute.

    ``themes`` may be empty (the reviewer says: none of the themes); ``products`` None keeps the
    model's products. The post's hour is marked dirty in the same transaction.
    """
    unknown = sorted(set(themes) - set(taxonomy.theme_keys))
    if unknown:
        raise InvalidInput(
            f"unknown theme(s) {unknown}; one of {list(taxonomy.theme_keys)}", param="themes"
        )
    if products is not None:
        bad = sorted(set(products) - set(taxonomy.products))
        if bad:
            raise InvalidInput(
                f"unknown product(s) {bad}; one of {list(taxonomy.products)}", param="products"
            )
    post = session.get(Post, post_id)
    if post is None or post.deleted_at is not None:
        raise NotFound(f"no post with id {post_id}")
    label = Label(
        post_id=post_id,
        themes=sorted(set(themes)),
        products=sorted(set(products)) if products is not None else None,
        text_hash=post.text_hash,
        author=author[:128],
        note=note,
    )
    session.add(label)
    session.flush()
    post.label_id = label.id
    session.add(post)
    session.flush()
    refresh_tags(session=session, post=post)
    bucket = hour_bucket(post.created_at)
    mark_dirty(session, {bucket})
    return label, bucket


def label_view(label: Label) -> dict[str, Any]:
    """A label as the API shows it."""
    return {
        "id": label.id,
        "post_id": label.post_id,
        "themes": label.themes,
        "products": label.products,
        "author": label.author,
        "note": label.note,
        "created_at": label.created_at.isoformat(),
    }
