"""Release comparison, series with model-version changes, human overrides in incremental and rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from classify.review import correct_labels
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.db import hour_bucket, mark_dirty
from core.errors import InvalidInput
from core.models import Classification, Post
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.factories import make_post
from trends.compare import release_comparison
from trends.releases import add_release
from trends.rollups import rebuild_all, recompute_bucket, refresh_dirty, snapshot
from trends.series import series
from trends.weekly import weekly_summary

TAX = load_taxonomy()


def _load(session, specs):
    """specs: (external_id, text, created_at); upsert, classify with the rules, roll up."""
    posts = [make_post(external_id=e, text=t, created_at=c) for e, t, c in specs]
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    return res.inserted


def _window(prefix, product, anchor, before_refusals, before_n, after_refusals, after_n):
    """Posts about ``product``: some refusal complaints before and after ``anchor``."""
    name = {"claude": "Claude", "chatgpt": "ChatGPT"}[product]
    out = []
    for side, k, n in (("b", before_refusals, before_n), ("a", after_refusals, after_n)):
        for i in range(n):
            # Before: days T-1..T-7; after: days T+0..T+13.
            offset = -((i % 7) + 1) if side == "b" else i % 14
            when = anchor + timedelta(days=offset, hours=3)
            text = f"{name} refused to help me, post {i}" if i < k else f"{name} is fine today {i}"
            out.append((f"{prefix}{side}{i}", text, when))
    return out


def test_release_comparison_on_constructed_data(session):
    t_old = datetime(2026, 8, 1, tzinfo=UTC)
    t_new = datetime(2026, 10, 10, tzinfo=UTC)
    specs = _window("old", "chatgpt", t_old, 1, 10, 1, 10)
    specs += _window("new", "claude", t_new, 1, 10, 15, 20)
    # Outside every window: must not count.
    specs += [("far", "Claude refused again", datetime(2026, 9, 15, tzinfo=UTC))]
    _load(session, specs)
    old = add_release(
        session=session, taxonomy=TAX, product="chatgpt", day="2026-08-01", title="old"
    )
    new = add_release(
        session=session, taxonomy=TAX, product="claude", day="2026-10-10", title="new"
    )
    later = add_release(session=session, taxonomy=TAX, product="grok", day="2026-11-01", title="x")
    session.commit()

    out = release_comparison(session=session, taxonomy=TAX, release_id=new.id)
    assert out["total_before"] == 10 and out["total_after"] == 20
    assert [e["id"] for e in out["earlier_releases"]] == [old.id]
    assert out["earlier_total_before"] == 10 and out["earlier_total_after"] == 10
    refusal = next(t for t in out["themes"] if t["theme"] == "refusal_complaint")
    assert refusal["before"]["count"] == 1 and refusal["after"]["count"] == 15
    assert refusal["change_pp"] == pytest.approx(65.0)
    assert refusal["significant"] is True
    assert refusal["earlier_change_pp"] == pytest.approx(0.0)
    assert refusal["unusual"] is True  # 75% after vs 10% after earlier launches
    assert len(out["daily"]) == 21
    assert sum(d["total"] for d in out["daily"]) == 30
    assert out["daily"][7]["offset"] == 0 and out["daily"][7]["date"] == "2026-10-10"
    assert out["daily"][7]["counts"]["refusal_complaint"] == 2  # after-posts 0 and 14

    first = release_comparison(session=session, taxonomy=TAX, release_id=old.id)
    assert first["earlier_releases"] == []
    r = next(t for t in first["themes"] if t["theme"] == "refusal_complaint")
    assert r["earlier_change_pp"] is None and r["unusual"] is False
    assert (
        release_comparison(session=session, taxonomy=TAX, release_id=later.id)["total_after"] == 0
    )


def _new_version(session, post_ids, version):
    """Put a classification by ``version`` in force for these posts (same labels), marking their
    hours dirty as classify_posts does."""
    for pid in post_ids:
        post = session.get(Post, pid)
        old = session.get(Classification, post.classification_id)
        cls = Classification(
            post_id=pid,
            model_version=version,
            text_hash=post.text_hash,
            themes=old.themes,
            scores=old.scores,
            products=old.products,
        )
        session.add(cls)
        session.flush()
        post.classification_id = cls.id
        session.add(post)
        mark_dirty(session, {hour_bucket(post.created_at)})


def _assert_rebuild_keeps(session, kind):
    """A full rebuild gives the rows the incremental path wrote, ``kind`` rows among them."""
    incremental = snapshot(session=session)
    assert any(k[0] == kind for k in incremental)
    rebuild_all(session=session)
    session.commit()
    assert snapshot(session=session) == incremental


def test_series_marks_model_version_change(session):
    base = datetime(2026, 10, 5, tzinfo=UTC)
    ids = _load(
        session,
        [(f"s{i}", f"Claude refused me {i}", base + timedelta(days=i, hours=2)) for i in range(6)],
    )
    # A newer model re-scored the last three posts (new classification rows, in force).
    _new_version(session, ids[3:], "tfm-2")
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    out = series(
        session=session,
        taxonomy=TAX,
        themes=["refusal_complaint"],
        granularity="day",
        start=base,
        end=base + timedelta(days=6),
    )
    assert [p["total"] for p in out["points"]] == [1] * 6
    assert [v["version"] for v in out["model_versions"]][1] == "tfm-2"
    changed = [p["start"][:10] for p in out["points"] if "model_version_changed_to" in p]
    assert changed == ["2026-10-08"]
    week = series(
        session=session, taxonomy=TAX, granularity="week", start=base, end=base + timedelta(days=7)
    )
    assert week["points"][0]["start"].startswith("2026-10-05")  # a Monday
    assert week["points"][0]["themes"]["refusal_complaint"]["count"] == 6
    with pytest.raises(InvalidInput) as e:
        series(session=session, taxonomy=TAX, start=base, end=base - timedelta(days=1))
    assert e.value.extra["param"] == "from"


def test_rebuild_equals_incremental_with_human_overrides(session):
    base = datetime(2026, 10, 20, 9, tzinfo=UTC)
    texts = [
        "Claude refused to continue my research",
        "ChatGPT deleted my whole project chat",
        "Gemini benchmark results are out",
        "Claude won't help with my essay",
        "Grok lied to me about the sources",
    ]
    ids = _load(session, [(f"h{i}", t, base + timedelta(hours=i)) for i, t in enumerate(texts)])
    # Three corrections: drop a theme, add one, and change the products of a third post.
    for pid, themes, products in (
        (ids[0], [], None),
        (ids[2], ["safety_support"], None),
        (ids[3], ["refusal_complaint"], ["chatgpt"]),
    ):
        _, bucket = correct_labels(
            session=session,
            taxonomy=TAX,
            post_id=pid,
            themes=themes,
            products=products,
            author="tester",
        )
        recompute_bucket(session, bucket)
    # A second label on the same post: the newest wins.
    _, bucket = correct_labels(
        session=session,
        taxonomy=TAX,
        post_id=ids[2],
        themes=["manipulation_accusation"],
        products=None,
        author="tester",
    )
    recompute_bucket(session, bucket)
    session.commit()
    incremental = snapshot(session=session)
    assert session.execute(sa.text("SELECT count(*) FROM dirty_bucket")).scalar_one() > 0
    refresh_dirty(session=session)
    session.commit()
    assert snapshot(session=session) == incremental
    rebuild_all(session=session)
    session.commit()
    assert snapshot(session=session) == incremental

    week = weekly_summary(session=session, taxonomy=TAX, week="2026-W43", examples=5)
    counts = {t["theme"]: t["count"] for t in week["themes"]}
    assert counts["refusal_complaint"] == 1  # h0 dropped, h3 kept by the human
    assert counts["safety_support"] == 0 and counts["manipulation_accusation"] == 2
    claude = weekly_summary(session=session, taxonomy=TAX, week="2026-W43", product="claude")
    chatgpt = weekly_summary(session=session, taxonomy=TAX, week="2026-W43", product="chatgpt")
    assert {t["theme"]: t["count"] for t in claude["themes"]}["refusal_complaint"] == 0
    assert {t["theme"]: t["count"] for t in chatgpt["themes"]}["refusal_complaint"] == 1
    examples = {t["theme"]: t["examples"] for t in week["themes"]}
    assert ids[2] in [e["id"] for e in examples["manipulation_accusation"]]
    assert all(e["id"] != ids[0] for e in examples["refusal_complaint"])


def test_label_validation(session):
    ids = _load(session, [("v1", "Claude refused", datetime(2026, 10, 20, tzinfo=UTC))])
    with pytest.raises(InvalidInput) as e:
        correct_labels(
            session=session, taxonomy=TAX, post_id=ids[0], themes=["x"], products=None, author="t"
        )
    assert e.value.extra["param"] == "themes"
    with pytest.raises(InvalidInput) as e:
        correct_labels(
            session=session,
            taxonomy=TAX,
            post_id=ids[0],
            themes=[],
            products=["skynet"],
            author="t",
        )
    assert e.value.extra["param"] == "products"


def _rescore(session, scores_by_post: dict[int, float], theme: str = "refusal_complaint") -> None:
    """Give posts new model scores for ``theme`` and recompute their hours (as a re-score would)."""
    from core.db import hour_bucket, mark_dirty

    hours = set()
    for pid, score in scores_by_post.items():
        post = session.get(Post, pid)
        cls = session.get(Classification, post.classification_id)
        cls.scores = {**cls.scores, theme: score}
        session.add(cls)
        hours.add(hour_bucket(post.created_at))
    session.flush()
    mark_dirty(session, hours)
    refresh_dirty(session=session)
    session.commit()


def _examples(summary, theme="refusal_complaint"):
    return next(t["examples"] for t in summary["themes"] if t["theme"] == theme)


def test_weekly_examples_are_the_weeks_top_with_human_labels_first(session):
    monday = datetime(2026, 10, 19, tzinfo=UTC)  # 2026-W43
    specs = []
    for i in range(14):
        product = "ChatGPT" if i % 4 == 0 else "Claude"
        specs.append(
            make_post(
                external_id=f"x{i}",
                text=f"{product} refused to help me, post {i}",
                platform=("reddit", "bluesky", "mastodon")[i % 3],
                created_at=monday + timedelta(days=i % 7, hours=i, microseconds=i),
            )
        )
    # The week before and after: never examples of W43.
    specs.append(make_post(external_id="before", text="Claude refused", created_at=monday - timedelta(hours=1)))  # fmt: skip
    specs.append(make_post(external_id="after", text="Claude refused", created_at=monday + timedelta(days=7)))  # fmt: skip
    res = upsert_posts(session=session, posts=specs, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    ids = res.inserted
    # Distinct scores, not in time order: the examples are the best of the whole week.
    scores = {pid: round(0.5 + ((i * 5) % 14) / 30, 4) for i, pid in enumerate(ids[:14])}
    scores[ids[14]] = scores[ids[15]] = 0.999
    _rescore(session, scores)

    def expected(summary_product=None, k=3):
        week = [pid for pid in ids[:14] if summary_product is None or ids.index(pid) % 4 == 0]
        return sorted(week, key=lambda pid: scores[pid], reverse=True)[:k]

    week = weekly_summary(session=session, taxonomy=TAX, week="2026-W43")
    shown = _examples(week)
    assert [e["id"] for e in shown] == expected()
    assert [e["score"] for e in shown] == sorted((scores[p] for p in expected()), reverse=True)
    assert all(
        not e["human_label"] and e["excerpt"].endswith(str(ids.index(e["id"]))) for e in shown
    )
    all_ten = _examples(weekly_summary(session=session, taxonomy=TAX, week="2026-W43", examples=10))
    assert [e["id"] for e in all_ten] == expected(k=10)
    chatgpt = weekly_summary(session=session, taxonomy=TAX, week="2026-W43", product="chatgpt")
    assert [e["id"] for e in _examples(chatgpt)] == expected("chatgpt")
    bluesky = weekly_summary(session=session, taxonomy=TAX, week="2026-W43", platform="bluesky")
    assert {e["platform"] for e in _examples(bluesky)} == {"bluesky"}
    assert (
        weekly_summary(session=session, taxonomy=TAX, week="2026-W43", examples=0)["themes"][0][
            "examples"
        ]
        == []
    )

    # A human correction changes the examples at once: the reviewer's post ranks first, and a
    # post the reviewer took out of the theme is no longer shown.
    low, top = expected(k=14)[-1], expected()[0]
    for pid, themes in ((low, ["refusal_complaint"]), (top, ["safety_support"])):
        _, bucket = correct_labels(
            session=session, taxonomy=TAX, post_id=pid, themes=themes, products=None, author="t"
        )
        recompute_bucket(session, bucket)
    session.commit()
    shown = _examples(weekly_summary(session=session, taxonomy=TAX, week="2026-W43"))
    assert shown[0]["id"] == low and shown[0]["human_label"] is True
    assert top not in [e["id"] for e in shown]
    assert [e["id"] for e in shown[1:]] == [p for p in expected(k=4) if p != top][:2]
    safety = _examples(weekly_summary(session=session, taxonomy=TAX, week="2026-W43"), "safety_support")  # fmt: skip
    assert [e["id"] for e in safety] == [top]

    # The incremental path and a full rebuild keep the same examples.
    _assert_rebuild_keeps(session, "example")


def test_migration_0004_marks_existing_hours_for_their_examples(tmp_path):
    from core.migrate import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url=url, rev="0003")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO rollup (bucket, platform, product, theme, count) "
                "VALUES ('2026-10-20 09:00:00.000000', 'reddit', '*', '*', 3)"
            )
        )
    upgrade(url=url)
    with engine.connect() as conn:
        dirty = conn.execute(sa.text("SELECT bucket FROM dirty_bucket")).scalars().all()
        assert dirty == ["2026-10-20 09:00:00.000000"]
        assert conn.execute(sa.text("SELECT count(*) FROM rollup_example")).scalar_one() == 0
    downgrade(url=url, rev="0003")
    with engine.connect() as conn:
        assert "rollup_example" not in sa.inspect(conn).get_table_names()
    engine.dispose()


def _two_versions(session):
    """Posts over 4 days on two platforms; the newer half re-scored by "tfm-2"; one deleted."""
    base = datetime(2026, 10, 12, 9, 17, tzinfo=UTC)
    posts = [
        make_post(
            external_id=f"v{i}",
            platform=("reddit", "hackernews")[i % 2],
            text=f"Claude refused me {i}",
            created_at=base + timedelta(hours=7 * i, minutes=i),
        )
        for i in range(14)
    ]
    ids = upsert_posts(session=session, posts=posts, secret="k").inserted
    session.commit()
    classify_posts(session=session, post_ids=ids, classifier=RulesClassifier())
    session.commit()
    _new_version(session, ids[8:], "tfm-2")
    gone = make_post(external_id="v3", platform="hackernews", text="x", deleted=True)
    upsert_posts(session=session, posts=[gone], secret="k")
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    return base


def test_series_version_marks_from_rollups_equal_a_scan_of_the_posts(session):
    """model_versions reads the per-hour version rows kept with the rollups; it must say what a
    scan of every post says, for any hour-aligned range and platform, after incremental
    refreshes and after a rebuild."""
    from trends.series import model_versions, model_versions_scan

    base = _two_versions(session)
    start = base.replace(minute=0)
    ranges = [
        (start, start + timedelta(days=5)),
        (start + timedelta(hours=21), start + timedelta(hours=70)),
        (start + timedelta(hours=56), start + timedelta(days=4)),
    ]
    for a, b in ranges:
        for platform in (None, "reddit", "hackernews"):
            want = model_versions_scan(session=session, start=a, end=b, platform=platform)
            got = model_versions(session=session, start=a, end=b, platform=platform)
            assert got == want, (a, b, platform)
    everything = model_versions(
        session=session, start=start, end=start + timedelta(days=5), platform=None
    )
    assert [v["version"] for v in everything][1] == "tfm-2"
    assert sum(v["posts"] for v in everything) == 13  # the deleted post is not counted
    _assert_rebuild_keeps(session, "version")


def test_migration_0005_fills_the_version_rows_of_existing_posts(db_url):
    from sqlmodel import Session

    from core.db import make_engine
    from core.migrate import downgrade, upgrade

    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            _two_versions(session)
            kept = {k: v for k, v in snapshot(session=session).items() if k[0] == "version"}
        assert len(kept) >= 10
        engine.dispose()
        downgrade(url=db_url, rev="0004")
        upgrade(url=db_url)
        with Session(engine) as session:
            filled = {k: v for k, v in snapshot(session=session).items() if k[0] == "version"}
        assert filled == kept
    finally:
        engine.dispose()
        upgrade(url=db_url)
