"""The HTTP API: auth and scopes, weekly summary, posts with cursor pagination, problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.keys import create_key, revoke_key
from ingest.store import upsert_posts
from tests.factories import make_post
from trends.rollups import refresh_dirty


@pytest.fixture
def client(settings, session):
    texts = [
        "Claude refused to continue my research",
        "ChatGPT deleted my whole project chat",
        "<script>alert(1)</script> Gemini is fine",
    ] + [f"ordinary post {i} about Claude" for i in range(7)]
    posts = [
        make_post(
            external_id=f"p{i}",
            text=t,
            created_at=datetime(2026, 10, 20, 10, tzinfo=UTC) + timedelta(hours=i),
        )
        for i, t in enumerate(texts)
    ]
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    refresh_dirty(session=session)
    keys = {}
    for scope in ("read", "label", "export", "admin"):
        _, keys[scope] = create_key(session=session, name=scope, scopes=[scope])
    _, keys["revoked"] = create_key(session=session, name="gone", scopes=["admin"])
    session.commit()
    revoke_key(session=session, prefix=keys["revoked"].split("_")[1])
    session.commit()
    with TestClient(create_app(settings)) as c:
        c.keys = keys  # type: ignore[attr-defined]
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.parametrize("path", ["/v1/trends/weekly?week=2026-W43", "/v1/posts"])
def test_keys_are_required_and_checked(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers=auth("ut_nope_" + "x" * 40)).status_code == 401
    assert client.get(path, headers=auth(client.keys["revoked"])).status_code == 401
    r = client.get(path, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    for scope in ("read", "label", "export", "admin"):
        assert client.get(path, headers=auth(client.keys[scope])).status_code == 200


def test_weekly_summary_has_every_theme(client):
    r = client.get(
        "/v1/trends/weekly?week=2026-W43&product=claude", headers=auth(client.keys["read"])
    )
    body = r.json()
    assert r.status_code == 200
    assert body["week"] == "2026-W43" and body["total"] == 8
    themes = {t["theme"]: t for t in body["themes"]}
    assert len(themes) == 8
    assert themes["refusal_complaint"]["count"] == 1
    assert themes["refusal_complaint"]["share"] == 0.125
    assert "share_pp" in themes["refusal_complaint"]["change"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("week=2026-47", "week"),
        ("week=2026-W60", "week"),
        ("week=2026-W43&product=skynet", "product"),
    ],
)
def test_bad_weekly_input_is_422_naming_the_parameter(client, query, param):
    r = client.get(f"/v1/trends/weekly?{query}", headers=auth(client.keys["read"]))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert param in r.text


def test_posts_filter_and_paginate(client):
    h = auth(client.keys["read"])
    r = client.get("/v1/posts?theme=refusal_complaint", headers=h).json()
    assert [p["external_id"] for p in r["items"]] == ["p0"]
    assert r["items"][0]["themes"] == ["refusal_complaint"]
    assert "author_handle" not in r["items"][0] and r["items"][0]["author_key"]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/posts", params={"limit": 3, "cursor": cursor}, headers=h).json()
        seen += [p["external_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"p{i}" for i in range(9, -1, -1)]
    assert client.get("/v1/posts?cursor=garbage", headers=h).status_code == 422
    assert client.get("/v1/posts?theme=nope", headers=h).status_code == 422
    assert (
        client.get(
            "/v1/posts?since=2026-11-01T00:00:00Z&until=2026-10-01T00:00:00Z", headers=h
        ).status_code
        == 422
    )
    one = client.get(f"/v1/posts/{r['items'][0]['id']}", headers=h).json()
    assert one["thread"][0]["external_id"] == "p0"
    assert client.get("/v1/posts/999999", headers=h).status_code == 404
