"""Posts in, upserted, classified, rolled up and summarized, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import select

from classify.rules import RulesClassifier
from classify.store import classify_posts, mark_requested, pending_post_ids
from core.models import Classification, Post, Quarantine
from core.taxonomy import load_taxonomy
from ingest.base import Quarantined
from ingest.store import author_key, quarantine, upsert_posts
from tests.factories import make_post
from trends.rollups import rebuild_all, refresh_dirty, snapshot
from trends.weekly import weekly_summary, wilson

SECRET = "s3cret"


def test_upsert_is_idempotent_and_updates_edits(session):
    posts = [make_post(external_id="a"), make_post(external_id="b", text="second")]
    first = upsert_posts(session=session, posts=posts, secret=SECRET)
    session.commit()
    assert len(first.inserted) == 2
    again = upsert_posts(session=session, posts=posts, secret=SECRET)
    session.commit()
    assert again.inserted == [] and again.changed == [] and again.unchanged == 2
    edited = upsert_posts(
        session=session, posts=[make_post(external_id="b", text="second, edited")], secret=SECRET
    )
    session.commit()
    assert len(edited.changed) == 1
    assert session.exec(select(sa.func.count()).select_from(Post)).one() == 2
    b = session.exec(select(Post).where(Post.external_id == "b")).one()
    assert b.text == "second, edited"
    assert b.author_key == author_key(platform="reddit", handle=b.author_handle, secret=SECRET)
    assert b.author_key != author_key(platform="reddit", handle=b.author_handle, secret="other")


def test_duplicates_within_a_page_keep_the_last(session):
    res = upsert_posts(
        session=session,
        posts=[make_post(external_id="x", text="old"), make_post(external_id="x", text="new")],
        secret=SECRET,
    )
    session.commit()
    assert len(res.inserted) == 1
    assert session.exec(select(Post.text)).one() == "new"


def test_a_stored_post_without_labels_is_handed_on_again_when_read_again(session):
    """A run that stored posts and failed before handing them on (a commit whose reply was lost
    in a database restart) must not leave them unlabelled when the retry reads them again."""
    posts = [make_post(external_id="u1", text="Claude refused again"), make_post(external_id="u2")]
    first = upsert_posts(session=session, posts=posts, secret=SECRET)
    session.commit()
    # Only the first was classified before the failure.
    classify_posts(session=session, post_ids=first.inserted[:1], classifier=RulesClassifier())
    session.commit()
    again = upsert_posts(session=session, posts=posts, secret=SECRET)
    session.commit()
    assert again.unchanged == 2 and again.inserted == [] and again.changed == []
    assert again.to_classify == [first.inserted[1]]
    # Once handed on it is left to the queue (and the sweep): a backlog is not enqueued again.
    mark_requested(session=session, post_ids=again.to_classify)
    session.commit()
    assert upsert_posts(session=session, posts=posts, secret=SECRET).to_classify == []
    # A deleted post is not handed on, labelled or not.
    gone = make_post(external_id="u2", text=posts[1].text, deleted=True)
    deleted = upsert_posts(session=session, posts=[gone], secret=SECRET)
    session.commit()
    assert deleted.to_classify == []
    assert upsert_posts(session=session, posts=[gone], secret=SECRET).to_classify == []


def test_quarantine_keeps_raw_and_reason(session):
    quarantine(session=session, items=[Quarantined(source="t", reason="no id", payload='{"x":1}')])
    session.commit()
    q = session.exec(select(Quarantine)).one()
    assert (q.reason, q.payload) == ("no id", '{"x":1}')


def test_classification_is_once_per_post_model_and_text(session):
    res = upsert_posts(
        session=session,
        posts=[
            make_post(external_id="r1", text="Claude refused to help with my thesis again"),
            make_post(external_id="r2", text="Nice weather for a walk"),
        ],
        secret=SECRET,
    )
    session.commit()
    clf = RulesClassifier()
    out = classify_posts(session=session, post_ids=res.inserted, classifier=clf)
    session.commit()
    assert out["classified"] == 2
    again = classify_posts(session=session, post_ids=res.inserted, classifier=clf)
    session.commit()
    assert again["classified"] == 0
    rows = session.exec(select(Classification)).all()
    assert len(rows) == 2
    by_post = {r.post_id: r for r in rows}
    p1 = session.exec(select(Post).where(Post.external_id == "r1")).one()
    assert by_post[p1.id].themes == ["refusal_complaint"]
    assert by_post[p1.id].products == ["claude"]
    assert p1.classification_id == by_post[p1.id].id
    assert pending_post_ids(session=session, model_version=clf.version, stale_after_s=0) == []
    # An edit asks for a new classification; the old one stays in force until it is written.
    upsert_posts(
        session=session,
        posts=[make_post(external_id="r1", text="Claude helped after all, thanks")],
        secret=SECRET,
    )
    session.commit()
    assert pending_post_ids(session=session, model_version=clf.version, stale_after_s=0) == [p1.id]
    session.refresh(p1)
    assert p1.classification_id == by_post[p1.id].id


def test_incremental_rollups_equal_a_rebuild_and_feed_the_weekly_summary(session):
    texts = [
        "Claude refused to continue my research, so annoying",
        "ChatGPT deleted four hours of research from my project chat",
        "Claude won't help with my essay, it refused twice",
        "Just a nice day",
        "Gemini benchmark results are out",
    ]
    posts = [
        make_post(
            external_id=f"w{i}",
            text=t,
            platform="reddit" if i % 2 else "bluesky",
            created_at=datetime(2026, 10, 20 + (i % 3), 9 + i, 0, tzinfo=UTC),
        )
        for i, t in enumerate(texts)
    ]
    prev = make_post(
        external_id="prev",
        text="Claude refused me",
        created_at=datetime(2026, 10, 13, 9, tzinfo=UTC),
    )
    res = upsert_posts(session=session, posts=[*posts, prev], secret=SECRET)
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    incremental = snapshot(session=session)
    rebuild_all(session=session)
    session.commit()
    assert snapshot(session=session) == incremental
    assert incremental
    summary = weekly_summary(session=session, taxonomy=load_taxonomy(), week="2026-W43")
    assert summary["total"] == 5
    by_theme = {t["theme"]: t for t in summary["themes"]}
    assert set(by_theme) == set(load_taxonomy().theme_keys)
    assert by_theme["refusal_complaint"]["count"] == 2
    assert by_theme["refusal_complaint"]["share"] == 0.4
    assert by_theme["refusal_complaint"]["change"]["previous_count"] == 1
    assert by_theme["lost_work_claim"]["count"] == 1
    claude = weekly_summary(
        session=session, taxonomy=load_taxonomy(), week="2026-W43", product="claude"
    )
    assert claude["total"] == 2
    assert {t["theme"]: t["count"] for t in claude["themes"]}["lost_work_claim"] == 0


def test_wilson_interval():
    lo, hi = wilson(12, 400)
    assert lo < 12 / 400 < hi
    assert wilson(0, 0) == (0.0, 0.0)
    assert round(wilson(50, 100)[0], 3) == 0.404
