"""Reviewed posts as labelled examples: the corrections a team makes teach and measure the model.

A human label in force (`PUT /v1/posts/{id}/labels`) on a post's current text is a labelled
real post of the team's own domain, the kind of example the classifier learns most from
(bench/results/classify_eval.md). Each reviewed post lands in a split by a hash of its
platform and external id, as written examples do: `train` and `val` posts join the fit set of
`undertow classify train --reviewed`, `test` posts never do, and `undertow classify eval
--reviewed` scores the model on them (on every reviewed post while the heads in use were fit
on none). Their texts stay in the database: the artifact keeps
neither their words nor their snippets.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session

from classify.store import parent_texts
from classify.training import Example, split_of
from core.models import Label, Post
from core.posttext import classify_text

POST = Post.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]


def reviewed_examples(session: Session, themes: Sequence[str]) -> tuple[list[Example], int]:
    """Posts whose label in force was made on their current text, as Examples; and how many not.

    A label made on an earlier text (the post was edited since) says nothing sure about the
    text a classifier reads now: it is left out and counted. Themes no longer in the taxonomy
    are dropped from a label; a post keeps its other themes.
    """
    known = set(themes)
    stmt = (
        sa.select(
            POST.c.platform,
            POST.c.external_id,
            POST.c.title,
            POST.c.text,
            POST.c.text_hash,
            POST.c.parent_external_id,
            POST.c.author_handle,
            LABEL.c.themes,
            LABEL.c.text_hash.label("label_hash"),
        )
        .join(LABEL, LABEL.c.id == POST.c.label_id)
        .where(POST.c.deleted_at.is_(None))
        .order_by(POST.c.platform, POST.c.external_id)
    )
    rows = session.execute(stmt).all()
    current = [r for r in rows if r.label_hash == r.text_hash]
    parents = parent_texts(session, {(r.platform, r.parent_external_id) for r in current})
    examples = [
        Example(
            id=reviewed_id(r.platform, r.external_id),
            text=classify_text(title=r.title, text=r.text),
            themes=tuple(sorted(t for t in (r.themes or []) if t in known)),
            parent_text=parents.get((r.platform, r.parent_external_id)),
            author_handle=r.author_handle,
            platform=r.platform,
        )
        for r in current
    ]
    return examples, len(rows) - len(current)


def reviewed_id(platform: str, external_id: str) -> str:
    """The example id of a reviewed post: stable, so the post stays in its split."""
    return f"reviewed:{platform}:{external_id}"


def held_out(examples: Sequence[Example]) -> list[Example]:
    """The reviewed posts no fit ever sees (`split_of` puts them in `test`)."""
    return [e for e in examples if split_of(e.id) == "test"]


def unseen(examples: Sequence[Example], n_fit: int) -> tuple[list[Example], str]:
    """The reviewed posts heads fit on `n_fit` reviewed posts have not seen, and what they are.

    Heads fit on none (the shipped ones, or any trained without `--reviewed`) have seen none of
    them; otherwise only the held-out split is sure to be unseen.
    """
    if n_fit == 0:
        return list(examples), f"all {len(examples)} reviewed posts: the heads in use saw none"
    held = held_out(examples)
    return held, f"{len(held)} of {len(examples)} reviewed posts, held out of every fit"


def fit_part(examples: Sequence[Example]) -> list[Example]:
    """The reviewed posts `classify train --reviewed` fits on."""
    return [e for e in examples if split_of(e.id) != "test"]
