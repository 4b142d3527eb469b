"""Every /v1 route: scopes (table-driven), validation, the new read endpoints, labels, limits."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import GRANTS, create_key
from tests.api.conftest import auth

SCOPES = ("read", "label", "export", "admin")
# (method, path template, scope it needs, JSON body). {post} and {release} are filled per test.
ROUTES = [
    ("GET", "/v1/trends/weekly?week=2026-W43", "read", None),
    ("GET", "/v1/trends/series?from=2026-10-12T00:00:00Z&to=2026-10-26T00:00:00Z", "read", None),
    ("GET", "/v1/trends/releases/{release}", "read", None),
    ("GET", "/v1/releases", "read", None),
    ("POST", "/v1/releases", "admin", {"product": "grok", "date": "2026-10-01", "title": "G"}),
    ("GET", "/v1/posts", "read", None),
    ("GET", "/v1/posts?include_handles=true", "admin", None),
    ("GET", "/v1/posts/{post}", "read", None),
    ("GET", "/v1/posts/{post}?include_handles=true", "admin", None),
    ("PUT", "/v1/posts/{post}/labels", "label", {"themes": ["safety_support"]}),
    ("GET", "/v1/posts/review-queue", "label", None),
    ("GET", "/v1/exports?format=csv", "export", None),
    ("GET", "/v1/exports?format=jsonl&include_handles=true", "admin", None),
    ("GET", "/v1/themes", "read", None),
    ("GET", "/v1/sources", "read", None),
]
# Routes other engineers own and test themselves.
OWNED_ELSEWHERE = ("/v1/alerts", "/v1/alert-rules")


def _call(api, method, path, body, key=None):
    path = path.format(post=api.post_ids[0], release=api.releases[1])
    headers = auth(key) if key else {}
    return api.request(method, path, json=body, headers=headers)


def test_the_table_covers_every_v1_route(api):
    mine = {
        p.split("?")[0].replace("{post}", "{post_id}").replace("{release}", "{release_id}")
        for _, p, _, _ in ROUTES
    }
    seen = set()
    for route in api.app.routes:
        # FastAPI includes routers lazily: their routes are inside, not in app.routes itself.
        inner = getattr(route, "effective_route_contexts", None)
        for r in inner() if inner else [route]:
            path = getattr(r, "path", "")
            seen.add(path)
            if path.startswith("/v1") and not path.startswith(OWNED_ELSEWHERE):
                assert path in mine, f"{path} has no scope test"
    assert mine <= seen


@pytest.mark.parametrize(("method", "path", "needs", "body"), ROUTES)
def test_scopes(api, method, path, needs, body):
    r = _call(api, method, path, body)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    for scope in SCOPES:
        r = _call(api, method, path, body, api.keys[scope])
        allowed = needs in GRANTS[scope]
        if allowed:
            assert r.status_code in (200, 201), (scope, r.text)
        else:
            assert r.status_code == 403, (scope, r.status_code, r.text)
            detail = r.json()["detail"]
            assert "lacks" in detail or "admin key" in detail


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("/v1/trends/series?themes=nope", "themes"),
        ("/v1/trends/series?granularity=minute", "granularity"),
        ("/v1/trends/series?from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z", "from"),
        (
            "/v1/trends/series?granularity=hour&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/v1/trends/series?product=skynet", "product"),
        ("/v1/trends/weekly?week=2026-W43&examples=99", "examples"),
        ("/v1/trends/weekly?week=9999-W52", "week"),
        ("/v1/trends/releases/0", "release_id"),
        ("/v1/exports?format=xlsx", "format"),
        ("/v1/exports?theme=nope", "theme"),
        ("/v1/exports?since=2026-11-01T00:00:00Z&until=2026-10-01T00:00:00Z", "since"),
        ("/v1/posts/99999999999", "post_id"),
    ],
)
def test_bad_input_is_a_422_naming_the_parameter(api, query, param):
    r = api.get(query, headers=auth(api.keys["admin"]))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert param in r.text


def test_missing_release_is_404(api):
    r = api.get("/v1/trends/releases/424242", headers=auth(api.keys["read"]))
    assert r.status_code == 404 and "424242" in r.json()["detail"]


def test_weekly_has_examples_and_coverage(api):
    body = api.get("/v1/trends/weekly?week=2026-W43", headers=auth(api.keys["read"])).json()
    themes = {t["theme"]: t for t in body["themes"]}
    refusal = themes["refusal_complaint"]
    assert refusal["count"] >= 3
    assert 1 <= len(refusal["examples"]) <= 3
    assert all("author_handle" not in e for e in refusal["examples"])
    assert refusal["examples"][0]["score"] >= refusal["examples"][-1]["score"]
    assert themes["hateful_framing"]["examples"] == []
    cov = body["coverage"]
    assert cov["gaps"] == ["reddit-search"] and not cov["complete"]
    by_name = {s["name"]: s for s in cov["sources"]}
    assert by_name["hn"]["healthy"] and by_name["hn"]["posts"] > 0
    assert "failed" in by_name["reddit-search"]["reason"]
    none = api.get("/v1/trends/weekly?week=2026-W43&examples=0", headers=auth(api.keys["read"]))
    assert all(t["examples"] == [] for t in none.json()["themes"])


def test_series_days_are_sums_of_hours(api):
    h = auth(api.keys["read"])
    q = "from=2026-10-20T00:00:00Z&to=2026-10-21T00:00:00Z&themes=refusal_complaint"
    hours = api.get(f"/v1/trends/series?granularity=hour&{q}", headers=h).json()
    days = api.get(f"/v1/trends/series?granularity=day&{q}", headers=h).json()
    assert len(hours["points"]) == 24 and len(days["points"]) == 1
    assert days["points"][0]["total"] == sum(p["total"] for p in hours["points"]) == 12
    assert days["points"][0]["themes"]["refusal_complaint"]["count"] == sum(
        p["themes"]["refusal_complaint"]["count"] for p in hours["points"]
    )
    weeks = api.get(
        "/v1/trends/series?granularity=week&from=2026-10-12T00:00:00Z&to=2026-10-26T00:00:00Z"
        "&themes=refusal_complaint,lost_work_claim",
        headers=h,
    ).json()
    assert [p["start"][:10] for p in weeks["points"]] == ["2026-10-12", "2026-10-19"]
    assert [p["total"] for p in weeks["points"]] == [1, 12]
    assert weeks["themes"] == ["refusal_complaint", "lost_work_claim"]
    assert [v["version"] for v in weeks["model_versions"]] == [
        weeks["model_versions"][0]["version"]
    ]
    # A time without an offset is read as UTC.
    naive = api.get(
        "/v1/trends/series?granularity=day&from=2026-10-20T00:00:00&to=2026-10-21T00:00:00",
        headers=h,
    )
    assert naive.status_code == 200 and naive.json()["points"][0]["total"] == 12


def test_release_routes(api):
    h = auth(api.keys["admin"])
    r = api.post(
        "/v1/releases", json={"product": "grok", "date": "2026-10-01", "title": "Grok 5"}, headers=h
    )
    assert r.status_code == 201 and r.json()["product"] == "grok"
    again = api.post(
        "/v1/releases", json={"product": "grok", "date": "2026-10-01", "title": "Grok 5"}, headers=h
    )
    assert again.json()["id"] == r.json()["id"]
    bad = api.post(
        "/v1/releases", json={"product": "skynet", "date": "2026-10-01", "title": "x"}, headers=h
    )
    assert bad.status_code == 422 and "product" in bad.text
    items = api.get("/v1/releases", headers=h).json()["items"]
    assert [i["title"] for i in items] == ["A", "Grok 5", "B"]
    cmp = api.get(f"/v1/trends/releases/{api.releases[1]}", headers=h).json()
    assert cmp["release"]["title"] == "B"
    assert [e["title"] for e in cmp["earlier_releases"]] == ["A", "Grok 5"]
    assert len(cmp["daily"]) == 21 and cmp["daily"][7]["offset"] == 0


def test_label_correction_updates_counts_at_once(api):
    h = auth(api.keys["label"])
    week = "/v1/trends/weekly?week=2026-W43"
    before = {t["theme"]: t["count"] for t in api.get(week, headers=h).json()["themes"]}
    posts = api.get("/v1/posts?theme=refusal_complaint", headers=h).json()["items"]
    target = posts[0]["id"]
    r = api.put(
        f"/v1/posts/{target}/labels",
        json={"themes": ["safety_support"], "note": "reviewed"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["post"]["themes"] == ["safety_support"] and r.json()["post"]["human_label"]
    assert r.json()["label"]["author"].startswith("key:")
    after = {t["theme"]: t["count"] for t in api.get(week, headers=h).json()["themes"]}
    assert after["refusal_complaint"] == before["refusal_complaint"] - 1
    assert after["safety_support"] == before["safety_support"] + 1
    ids = [p["id"] for p in api.get("/v1/posts?theme=refusal_complaint", headers=h).json()["items"]]
    assert target not in ids
    bad = api.put(f"/v1/posts/{target}/labels", json={"themes": ["nope"]}, headers=h)
    assert bad.status_code == 422 and "themes" in bad.text
    assert api.put("/v1/posts/999999/labels", json={"themes": []}, headers=h).status_code == 404


def _export(api, fmt, **params):
    r = api.get("/v1/exports", params={"format": fmt, **params}, headers=auth(api.keys["export"]))
    assert r.status_code == 200, r.text
    return r


def test_export_neutralizes_csv_and_escapes_jsonl(api):
    r = _export(api, "csv")
    assert r.headers["content-type"].startswith("text/csv")
    disp = r.headers["content-disposition"]
    assert disp.startswith('attachment; filename="undertow-posts-') and disp.endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 13
    by_ext = {row["external_id"]: row for row in rows}
    assert by_ext["p2"]["text"].startswith("'=HYPERLINK(")
    assert by_ext["p4"]["text"].startswith("'+1 Claude")
    assert by_ext["p5"]["text"].startswith("'@claude")
    assert by_ext["p3"]["text"] == "<script>alert(1)</script> Gemini is fine"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    assert "author_handle" not in rows[0] and rows[0]["author_key"]
    assert by_ext["p0"]["source"] == "reddit-search" and by_ext["p0"]["query"] == "Claude"
    assert json.loads(by_ext["p0"]["themes"]) == ["refusal_complaint"]

    r = _export(api, "jsonl")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "<script>" not in r.text and "\\u003cscript\\u003e" in r.text
    lines = [json.loads(line) for line in r.text.splitlines()]
    by_ext = {row["external_id"]: row for row in lines}
    assert by_ext["p3"]["text"] == "<script>alert(1)</script> Gemini is fine"
    assert by_ext["p2"]["text"].startswith('=HYPERLINK("http://evil.example/x"')
    assert by_ext["p0"]["scores"]["refusal_complaint"] > 0.5
    assert by_ext["p0"]["model_version"] and by_ext["p0"]["human_label"] is False


def test_export_filters_formats_and_handles(api):
    r = _export(api, "parquet", theme="refusal_complaint")
    table = pq.read_table(pa.BufferReader(r.content))
    assert table.num_rows == 5
    assert set(table.column("external_id").to_pylist()) == {"p0", "p2", "p4", "p5", "old"}
    assert table.schema.field("scores").type == pa.map_(pa.string(), pa.float64())
    assert "author_handle" not in table.schema.names
    admin = api.get(
        "/v1/exports?format=jsonl&include_handles=true", headers=auth(api.keys["admin"])
    ).text
    assert all(json.loads(line)["author_handle"].startswith("user") for line in admin.splitlines())
    only = _export(api, "jsonl", platform="reddit", since="2026-10-20T11:00:00Z").text
    assert {json.loads(line)["external_id"] for line in only.splitlines()} == {
        "p1",
        "p3",
        "p5",
        "p7",
        "p9",
        "p11",
    }


def test_human_override_shows_in_exports(api):
    pid = api.post_ids[0]
    api.put(f"/v1/posts/{pid}/labels", json={"themes": []}, headers=auth(api.keys["admin"]))
    rows = {
        json.loads(line)["id"]: json.loads(line) for line in _export(api, "jsonl").text.splitlines()
    }
    assert rows[pid]["themes"] == [] and rows[pid]["human_label"] is True
    assert rows[pid]["model_themes"] == ["refusal_complaint"]


def test_themes_and_sources(api):
    h = auth(api.keys["read"])
    themes = api.get("/v1/themes", headers=h).json()
    assert len(themes["themes"]) == 8 and "claude" in themes["products"]
    sources = {s["name"]: s for s in api.get("/v1/sources", headers=h).json()["items"]}
    assert sources["hn"]["healthy"] and not sources["reddit-search"]["healthy"]
    assert "config" not in sources["hn"]


def test_rate_limit_per_key_with_retry_after(settings, session):
    _, key = create_key(session=session, name="busy", scopes=["read"])
    _, other = create_key(session=session, name="calm", scopes=["read"])
    session.commit()
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 3}))
    with TestClient(app) as c:
        codes = [c.get("/v1/themes", headers=auth(key)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/themes", headers=auth(key))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"].startswith("application/problem+json")
        assert c.get("/v1/themes", headers=auth(other)).status_code == 200
        text = c.get("/metrics").text
        assert (
            'undertow_http_requests_total{method="GET",route="/v1/themes",status="429"} 2' in text
        )
        assert "undertow_rate_limited_total 2" in text


def test_key_last_used_is_recorded(api, session):
    from sqlmodel import select

    from core.models import ApiKey

    api.get("/v1/themes", headers=auth(api.keys["read"]))
    session.expire_all()
    row = session.exec(select(ApiKey).where(ApiKey.name == "read")).one()
    assert row.last_used_at is not None


def test_metrics(api):
    api.get("/v1/themes", headers=auth(api.keys["read"]))
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "undertow_posts 13" in r.text
    assert 'route="/v1/themes",status="200"} 1' in r.text
    assert (
        'undertow_http_request_duration_seconds_bucket{method="GET",route="/v1/themes",le="+Inf"} 1'
        in r.text
    )


def test_redis_rate_limit_is_shared_between_app_instances(settings, session):
    import uuid

    import redis

    from api.ratelimit import RedisWindow

    url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(url).ping()
    _, key = create_key(session=session, name=f"shared-{uuid.uuid4().hex[:6]}", scopes=["read"])
    session.commit()
    shared = settings.model_copy(update={"rate_limit_per_minute": 4, "redis_url": url})
    one, two = create_app(shared), create_app(shared)
    assert isinstance(one.state.limiter, RedisWindow)
    with TestClient(one) as a, TestClient(two) as b:
        codes = [c.get("/v1/themes", headers=auth(key)).status_code for c in (a, b, a, b, a, b)]
        if codes.count(429) != 2:  # the minute window rolled over mid-test: once more
            codes = [c.get("/v1/themes", headers=auth(key)).status_code for c in (a, b, a, b, a, b)]
        assert codes[:4] == [200] * 4 and codes[4:] == [429, 429]
        r = b.get("/v1/themes", headers=auth(key))
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60


def test_exports_beyond_the_concurrent_limit_get_503_with_retry_after(api):
    """A held slot per allowed export: the next one is refused cleanly, then served again."""
    slots = api.app.state.export_slots
    held = [slots.guard(iter([b"x"])) for _ in range(slots.n)]
    r = api.get("/v1/exports?format=csv", headers=auth(api.keys["export"]))
    assert r.status_code == 503 and r.headers["Retry-After"] == "10"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "exports are already running" in r.json()["detail"]
    # A stream gives its slot back when it ends, and when it is dropped without being read.
    assert list(held.pop()) == [b"x"]
    held.clear()
    for fmt in ("csv", "jsonl"):
        ok = api.get(f"/v1/exports?format={fmt}", headers=auth(api.keys["export"]))
        assert ok.status_code == 200 and ok.content
    assert all(slots.guard(iter([])) is not None for _ in range(slots.n))
