"""Normalize + upsert throughput for generated posts on SQLite and PostgreSQL, vs one-row inserts.

Usage: python -m bench.ingest_bench [--n 100000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlmodel import Session

from bench.common import machine, write_result
from core.db import make_engine
from core.migrate import upgrade
from core.models import Post
from core.posttext import text_hash
from ingest.sources.replay import parse_line
from ingest.store import author_key, upsert_posts

WORDS = [
    "claude",
    "chatgpt",
    "gemini",
    "refused",
    "deleted",
    "my",
    "work",
    "again",
    "the",
    "model",
    "new",
    "release",
    "today",
    "research",
]


def records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Raw replay-style records, as an adapter would hand them to normalization."""
    rnd = random.Random(seed)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        root = f"b{i - i % 5}"
        out.append(
            {
                "platform": rnd.choice(["reddit", "bluesky", "hackernews", "mastodon", "x"]),
                "external_id": f"b{i}",
                "text": " ".join(rnd.choices(WORDS, k=rnd.randint(8, 40))),
                "created_at": (start + timedelta(seconds=37 * i)).isoformat(),
                "author_handle": f"user{rnd.randint(1, 5000)}",
                "parent_external_id": None if i % 5 == 0 else root,
                "root_external_id": root,
                "engagement": {"likes": rnd.randint(0, 50)},
            }
        )
    return out


def run_batched(url: str, recs: list[dict[str, Any]], batch: int = 1000) -> float:
    """Our path: parse + normalize each record, upsert in pages; returns seconds."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with Session(engine) as s:
        for i in range(0, len(recs), batch):
            posts = [parse_line(r, source="bench") for r in recs[i : i + batch]]
            upsert_posts(session=s, posts=posts, secret="bench")
            s.commit()
    dt = time.perf_counter() - t0
    engine.dispose()
    return dt


def run_naive(url: str, recs: list[dict[str, Any]]) -> float:
    """Baseline: one ORM insert and one commit per post."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with Session(engine) as s:
        for r in recs:
            p = parse_line(r, source="bench")
            s.add(
                Post(
                    platform=p.platform,
                    external_id=p.external_id,
                    text=p.text,
                    text_hash=text_hash(title=p.title, text=p.text),
                    author_handle=p.author_handle,
                    author_key=author_key(
                        platform=p.platform, handle=p.author_handle, secret="bench"
                    ),
                    parent_external_id=p.parent_external_id,
                    root_external_id=p.root_external_id,
                    engagement=p.engagement,
                    raw=p.raw,
                    source="bench",
                    created_at=p.created_at,
                )
            )
            s.commit()
    dt = time.perf_counter() - t0
    engine.dispose()
    return dt


def _fresh_pg(admin: str) -> tuple[str, str]:
    name = f"undertow_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name, admin.rsplit("/", 1)[0].replace(
        "postgresql://", "postgresql+psycopg://"
    ) + f"/{name}"


def _drop_pg(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--naive-n", type=int, default=5_000, help="posts for the slow baseline")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    recs = records(args.n)
    naive = recs[: args.naive_n]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            for label, fn, data in (
                ("batched upsert", run_batched, recs),
                ("naive one-row", run_naive, naive),
            ):
                if backend == "sqlite":
                    url, name = f"sqlite:///{Path(tmp) / (label[:5] + '.db')}", ""
                else:
                    name, url = _fresh_pg(args.pg)
                upgrade(url=url)
                secs = fn(url, data)
                again = run_batched(url, data) if label == "batched upsert" else None
                if name:
                    _drop_pg(args.pg, name)
                row = {"backend": backend, "path": label, "posts": len(data), "seconds": round(secs, 2),
                       "posts_per_s": round(len(data) / secs)}  # fmt: skip
                if again is not None:
                    row["rerun_posts_per_s"] = round(len(data) / again)
                results.append(row)
                print(json.dumps(row), flush=True)
    lines = [
        "| backend | path | posts | seconds | posts/s | re-read of the same posts, posts/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rerun = f"{r['rerun_posts_per_s']:,}" if "rerun_posts_per_s" in r else "-"
        lines.append(
            f"| {r['backend']} | {r['path']} | {r['posts']:,} | {r['seconds']} | "
            f"{r['posts_per_s']:,} | {rerun} |"
        )
    write_result(
        "ingest",
        "Ingest: normalize + upsert throughput",
        "\n".join(lines)
        + "\n\nCommand: `python -m bench.ingest_bench --n "
        + f"{args.n}`. Normalization (parse + UTC time + author pseudonym + text hash) is included. "
        "The naive baseline inserts and commits one post at a time through the ORM.",
        machine=machine(),
    )


if __name__ == "__main__":
    main()
