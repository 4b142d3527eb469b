"""Rollups: posts per hour x platform x product x theme, recomputed for dirty hours only.

An hour is recomputed from the posts and the labels in force, so the incremental path and a
full rebuild give the same numbers by construction, and a repeated task changes nothing.

The same pass keeps the hour's posts per model version in force (where a series marks a version
change) and the hour's example posts (the top ``EXAMPLES_KEPT`` per platform x product
x theme, ranked as the weekly summary shows them), and the day's top posts are merged from its
hours' rows, so the weekly summary reads its examples from a few hundred stored rows.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import is_postgres
from core.models import (
    Classification,
    DirtyBucket,
    Label,
    Post,
    Rollup,
    RollupExample,
    RollupVersion,
    utcnow,
)

ALL = "*"
# Example posts kept per hour or day x platform x product x theme: the API's most per theme.
EXAMPLES_KEPT = 10
POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]
ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
DIRTY = DirtyBucket.__table__  # type: ignore[attr-defined]
EXAMPLE = RollupExample.__table__  # type: ignore[attr-defined]
VERSION = RollupVersion.__table__  # type: ignore[attr-defined]

Key = tuple[str, str, str]
# (human label, the theme's score, created_at, post id): larger ranks first.
Ranked = tuple[bool, float, datetime, int]


def count_bucket(session: Session, bucket: datetime) -> Counter[Key]:
    """Counts keyed (platform, product, theme) for one hour, from the labels in force."""
    return tally_bucket(session, bucket)[0]


def tally_bucket(
    session: Session, bucket: datetime
) -> tuple[Counter[Key], dict[Key, list[Ranked]]]:
    """One hour's counts and its top example posts, keyed (platform, product, theme).

    A post is an example of exactly the (platform, product, theme) cells it is counted in.
    Human-labeled posts rank first; a theme the model did not score ranks at 1.0.
    """
    stmt = (
        sa.select(
            POST.c.id,
            POST.c.created_at,
            CLS.c.scores,
            POST.c.platform,
            CLS.c.themes,
            CLS.c.products,
            CLS.c.targets,
            LABEL.c.themes.label("label_themes"),
            LABEL.c.products.label("label_products"),
        )
        .select_from(POST)
        .outerjoin(CLS, CLS.c.id == POST.c.classification_id)
        .outerjoin(LABEL, LABEL.c.id == POST.c.label_id)
        .where(
            POST.c.created_at >= bucket,
            POST.c.created_at < bucket + timedelta(hours=1),
            POST.c.deleted_at.is_(None),
            sa.or_(POST.c.classification_id.is_not(None), POST.c.label_id.is_not(None)),
        )
    )
    counts: Counter[Key] = Counter()
    candidates: dict[Key, list[Ranked]] = {}
    for row in session.execute(stmt):
        pid, created, scores, platform, themes, products, targets, l_themes, l_products = row
        human = l_themes is not None
        if human:
            themes = l_themes
            products = l_products if l_products is not None else (products or [])
            targets = {}
        themes, products, targets = themes or [], products or [], targets or {}
        scores = scores or {}
        for product in [ALL, *set(products)]:
            counts[(platform, product, ALL)] += 1
        for theme in set(themes):
            target = targets.get(theme)
            theme_products = [target] if target else sorted(set(products))
            ranked = (human, float(scores.get(theme, 1.0)), created, pid)
            for product in [ALL, *theme_products]:
                counts[(platform, product, theme)] += 1
                candidates.setdefault((platform, product, theme), []).append(ranked)
    top = {k: heapq.nlargest(EXAMPLES_KEPT, v) for k, v in candidates.items()}
    return counts, top


def _lock(session: Session, bucket: datetime, kind: str = "") -> None:
    # Two workers recomputing one hour (or merging one day) must not interleave read and write
    # (PostgreSQL); SQLite serializes writers already. Hours are locked before days, in order.
    if is_postgres(session):
        key = zlib.crc32((kind + bucket.isoformat()).encode()) & 0x7FFFFFFF
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def day_of(bucket: datetime) -> datetime:
    """The UTC day holding an hour bucket."""
    return bucket.replace(hour=0, minute=0, second=0, microsecond=0)


def recompute_bucket(session: Session, bucket: datetime, *, merge_day: bool = True) -> int:
    """Replace the rollup rows and example posts of one hour; returns rollup rows written.

    ``merge_day`` also re-merges the day's examples (callers recomputing many hours of a day
    pass False and call ``merge_day_examples`` once per day afterwards).
    """
    _lock(session, bucket)
    counts, top = tally_bucket(session, bucket)
    session.execute(sa.delete(ROLLUP).where(ROLLUP.c.bucket == bucket))
    rows = [
        {"bucket": bucket, "platform": pl, "product": pr, "theme": th, "count": n}
        for (pl, pr, th), n in sorted(counts.items())
    ]
    if rows:
        session.execute(sa.insert(ROLLUP), rows)
    session.execute(sa.delete(EXAMPLE).where(EXAMPLE.c.span == "hour", EXAMPLE.c.bucket == bucket))
    examples = [
        {
            "span": "hour",
            "bucket": bucket,
            "platform": pl,
            "product": pr,
            "theme": th,
            "rank": rank,
            "post_id": pid,
            "score": score,
            "human": human,
            "created_at": created,
        }
        for (pl, pr, th), ranked in sorted(top.items())
        for rank, (human, score, created, pid) in enumerate(ranked, start=1)
    ]
    if examples:
        session.execute(sa.insert(EXAMPLE), examples)
    session.execute(sa.delete(VERSION).where(VERSION.c.bucket == bucket))
    versions = tally_versions(session, bucket)
    if versions:
        session.execute(sa.insert(VERSION), versions)
    if merge_day:
        merge_day_examples(session, day_of(bucket))
    return len(rows)


def tally_versions(session: Session, bucket: datetime) -> list[dict[str, Any]]:
    """One hour's classified posts per platform x model version in force, with the first post
    time and the first scoring time of each (the rows of ``rollup_version``)."""
    stmt = (
        sa.select(
            POST.c.platform,
            CLS.c.model_version,
            sa.func.count(),
            sa.func.min(POST.c.created_at),
            sa.func.min(CLS.c.created_at),
        )
        .select_from(POST)
        .join(CLS, CLS.c.id == POST.c.classification_id)
        .where(
            POST.c.created_at >= bucket,
            POST.c.created_at < bucket + timedelta(hours=1),
            POST.c.deleted_at.is_(None),
        )
        .group_by(POST.c.platform, CLS.c.model_version)
    )
    return [
        {
            "bucket": bucket,
            "platform": platform,
            "model_version": version,
            "posts": int(n),
            "first_post_at": decode_timestamp(session, first_post),
            "first_classified_at": decode_timestamp(session, first_scored),
        }
        for platform, version, n, first_post, first_scored in session.execute(stmt)
    ]


def decode_timestamp(session: Session, v: Any) -> datetime:
    """min() of a timestamp comes back as text on SQLite; the column's own type decodes it."""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    decoded: datetime = POST.c.created_at.type.process_result_value(v, session.get_bind().dialect)
    return decoded


def merge_day_examples(session: Session, day: datetime) -> None:
    """Replace a day's example rows with the top of its hours' rows (one INSERT ... SELECT)."""
    _lock(session, day, "day:")
    session.execute(sa.delete(EXAMPLE).where(EXAMPLE.c.span == "day", EXAMPLE.c.bucket == day))
    c = EXAMPLE.c
    rn = (
        sa.func.row_number()
        .over(
            partition_by=[c.platform, c.product, c.theme],
            order_by=[c.human.desc(), c.score.desc(), c.created_at.desc(), c.post_id.desc()],
        )
        .label("rn")
    )
    hours = (
        sa.select(c.platform, c.product, c.theme, c.post_id, c.score, c.human, c.created_at, rn)
        .where(c.span == "hour", c.bucket >= day, c.bucket < day + timedelta(days=1))
        .subquery()
    )
    h = hours.c
    pick = sa.select(
        sa.literal("day", sa.String()),
        sa.literal(day, c.bucket.type),
        h.platform,
        h.product,
        h.theme,
        h.rn,
        h.post_id,
        h.score,
        h.human,
        h.created_at,
    ).where(h.rn <= EXAMPLES_KEPT)
    names = ["span", "bucket", "platform", "product", "theme", "rank", "post_id", "score"]
    session.execute(sa.insert(EXAMPLE).from_select([*names, "human", "created_at"], pick))


def refresh_dirty(*, session: Session, limit: int = 500) -> dict[str, Any]:
    """Recompute the hours marked dirty (oldest first); the caller commits."""
    dirty = list(
        session.execute(
            sa.select(DIRTY.c.bucket, DIRTY.c.marked_at).order_by(DIRTY.c.bucket).limit(limit)
        )
    )
    written = 0
    for bucket, marked_at in dirty:
        written += recompute_bucket(session, bucket, merge_day=False)
        # Only clear the mark if nobody re-marked the hour since we read it.
        session.execute(
            sa.delete(DIRTY).where(DIRTY.c.bucket == bucket, DIRTY.c.marked_at <= marked_at)
        )
    for day in sorted({day_of(b) for b, _ in dirty}):
        merge_day_examples(session, day)
    return {"buckets": len(dirty), "rows": written}


def rebuild_all(*, session: Session) -> dict[str, Any]:
    """Recompute every hour that holds posts, and drop rollups of hours that hold none."""
    hours: set[datetime] = set()
    for (created,) in session.execute(sa.select(POST.c.created_at)):
        hours.add(created.replace(minute=0, second=0, microsecond=0))
    session.execute(sa.delete(ROLLUP))
    session.execute(sa.delete(EXAMPLE))
    session.execute(sa.delete(VERSION))
    written = sum(recompute_bucket(session, h, merge_day=False) for h in sorted(hours))
    for day in sorted({day_of(h) for h in hours}):
        merge_day_examples(session, day)
    session.execute(sa.delete(DIRTY).where(DIRTY.c.marked_at <= utcnow()))
    return {"buckets": len(hours), "rows": written}


def snapshot(*, session: Session) -> dict[tuple[Any, ...], Any]:
    """All rollup and example rows as a dict, for comparing the incremental path with a rebuild."""
    out: dict[tuple[Any, ...], Any] = {
        (b.isoformat(), pl, pr, th): n
        for b, pl, pr, th, n in session.execute(
            sa.select(
                ROLLUP.c.bucket, ROLLUP.c.platform, ROLLUP.c.product, ROLLUP.c.theme, ROLLUP.c.count
            )
        )
    }
    c = EXAMPLE.c
    for span, b, pl, pr, th, rank, pid, score, human in session.execute(
        sa.select(
            c.span, c.bucket, c.platform, c.product, c.theme, c.rank, c.post_id, c.score, c.human
        )
    ):
        out[("example", span, b.isoformat(), pl, pr, th, rank)] = (
            pid,
            round(score, 6),
            bool(human),
        )
    v = VERSION.c
    for b, pl, mv, n, first, scored in session.execute(
        sa.select(
            v.bucket, v.platform, v.model_version, v.posts, v.first_post_at, v.first_classified_at
        )
    ):
        out[("version", b.isoformat(), pl, mv)] = (n, first.isoformat(), scored.isoformat())
    return out
