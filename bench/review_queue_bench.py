"""Latency of the review queue (`trends.posts.review_queue`) on PostgreSQL.

Loads N posts (default 20,000) through the project's own upsert and rules classifier into a
scratch database (`rq_bench`, dropped and made again), ANALYZEs it as autovacuum would, then
times the queue, with and without a theme, against a baseline in the same run: the same
ranking over whole post rows (text, raw payload and all) read by the posts listing's query,
which is how the first version read them.

    .venv/bin/python -m bench.review_queue_bench --posts 20000
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.common import machine
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.db import make_engine
from core.migrate import upgrade
from core.taxonomy import load_taxonomy
from ingest.base import NormalizedPost
from ingest.store import upsert_posts
from trends.posts import CLS, POST, REVIEW_SCAN, filtered_query, review_queue

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rq_bench"
WORDS = [
    "Claude",
    "refused",
    "my",
    "request",
    "deleted",
    "chat",
    "history",
    "switching",
    "to",
    "Gemini",
    "censorship",
    "lies",
    "gaslighting",
    "fine",
    "great",
    "today",
    "code",
    "essay",
    "project",
    "support",
    "cancel",
]


def _load(n: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS rq_bench")
        c.execute("CREATE DATABASE rq_bench")
    upgrade(url=URL)
    from sqlmodel import Session

    engine = make_engine(URL)
    rnd = random.Random(1)
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    clf = RulesClassifier()
    for b in range(0, n, 1000):
        posts = [
            NormalizedPost(
                platform="reddit",
                external_id=f"p{b + i}",
                text=" ".join(rnd.choice(WORDS) for _ in range(30)),
                created_at=t0 + timedelta(minutes=b + i),
                source="bench",
                raw={"body": " ".join(rnd.choice(WORDS) for _ in range(200))},
            )
            for i in range(min(1000, n - b))
        ]
        with Session(engine) as s:
            res = upsert_posts(session=s, posts=posts, secret="k")
            s.flush()
            classify_posts(session=s, post_ids=res.inserted, classifier=clf)
            s.commit()
    with engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def _whole_rows(session: Any, version: str) -> list[Any]:
    stmt = (
        filtered_query()
        .where(POST.c.label_id.is_(None), CLS.c.model_version == version)
        .order_by(POST.c.created_at.desc(), POST.c.id.desc())
        .limit(REVIEW_SCAN)
    )
    return list(session.execute(stmt))


def _time(fn: Callable[[], Any], n: int = 30) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(n):
        a = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - a) * 1000)
    ts.sort()
    return statistics.median(ts), ts[int(0.95 * (len(ts) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=20_000)
    args = ap.parse_args()
    started = time.perf_counter()
    _load(args.posts)
    print(f"loaded {args.posts} posts in {time.perf_counter() - started:.0f}s")
    from sqlmodel import Session

    tax = load_taxonomy()
    version = RulesClassifier().version
    thresholds = dict.fromkeys(tax.theme_keys, 0.5)
    with Session(make_engine(URL)) as s:

        def queue(theme: str | None) -> Callable[[], Any]:
            return lambda: review_queue(
                session=s,
                taxonomy=tax,
                model_version=version,
                thresholds=thresholds,
                theme=theme,
            )

        rows = [
            ("review queue, any theme", _time(queue(None))),
            ("review queue, theme=refusal_complaint", _time(queue("refusal_complaint"))),
            ("baseline: the 5,000 whole rows alone", _time(lambda: _whole_rows(s, version))),
        ]
    print(f"{machine()}; {args.posts:,} posts in PostgreSQL, {REVIEW_SCAN:,} ranked per request")
    print("| request | p50 ms | p95 ms |")
    print("|---|---|---|")
    for name, (p50, p95) in rows:
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
