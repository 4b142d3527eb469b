"""The review queue: unreviewed posts of the current model, least sure first."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient

from api.app import create_app
from classify.loader import current_version, get_classifier, scoring_basis
from classify.rules import RulesClassifier
from classify.store import classify_posts
from ingest.store import upsert_posts
from tests.api.conftest import auth
from tests.factories import make_post

QUEUE = "/v1/posts/review-queue"


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def test_queue_ranks_unreviewed_posts_by_distance_to_a_threshold(api, session, settings):
    # The trained heads, not the rules the other API tests run on: their scores have thresholds.
    settings = settings.model_copy(update={"classifier": "transformers"})
    classify_posts(session=session, post_ids=api.post_ids, classifier=get_classifier(settings))
    # A post only the rules have classified is not the current model's: it is not queued.
    stale = upsert_posts(
        session=session,
        posts=[make_post(external_id="rules-only", text="Claude refused")],
        secret="k",
    ).inserted
    classify_posts(session=session, post_ids=stale, classifier=RulesClassifier())
    session.commit()
    thresholds = scoring_basis(settings)[1]
    h = auth(api.keys["label"])
    post_ids = api.post_ids
    api = TestClient(create_app(settings))

    r = api.get(QUEUE, params={"limit": 200}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == current_version(settings)
    items = body["items"]
    assert {i["id"] for i in items} == set(post_ids)  # stale[0] is left out
    margins = [i["review"]["margin"] for i in items]
    assert margins == sorted(margins)
    for item in items:
        # The margin is the post's closest theme, measured in log-odds from its threshold.
        per_theme = {t: abs(_logit(item["scores"][t]) - _logit(thresholds[t])) for t in thresholds}
        closest = min(per_theme, key=lambda t: per_theme[t])
        assert item["review"]["theme"] == closest
        assert math.isclose(item["review"]["margin"], per_theme[closest], abs_tol=1e-3)
        assert item["review"]["threshold"] == round(thresholds[closest], 4)
        assert not item["human_label"]

    # One theme: every post is ranked on that theme, whether it carries it or not.
    r = api.get(QUEUE, params={"theme": "refusal_complaint", "limit": 3}, headers=h)
    picked = r.json()["items"]
    assert len(picked) == 3 and {i["review"]["theme"] for i in picked} == {"refusal_complaint"}
    by_refusal = sorted(
        items,
        key=lambda i: abs(
            _logit(i["scores"]["refusal_complaint"]) - _logit(thresholds["refusal_complaint"])
        ),
    )
    assert [i["id"] for i in picked] == [i["id"] for i in by_refusal[:3]]

    # A reviewed post leaves the queue.
    first = items[0]["id"]
    assert api.put(f"/v1/posts/{first}/labels", json={"themes": []}, headers=h).status_code == 200
    left = api.get(QUEUE, params={"limit": 200}, headers=h).json()["items"]
    assert first not in {i["id"] for i in left} and len(left) == len(items) - 1


def test_queue_validates_its_input(api):
    h = auth(api.keys["label"])
    for params in ({"theme": "nope"}, {"limit": 0}, {"limit": 201}, {"platform": "x y"}):
        r = api.get(QUEUE, params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
    assert api.get(QUEUE, headers=auth(api.keys["read"])).status_code == 403


def test_queue_without_readable_heads_is_503(api, settings, monkeypatch, tmp_path):
    import classify.artifacts

    monkeypatch.setattr(classify.artifacts, "DEFAULT_ARTIFACT", tmp_path / "missing.npz")
    settings = settings.model_copy(update={"classifier": "transformers"})
    client = TestClient(create_app(settings))
    r = client.get(QUEUE, headers=auth(api.keys["label"]))
    assert r.status_code == 503, r.text
    assert "heads cannot be read" in r.json()["detail"]
