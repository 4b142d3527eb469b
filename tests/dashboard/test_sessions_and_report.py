"""Sessions, CSRF and scopes of the dashboard, and the weekly report's pieces (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.dashboard.auth import SESSION_COOKIE
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.errors import NotFound
from core.keys import create_key, revoke_key
from core.settings import Settings
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.factories import make_post
from trends import charts
from trends.report import (
    _md,
    build_weekly_report,
    list_reports,
    previous_week,
    report_file,
    reports_root,
    write_report,
)
from trends.rollups import refresh_dirty

T0 = datetime(2026, 10, 20, 10, tzinfo=UTC)


@pytest.fixture
def client(settings, session):
    texts = ["Claude refused to continue my research", "ChatGPT deleted my whole project chat"]
    texts += [f"ordinary post {i} about Claude" for i in range(6)]
    posts = [
        make_post(external_id=f"d{i}", text=t, created_at=T0 + timedelta(hours=i))
        for i, t in enumerate(texts)
    ]
    posts.append(
        make_post(external_id="old", text="Claude refused me", created_at=T0 - timedelta(days=7))
    )
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    refresh_dirty(session=session)
    keys = {}
    for scope in ("read", "label"):
        _, keys[scope] = create_key(session=session, name=scope, scopes=[scope])
    session.commit()
    with TestClient(create_app(settings), follow_redirects=False) as c:
        c.keys = keys
        c.post_ids = res.inserted
        yield c


def login(c: TestClient, key: str) -> str:
    page = c.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/ui/login", data={"key": key, "csrf": token, "next": "/ui/posts"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/posts"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert key not in cookie and key.split("_", 2)[2] not in cookie
    return c.get("/ui/posts").text


def overview_count(c: TestClient, theme: str) -> int:
    html = c.get("/ui/?week=2026-W43").text
    return int(re.search(rf'data-theme="{theme}">.*?class="num count">(\d+)<', html, re.S).group(1))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_pages_need_a_session(client):
    r = client.get("/ui/posts?theme=refusal_complaint")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fposts%3Ftheme%3Drefusal_complaint"
    assert client.get("/").headers["location"] == "/ui/"


def test_sign_in_needs_its_own_token_and_a_valid_key(client):
    assert client.post("/ui/login", data={"key": client.keys["read"]}).status_code == 403
    page = client.get("/ui/login")
    token = csrf_of(page.text)
    bad = client.post("/ui/login", data={"key": "ut_wrongkey_" + "x" * 40, "csrf": token})
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.headers.get("set-cookie", "")
    # An open redirect through ?next= is not possible.
    r = client.post(
        "/ui/login", data={"key": client.keys["read"], "csrf": token, "next": "//evil.example/"}
    )
    assert r.headers["location"] == "/ui/"


def test_tampered_and_revoked_sessions_are_refused(client, session):
    login(client, client.keys["read"])
    assert client.get("/ui/posts").status_code == 200
    value = client.cookies[SESSION_COOKIE]
    key_id, expires, nonce, sig = value.split(".")
    for forged in (
        f"{int(key_id) + 1}.{expires}.{nonce}.{sig}",  # another key
        f"{key_id}.{int(expires) + 999999}.{nonce}.{sig}",  # a longer life
        f"{key_id}.{expires}.{nonce}.{'0' * 64}",
    ):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/ui/posts").status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value)
    assert client.get("/ui/posts").status_code == 200
    revoke_key(session=session, prefix=client.keys["read"].split("_")[1])
    session.commit()
    assert client.get("/ui/posts").status_code == 303


def test_sign_out_needs_the_token_and_ends_the_session(client):
    html = login(client, client.keys["read"])
    assert client.post("/ui/logout").status_code == 403
    r = client.post("/ui/logout", data={"csrf": csrf_of(html)})
    assert r.status_code == 303 and f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    assert client.get("/ui/posts").status_code == 303


def test_label_correction_needs_csrf_and_the_label_scope(client):
    html = login(client, client.keys["read"])
    pid = client.post_ids[0]
    r = client.post(f"/ui/posts/{pid}/labels", data={"csrf": csrf_of(html), "themes": []})
    assert r.status_code == 403 and "label" in r.text
    client.cookies.clear()
    html = login(client, client.keys["label"])
    assert client.post(f"/ui/posts/{pid}/labels", data={"themes": []}).status_code == 403
    assert client.post(f"/ui/posts/{pid}/labels", data={"csrf": "x" * 64}).status_code == 403
    before = client.get("/ui/posts?theme=refusal_complaint").text
    assert '<span id="post-count">2</span>' in before
    assert overview_count(client, "refusal_complaint") == 1
    r = client.post(f"/ui/posts/{pid}/labels", data={"csrf": csrf_of(html), "action": "correct"})
    assert r.status_code == 303
    after = client.get("/ui/posts?theme=refusal_complaint").text
    assert '<span id="post-count">1</span>' in after
    assert overview_count(client, "refusal_complaint") == 0
    # Accepting keeps the labels shown and marks them as a person's.
    other = client.post_ids[1]
    shown = client.get(f"/ui/posts/{other}").text
    assert '<span class="badge">model</span>' in shown
    r = client.post(f"/ui/posts/{other}/labels", data={"csrf": csrf_of(html), "action": "accept"})
    accepted = client.get(r.headers["location"]).text
    assert "Label saved" in accepted and '<span class="badge ok">human</span>' in accepted
    assert 'class="chip" href="/ui/themes/lost_work_claim"' in accepted


def test_bad_filters_say_what_is_wrong(client):
    login(client, client.keys["read"])
    r = client.get("/ui/posts?theme=nope")
    assert r.status_code == 422 and "unknown theme" in r.text
    assert client.get("/ui/posts?since=yesterday").status_code == 422
    assert client.get("/ui/themes/nope").status_code == 404
    assert client.get("/ui/reports/2026-W43/..%2F..%2Fundertow.db").status_code == 404


def test_weekly_report_files(settings, session, client, tmp_path):
    tax = load_taxonomy()
    report = build_weekly_report(session=session, settings=settings, taxonomy=tax, week="2026-W43")
    assert set(report.files) >= {
        "report.html",
        "email.html",
        "report.md",
        "posts.csv",
        "shares.png",
    }
    html = report.files["report.html"].decode()
    assert "<svg" in html and "<script" not in html
    assert "cid:shares.png" in report.files["email.html"].decode()
    assert "<svg" not in report.files["email.html"].decode()
    assert report.summary["total"] == 8 and report.summary["previous_total"] == 1
    png = report.files["shares.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (560 * 2, report_height(png))
    csv = report.files["posts.csv"].decode().splitlines()
    assert len(csv) == 1 + 8  # header and the week's posts
    path = write_report(report, reports_root(settings) / "2026-W43")
    listed = list_reports(root=reports_root(settings))
    assert [r["week"] for r in listed] == ["2026-W43"] and "posts.csv" in listed[0]["files"]
    assert (
        report_file(root=reports_root(settings), week="2026-W43", name="report.md")
        == path / "report.md"
    )
    for week, name in (
        ("2026-W43", "../../undertow.db"),
        ("..", "report.md"),
        ("2026-W44", "report.md"),
    ):
        with pytest.raises(NotFound):
            report_file(root=reports_root(settings), week=week, name=name)
    login(client, client.keys["read"])
    r = client.get("/ui/reports/2026-W43/report.html")
    assert r.status_code == 200 and "default-src 'none'" in r.headers["content-security-policy"]


def report_height(png: bytes) -> int:
    return struct.unpack(">I", png[20:24])[0]


def test_chart_text_is_escaped_and_markdown_cells_are_safe():
    svg = charts.hbars(items=[("<script>alert(1)</script>", 3, "#000000")]).svg()
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert _md("a | b\n<img src=x>") == "a \\| b &lt;img src=x&gt;"


def test_previous_week_is_read_in_the_configured_time_zone():
    # Monday 07:30 UTC is 08:30 in Berlin: the report covers the week that just ended.
    assert (
        previous_week(now=datetime(2026, 11, 30, 7, 30, tzinfo=UTC), timezone="Europe/Berlin")
        == "2026-W48"
    )
    # Sunday 23:30 UTC is already Monday in Tokyo.
    assert (
        previous_week(now=datetime(2026, 11, 29, 23, 30, tzinfo=UTC), timezone="Asia/Tokyo")
        == "2026-W48"
    )
    assert (
        previous_week(now=datetime(2026, 11, 29, 23, 30, tzinfo=UTC), timezone="UTC") == "2026-W47"
    )


def test_production_refuses_the_placeholder_session_secret():
    with pytest.raises(ValueError, match="session_secret"):
        Settings(env="production", author_key_secret="x" * 32)
    Settings(env="production", author_key_secret="x" * 32, session_secret="y" * 32)
