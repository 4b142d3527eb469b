"""The shipped demo corpus under the default rules: the Claude Meridian complaint rise pages,
the quiet weeks do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from classify.rules import RulesClassifier
from classify.store import classify_posts
from cli.ingest import replay_file
from core.models import Alert, AlertRule, Post
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.factories import make_post
from trends.alerts import DEFAULT_THEMES, RulePatch, detect, ensure_default_rules, update_rule
from trends.rollups import refresh_dirty
from trends.spikes import Detector

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "posts.jsonl"
END = datetime(2026, 11, 23, tzinfo=UTC)  # the Monday after the corpus


def _load_demo(session) -> None:
    assert replay_file(DEMO, name="demo", enqueue=False)["inserted"] > 1500
    ids = [int(i) for i in session.exec(select(Post.id))]
    classify_posts(session=session, post_ids=ids, classifier=RulesClassifier())
    session.commit()
    refresh_dirty(session=session)
    session.commit()


def _iso_week(ts: datetime) -> str:
    year, week, _ = ts.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def test_demo_corpus_pages_the_w43_complaint_rise_and_not_the_quiet_weeks(
    settings, session, monkeypatch
):
    _load_demo(session)
    made = ensure_default_rules(session=session, taxonomy=load_taxonomy(), settings=settings)
    session.commit()
    assert {r.theme for r in made} == set(DEFAULT_THEMES)

    # Detection now, after the corpus: the rules never watched this history, so it is
    # backfilled (stored with the time each alert would have opened, never delivered).
    now = max(datetime.now(UTC), END)
    out = detect(session=session, settings=settings, now=now)
    session.commit()
    assert out["opened"] == []  # nothing is happening now
    rules = {r.id: r for r in session.exec(select(AlertRule))}
    alerts = list(session.exec(select(Alert).order_by(Alert.window_end)))
    assert sorted(out["backfilled"]) == sorted(a.id for a in alerts)
    weeks = [
        (_iso_week(a.window_end - timedelta(seconds=1)), rules[a.rule_id].theme) for a in alerts
    ]
    complaints_w43 = [t for w, t in weeks if w == "2026-W43" and t in DEFAULT_THEMES]
    assert complaints_w43, weeks
    assert not [w for w, _ in weeks if w in ("2026-W40", "2026-W41")], weeks
    first = next(a for a in alerts if _iso_week(a.window_end - timedelta(seconds=1)) == "2026-W43")
    # The release was on Tuesday 2026-10-20: the alert is about the rise, not before it.
    assert first.window_end >= datetime(2026, 10, 20, tzinfo=UTC)
    assert first.observed >= 2 * first.expected and first.observed >= 5
    assert first.details["examples"] and first.details["backfill"]["delivered"] is False
    assert all(a.opened_at == a.window_end for a in alerts)

    # Running detection again adds nothing (idempotent), and nothing is handed to a channel;
    # each rule's history was backtested once: the second pass runs the live detector only.
    runs: list[int] = []
    real_run = Detector.run

    def counted_run(self, *args, **kwargs):
        runs.append(1)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Detector, "run", counted_run)
    again = detect(session=session, settings=settings, now=now + timedelta(minutes=15))
    session.commit()
    assert again["backfilled"] == [] and again["opened"] == []
    assert len(list(session.exec(select(Alert)))) == len(alerts)
    assert len(runs) == len(rules), runs
    assert all(r.backfill_digest for r in session.exec(select(AlertRule)))
    # A rule moved to another series has that history backtested again.
    rule = next(iter(rules.values()))
    update_rule(
        session=session,
        rule_id=int(rule.id or 0),
        patch=RulePatch(budget=rule.budget * 2),
        taxonomy=load_taxonomy(),
        settings=settings,
    )
    session.commit()
    runs.clear()
    detect(session=session, settings=settings, now=now + timedelta(minutes=30))
    session.commit()
    assert len(runs) == len(rules) + 1, runs
    # Posts arriving late for an old hour change that history: it is backtested again.
    late = [
        make_post(
            external_id=f"late{i}",
            text="Claude refused to help me again, the new model refuses everything",
            created_at=datetime(2026, 10, 14, 15, 10 + i, tzinfo=UTC),
        )
        for i in range(3)
    ]
    ids = upsert_posts(session=session, posts=late, secret="k").inserted
    classify_posts(session=session, post_ids=ids, classifier=RulesClassifier())
    session.commit()
    refresh_dirty(session=session)
    session.commit()
    runs.clear()
    detect(session=session, settings=settings, now=now + timedelta(minutes=45))
    session.commit()
    assert len(runs) > len(rules), runs
