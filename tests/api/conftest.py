"""A populated app for the API tests: posts over two weeks, releases, a source, keys per scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.keys import create_key
from core.models import Source
from ingest.store import upsert_posts
from tests.factories import make_post
from trends.releases import add_release
from trends.rollups import refresh_dirty

T0 = datetime(2026, 10, 20, 10, tzinfo=UTC)  # Tuesday of 2026-W43


def seed(session) -> dict:
    """Posts in 2026-W42 and W43 (two platforms), two releases, one healthy and one failing source."""
    texts = [
        "Claude refused to continue my research",
        "ChatGPT deleted my whole project chat, hours of research gone",
        '=HYPERLINK("http://evil.example/x","click") Claude refused again',
        "<script>alert(1)</script> Gemini is fine",
        "+1 Claude won't help with my essay",
        "@claude why did you refuse",
    ] + [f"ordinary post {i} about Claude" for i in range(6)]
    posts = [
        make_post(
            external_id=f"p{i}",
            text=t,
            platform="reddit" if i % 2 else "bluesky",
            created_at=T0 + timedelta(hours=i),
            source="hn" if i % 3 else "reddit-search",
            query="Claude",
        )
        for i, t in enumerate(texts)
    ]
    posts.append(
        make_post(external_id="old", text="Claude refused me", created_at=T0 - timedelta(days=7))
    )
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    refresh_dirty(session=session)
    from core.taxonomy import load_taxonomy

    tax = load_taxonomy()
    r1 = add_release(session=session, taxonomy=tax, product="chatgpt", day="2026-09-01", title="A")
    r2 = add_release(session=session, taxonomy=tax, product="claude", day="2026-10-19", title="B")
    session.add(
        Source(
            name="hn",
            kind="hackernews",
            config={"queries": ["Claude"]},
            last_success_at=T0,
            last_run_at=T0,
        )
    )
    session.add(
        Source(
            name="reddit-search",
            kind="reddit",
            config={"queries": ["Claude"]},
            last_success_at=T0 - timedelta(days=10),
            last_error_at=T0 + timedelta(days=1),
            last_error="HTTPError: 503",
            consecutive_failures=3,
        )
    )
    keys = {}
    for scope in ("read", "label", "export", "admin"):
        _, keys[scope] = create_key(session=session, name=scope, scopes=[scope])
    session.commit()
    return {"keys": keys, "post_ids": res.inserted, "releases": [r1.id, r2.id]}


@pytest.fixture
def api(settings, session):
    """A TestClient with ``keys`` (one per scope), ``post_ids`` and ``releases``."""
    data = seed(session)
    with TestClient(create_app(settings)) as c:
        c.keys = data["keys"]  # type: ignore[attr-defined]
        c.post_ids = data["post_ids"]  # type: ignore[attr-defined]
        c.releases = data["releases"]  # type: ignore[attr-defined]
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
