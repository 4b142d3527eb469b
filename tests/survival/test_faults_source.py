"""Faults: a source that serves duplicates, pages out of order, and posts edited under us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.ingest.conftest import ApiServer, Reply, as_json

pytestmark = [pytest.mark.survival, pytest.mark.faults]
TL = "/api/v1/timelines/tag/claude"
BASE_ID = 113_000_000_000_000_000
NOW = datetime.now(UTC).replace(microsecond=0)
TEXTS = [
    "Claude refused to summarize a public court ruling for me",
    "ChatGPT lost four hours of my notes, the whole project is gone",
    "Anyone compared Gemini and Claude for code review?",
    "Switching to Grok after this, done with the refusals",
    "The new Claude release notes are out",
]


def sid(n: int) -> str:
    return str(BASE_ID + n)


def status(n: int, text: str, *, reply_to: int | None = None, replies: int = 0) -> dict[str, Any]:
    """A Mastodon status in the API's shape (our own recorded-style payload)."""
    return {
        "id": sid(n),
        "uri": f"https://social.example/users/u{n % 4}/statuses/{sid(n)}",
        "url": f"https://social.example/@u{n % 4}/{sid(n)}",
        "created_at": (NOW - timedelta(minutes=60 - n)).isoformat().replace("+00:00", "Z"),
        "content": f"<p>{text}</p>",
        "spoiler_text": "",
        "language": "en",
        "account": {"acct": f"u{n % 4}"},
        "in_reply_to_id": sid(reply_to) if reply_to else None,
        "replies_count": replies,
        "reblogs_count": 0,
        "favourites_count": n % 3,
    }


def _next(max_id: int) -> dict[str, str]:
    return {"Link": f'<{{base}}{TL}?max_id={sid(max_id)}&limit=40>; rel="next"'}


def _run(settings, server: ApiServer, config=None) -> list[int]:
    """One ingest run of the source, the way the task runs it; returns ids handed on."""
    from core.db import session_scope
    from core.settings import SourceConfig
    from ingest.pipeline import run_source
    from ingest.registry import open_source

    config = config or SourceConfig(
        name="masto", kind="mastodon", base_url=server.url, queries=["claude"], max_pages=10
    )
    handed: list[int] = []
    with session_scope(settings) as session, open_source(config, settings=settings) as adapter:
        run_source(
            session=session,
            config=config,
            adapter=adapter,
            secret="s",
            on_committed=handed.extend,
        )
    return handed


def _classify(settings, ids: list[int]) -> None:
    from classify.loader import get_classifier
    from classify.store import classify_posts
    from core.db import session_scope

    with session_scope(settings) as session:
        classify_posts(session=session, post_ids=ids, classifier=get_classifier(settings))


def test_duplicates_out_of_order_pages_and_edits_end_in_the_source_state(pg_url):
    """Breaks: the source repeats statuses across pages, serves a page whose statuses are out of
    order, edits a status between two page requests of one run, and edits an older status that
    only comes back in the context of a new reply on the next run.

    Expected: one stored post per status, each with the text the source served last, and one
    classification per post and text: the edited posts are classified again for the new text.
    """
    from core.settings import Settings

    settings = Settings(database_url=pg_url, classifier="rules")
    final: dict[int, str] = {n: TEXTS[n % 5] + f" (status {n})" for n in range(1, 11)}
    edited_mid_run = final[5] + " EDIT: they fixed it after an hour"
    edited_later = "Claude refused again and I am switching to Grok for good"
    server = ApiServer()
    server.thread.start()
    try:
        s = {n: status(n, text) for n, text in final.items()}
        s[1]["replies_count"] = 1
        s9 = status(9, final[9], reply_to=1)
        # Run 1: page 2 repeats 5 (edited in between) and 6; page 1 is out of order.
        server.add(TL, as_json([s[5] | {"content": f"<p>{edited_mid_run}</p>"}, s[6], s[4], s[2], s[3]], headers=_next(2)), max_id=sid(5))  # fmt: skip
        server.add(TL, as_json([s[1], s[4], s[2]]), max_id=sid(2))
        # Run 2 (since the newest id of run 1): a new reply to 3, twice, and 3 edited.
        s10 = status(10, final[10], reply_to=3)
        server.add(TL, as_json([s10, s10]), since_id=sid(8))
        server.add(TL, as_json([s[7], s[8], s[6], s[5]], headers=_next(5)))
        server.add(
            f"/api/v1/statuses/{sid(1)}/context", as_json({"ancestors": [], "descendants": [s9]})
        )
        s3_edited = s[3] | {"content": f"<p>{edited_later}</p>", "replies_count": 1}
        server.add(
            f"/api/v1/statuses/{sid(10)}/context",
            as_json({"ancestors": [s3_edited], "descendants": []}),
        )
        first = _run(settings, server)
        _classify(settings, first)
        second = _run(settings, server)
        _classify(settings, second)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    final[5], final[3] = edited_mid_run, edited_later

    from core.db import get_engine
    from core.models import Classification, Post
    from core.posttext import text_hash

    with Session(get_engine(settings)) as session:
        posts = {p.external_id.rsplit("/", 1)[-1]: p for p in session.scalars(sa.select(Post))}
        assert {k: p.text for k, p in posts.items()} == {sid(n): t for n, t in final.items()}
        rows = session.execute(
            sa.select(Classification.post_id, Classification.text_hash, Classification.id)
        ).all()
    per_post: dict[int, list[tuple[str, int]]] = {}
    for pid, th, cid in rows:
        per_post.setdefault(pid, []).append((th, cid))
    for key, post in posts.items():
        hashes = [th for th, _ in per_post[post.id]]
        assert len(hashes) == len(set(hashes)), f"{key} classified twice for one text"
        current = text_hash(title=post.title, text=post.text)
        assert current in hashes, f"{key} has no classification for its current text"
        assert post.classification_id == dict(per_post[post.id])[current]
    # The status edited after its first classification was classified again.
    assert len(per_post[posts[sid(3)].id]) == 2
    assert posts[sid(10)].parent_external_id == posts[sid(3)].external_id


def _stored(settings) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """External id -> text, -> text hashes classified, -> hash of the text in force."""
    from core.db import get_engine
    from core.models import Classification, Post

    with Session(get_engine(settings)) as session:
        posts = {p.id: p for p in session.scalars(sa.select(Post))}
        hashes: dict[str, list[str]] = {p.external_id: [] for p in posts.values()}
        for pid, th in session.execute(sa.select(Classification.post_id, Classification.text_hash)):
            hashes[posts[pid].external_id].append(th)
    current = {p.external_id: p.text_hash for p in posts.values()}
    return {p.external_id: p.text for p in posts.values()}, hashes, current


def _feed(entries: list[tuple[str, str, int]]) -> bytes:
    items = "".join(
        f"<item><guid>https://blog.example/{guid}</guid><title>{title}</title>"
        f"<pubDate>{(NOW - timedelta(hours=h)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        "</item>"
        for guid, title, h in entries
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def test_rss_feed_edits_reach_the_database(pg_url):
    """Breaks: a feed repeats an entry, lists entries out of date order, and on the next poll
    serves an entry edited in place (same guid, new title); a third poll is a 304.

    Expected: one post per guid, the edited one with its new text and classified again for it.
    """
    from core.settings import Settings, SourceConfig

    settings = Settings(database_url=pg_url, classifier="rules")
    before = [("a", "Claude refused my request", 1), ("c", "Gemini launch day", 3)]
    before += [("b", "ChatGPT lost my chat", 2), ("b", "ChatGPT lost my chat", 2)]
    after = [("a", "Claude refused my request, then apologized and did it", 1), *before[1:]]
    after += [("d", "Switching to Grok", 0)]
    xml = {"Content-Type": "application/rss+xml"}
    server = ApiServer()
    server.thread.start()
    try:
        server.add(
            "/feed.xml",
            Reply(body=_feed(before), etag='"v1"', headers=xml),
            Reply(body=_feed(after), etag='"v2"', headers=xml),
        )
        config = SourceConfig(name="blog", kind="rss", base_url=f"{server.url}/feed.xml")
        for _ in range(3):
            _classify(settings, _run(settings, server, config))
        assert server.routes[0].hits == 3
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    texts, hashes, current = _stored(settings)
    final = {f"https://blog.example/{g}": t for g, t, _ in after}
    assert texts == final
    for ext in texts:
        assert current[ext] in hashes[ext], f"{ext} has no classification for its current text"
        assert len(hashes[ext]) == len(set(hashes[ext])), f"{ext} classified twice for one text"
    assert len(hashes["https://blog.example/a"]) == 2, "the edit was not classified again"
