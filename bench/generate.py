"""Generated posts with classifications and tags, bulk-loaded into PostgreSQL with COPY.

For the API benchmark and the export memory test: realistic shapes (varied texts, 0-3 themes,
1-2 products, five platforms, two model versions) at a speed of some 10^5 rows per second.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

PLATFORMS = ("reddit", "hackernews", "bluesky", "mastodon", "x")
PRODUCTS = ("claude", "chatgpt", "gemini", "grok", "copilot")
THEMES = {
    "refusal_complaint": 0.12,
    "perceived_censorship": 0.05,
    "competitor_solicitation": 0.03,
    "switching_intent": 0.06,
    "lost_work_claim": 0.04,
    "manipulation_accusation": 0.03,
    "hateful_framing": 0.005,
    "safety_support": 0.04,
}
_OPENERS = ("Honestly", "Ok so", "PSA:", "Anyone else notice", "Update:", "Hot take:", "")
_BODIES = (
    "{p} refused to help with a perfectly normal request about {w}",
    "I moved my whole workflow from {p} last month and {w} is better now",
    "{p} lost three hours of my {w} notes after the update",
    "is {p} getting worse at {w} or is it just me",
    "great thread on how {p} handles {w} safely",
    "benchmarks for {p} on {w} are out, thoughts?",
    "{p} keeps hedging every answer about {w}",
    "=SUM(A1:A3) tried to get {p} to fix my {w} formula",
)
_WORDS = ("python", "essays", "tax forms", "chemistry", "poetry", "SQL", "history", "recipes")


def _pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _profiles(rnd: random.Random, k: int = 4096) -> list[tuple[str, str, str, str]]:
    """Distinct (themes, products, scores, first product) JSON texts, drawn with the theme rates."""
    out = []
    items = list(THEMES.items())
    for _ in range(k):
        themes = [t for t, p in items if rnd.random() < p]
        products = rnd.sample(PRODUCTS, 1 if rnd.random() < 0.8 else 2)
        scores = {
            t: round(rnd.uniform(0.55, 0.99) if t in themes else rnd.uniform(0.0, 0.3), 3)
            for t in THEMES
        }
        out.append((json.dumps(themes), json.dumps(products), json.dumps(scores), products[0]))
    return out


def _copy(conn: psycopg.Connection[Any], sql: str, lines: Iterator[str]) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 20_000:
                copy.write("".join(buf))
                buf.clear()
        if buf:
            copy.write("".join(buf))


def generate(
    url: str,
    *,
    n: int,
    end: datetime = datetime(2026, 11, 23, tzinfo=UTC),
    days: int = 364,
    seed: int = 7,
    version_switch: float = 0.75,
) -> dict[str, int]:
    """Insert ``n`` posts spread over ``days`` before ``end``, each with one classification.

    Rows go in as COPY text lines in large writes; theme/product/score combinations come from a
    pool of a few thousand drawn with realistic rates, so no JSON is encoded per row.
    """
    rnd = random.Random(seed)
    start = end - timedelta(days=days)
    span = days * 86400
    switch_at = start + timedelta(seconds=span * version_switch)
    now = datetime.now(UTC).isoformat()
    profiles = _profiles(rnd)
    with psycopg.connect(_pg_url(url)) as conn:
        base_post = conn.execute("SELECT coalesce(max(id), 0) FROM post").fetchone()[0]  # type: ignore[index]
        base_cls = conn.execute("SELECT coalesce(max(id), 0) FROM classification").fetchone()[0]  # type: ignore[index]
        try:
            # Generated rows are consistent by construction: skip the per-row foreign-key
            # triggers when the role may (a superuser, as in tests and the benchmark).
            conn.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
        plan = []
        for i in range(n):
            created = start + timedelta(seconds=int(rnd.random() * span))
            prof = profiles[rnd.randrange(len(profiles))]
            body = rnd.choice(_BODIES).format(p=prof[3].title(), w=rnd.choice(_WORDS))
            text = f"{rnd.choice(_OPENERS)} {body} #{i}".strip()
            plan.append((created.isoformat(), created >= switch_at, prof, text))
        # Ingest stores posts roughly in time order; so do we (ids and heap order follow time).
        plan.sort(key=lambda p: p[0])

        def posts() -> Iterator[str]:
            for i, (created, _v2, prof, text) in enumerate(plan):
                pid = base_post + i + 1
                platform = PLATFORMS[i % len(PLATFORMS)]
                digest = hashlib.sha256(text.encode()).hexdigest()
                yield (
                    f"{pid}\t{platform}\tg{pid}\thttps://example.org/{platform}/{pid}\t"
                    f"{_esc(text)}\t{digest}\ten\tuser{pid % 50_000}\t{pid * 2654435761 % 2**64:016x}"
                    f'\tg{pid}\t{{"score": {pid % 200}}}\tgen-{platform}\t{prof[3]}\t'
                    f"{created}\t{created}\t{now}\t{base_cls + i + 1}\n"
                )

        _copy(
            conn,
            "COPY post (id, platform, external_id, url, text, text_hash, lang, author_handle, "
            "author_key, root_external_id, engagement, source, query, created_at, collected_at, "
            "updated_at, classification_id) FROM STDIN",
            posts(),
        )

        def classifications() -> Iterator[str]:
            for i, (created, v2, prof, text) in enumerate(plan):
                digest = hashlib.sha256(text.encode()).hexdigest()
                yield (
                    f"{base_cls + i + 1}\t{base_post + i + 1}\t{'gen-2' if v2 else 'gen-1'}\t"
                    f"{digest}\t{prof[0]}\t{prof[2]}\t{prof[1]}\t{{}}\t{{}}\t{created}\n"
                )

        _copy(
            conn,
            "COPY classification (id, post_id, model_version, text_hash, themes, scores, "
            "products, targets, evidence, created_at) FROM STDIN",
            classifications(),
        )
        tag_rows = {p: _tag_lines(p) for p in profiles}
        tags = 0

        def post_tags() -> Iterator[str]:
            nonlocal tags
            for i, (_c, _v2, prof, _t) in enumerate(plan):
                pid = base_post + i + 1
                for kind_value in tag_rows[prof]:
                    tags += 1
                    yield f"{pid}\t{kind_value}\n"

        _copy(conn, "COPY post_tag (post_id, kind, value) FROM STDIN", post_tags())
        for table in ("post", "classification"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        for table in ("post", "classification", "post_tag"):
            conn.execute(f"ANALYZE {table}")
    return {"posts": n, "classifications": n, "tags": tags}


def _tag_lines(prof: tuple[str, str, str, str]) -> list[str]:
    themes, products = json.loads(prof[0]), json.loads(prof[1])
    return [f"theme\t{t}" for t in themes] + [f"product\t{p}" for p in products]


def _esc(value: str) -> str:
    # COPY text format: backslash, tab and newlines must be escaped.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )
