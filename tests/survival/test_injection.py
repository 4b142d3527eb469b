"""Hostile input in every filter, export names, post text and CSV cells (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from core.models import Post
from tests.survival.hostile import HOSTILE, bearer, make_client

pytestmark = pytest.mark.survival

# Every filter of the read routes, with the other parameters a request needs.
API_FILTERS = {
    "/v1/posts": ["theme", "product", "platform", "since", "until", "cursor"],
    "/v1/exports?format=csv": ["theme", "product", "platform", "since", "until"],
    "/v1/trends/weekly?week=2026-W43": ["product", "platform"],
    "/v1/trends/weekly": ["week"],
    "/v1/trends/series": ["themes", "product", "platform", "granularity", "from", "to"],
    "/v1/alerts": ["status", "rule", "theme", "since", "cursor"],
}
UI_FILTERS = {
    "/ui/posts": ["theme", "product", "platform", "since", "until", "q", "cursor"],
    "/ui/": ["week", "product", "platform"],
    "/ui/themes/refusal_complaint": ["week", "product", "platform"],
    "/ui/exports/download": ["format", "theme", "product", "platform", "since", "until"],
}


@pytest.fixture
def client(settings, session) -> Iterator:
    with make_client(settings, session) as c:
        yield c


def _snapshot(session) -> dict[str, int]:
    session.expire_all()
    return {
        t.name: session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        for t in SQLModel.metadata.sorted_tables
    }


def _url(base: str, param: str, value: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{param}={quote(value, safe='')}"


def _items(r) -> list:
    ctype = r.headers["content-type"]
    if ctype.startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(r.text)))
    body = r.json()
    return body.get("items", [])


def test_sql_metacharacters_in_every_api_filter(client, session):
    before = _snapshot(session)
    h = bearer(client.keys["admin"])
    statuses: set[int] = set()
    for base, params in API_FILTERS.items():
        for param in params:
            for value in HOSTILE:
                r = client.get(_url(base, param, value), headers=h)
                statuses.add(r.status_code)
                assert r.status_code < 500, (base, param, repr(value), r.text[:300])
                if r.status_code == 200:
                    # No stored post has a theme, product or platform like these.
                    if param in ("theme", "product", "platform", "themes"):
                        assert _items(r) == [], (base, param, repr(value))
                else:
                    assert r.status_code in (400, 404, 422), (base, param, repr(value))
                    assert r.headers["content-type"].startswith("application/problem+json")
    assert 422 in statuses
    # The database is intact: no table lost or changed, and every post still readable.
    assert _snapshot(session) == before
    r = client.get("/v1/posts?limit=500", headers=h)
    assert len(r.json()["items"]) == before["post"]


def test_sql_metacharacters_in_every_dashboard_filter(client, session):
    before = _snapshot(session)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/ui/login", data={"key": client.keys["admin"], "csrf": token})
    texts = {p.id: p.text for p in session.execute(sa.select(Post)).scalars()}
    for base, params in UI_FILTERS.items():
        for param in params:
            for value in HOSTILE:
                r = client.get(_url(base, param, value))
                assert r.status_code < 500, (base, param, repr(value), r.text[:300])
                if base == "/ui/posts" and param == "q" and r.status_code == 200:
                    # The text search is literal: % and _ are not wildcards, quotes are text.
                    shown = {int(i) for i in re.findall(r'href="/ui/posts/(\d+)"', r.text)}
                    want = {i for i, t in texts.items() if value.lower() in t.lower()}
                    assert shown == want, (repr(value), shown, want)
    assert _snapshot(session) == before


def test_export_names_cannot_traverse_or_inject_headers(client):
    h = bearer(client.keys["export"])
    for platform in ("a", "x.y", "a-b"):
        r = client.get(f"/v1/exports?format=csv&platform={platform}", headers=h)
        assert r.status_code == 200
        disp = r.headers["content-disposition"]
        name = re.fullmatch(r'attachment; filename="([A-Za-z0-9_.-]+)"', disp).group(1)
        assert "/" not in name and "\\" not in name and ".." not in name
        assert name.endswith(".csv")
    for evil in ("../../etc/passwd", 'a"; filename="x.sh', "a\r\nSet-Cookie: x=1", "a/b"):
        r = client.get(_url("/v1/exports?format=csv", "platform", evil), headers=h)
        assert r.status_code == 422 and "set-cookie" not in r.headers
    # The dashboard's download takes the same filters without the API's pattern.
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/ui/login", data={"key": client.keys["export"], "csrf": token})
    for evil in ("../../etc/passwd", 'a"; filename="x.sh', "a\r\nSet-Cookie: x=1", "..\\..\\x"):
        r = client.get(_url("/ui/exports/download?format=csv", "platform", evil))
        assert r.status_code in (200, 422), r.status_code
        assert "x=1" not in r.headers.get("set-cookie", "")
        if r.status_code == 200:
            disp = r.headers["content-disposition"]
            assert re.fullmatch(r'attachment; filename="[A-Za-z0-9_.-]+"', disp), disp
            assert ".." not in disp
    for fmt in ("../x", "csv\r\nX: 1", "exe"):
        r = client.get(_url("/ui/exports/download", "format", fmt))
        assert r.status_code == 422


def test_cli_export_writes_exactly_where_it_is_told(settings, session, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    with make_client(settings, session):
        pass
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    r = CliRunner().invoke(app, ["export", "--format", "csv", "-o", "../../x.csv"])
    assert r.exit_code == 0, r.output
    # The operator's path is used as given, resolved from the working folder, nowhere else.
    assert (tmp_path / "x.csv").is_file()
    assert sorted(p.name for p in tmp_path.rglob("*.csv")) == ["x.csv"]
    # A bad filter fails before anything is written.
    r = CliRunner().invoke(app, ["export", "--theme", "nope", "-o", "../../y.csv"])
    assert r.exit_code == 2 and not (tmp_path / "y.csv").exists()


FORMULAS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")']


def test_csv_cells_that_start_a_formula_are_neutralized(settings, session):
    from ingest.store import upsert_posts
    from tests.factories import make_post

    with make_client(settings, session) as c:
        upsert_posts(
            session=session,
            posts=[
                make_post(external_id=f"f{i}", text=f, title=f, source="hn", query=f)
                for i, f in enumerate(FORMULAS)
            ]
            # A CR inside a cell must not start a record whose first cell is a formula.
            + [make_post(external_id="g1", text="fine\r=1+1\r\n@x\n-y", source="hn")],
            secret="k",
        )
        session.commit()
        r = c.get("/v1/exports?format=csv", headers=bearer(c.keys["export"]))
    parsed = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert [row["text"] for row in parsed if row["external_id"] == "g1"] == ["fine\r=1+1\r\n@x\n-y"]
    rows = [row for row in parsed if row["external_id"][0] == "f"]
    assert len(rows) == len(FORMULAS)
    for row in rows:
        for col in ("text", "title", "query"):
            assert row[col][0] == "'", (col, row[col])
            assert row[col][1:] in FORMULAS
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r", row


def test_jsonl_export_escapes_markup(client):
    r = client.get("/v1/exports?format=jsonl", headers=bearer(client.keys["export"]))
    assert "<script>" not in r.text and "\\u003cscript\\u003e" in r.text
    texts = [json.loads(line)["text"] for line in r.text.splitlines()]
    assert any(t.startswith("<script>") for t in texts)


MARKUP = (
    "Claude refused again <script>alert(1)</script> <img src=x onerror=alert(2)> "
    "[click](javascript:alert(3)) <!channel> <https://evil.example|login> & more"
)


def _seed_markup(session) -> None:
    from datetime import timedelta

    from classify.rules import RulesClassifier
    from classify.store import classify_posts
    from core.taxonomy import load_taxonomy
    from ingest.store import upsert_posts
    from tests.api.conftest import T0
    from tests.factories import make_post
    from trends.releases import add_release
    from trends.rollups import refresh_dirty

    res = upsert_posts(
        session=session,
        posts=[
            make_post(
                external_id=f"m{i}",
                text=MARKUP,
                created_at=T0 + timedelta(hours=i),
                url="javascript:alert(5)" if i == 0 else f"https://example.org/{i}",
            )
            for i in range(8)
        ]
        # A quiet week before, so refusals are a rising theme with these as its examples.
        + [
            make_post(external_id=f"q{i}", text=f"ordinary {i}", created_at=T0 - timedelta(days=7))
            for i in range(30)
        ],
        secret="k",
    )
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    add_release(
        session=session,
        taxonomy=load_taxonomy(),
        product="claude",
        day="2026-10-21",
        title="<script>alert(4)</script> <!here>",
    )
    refresh_dirty(session=session)
    session.commit()


RAW = ("<script>alert", "<img src=x", "<!channel>", "<!here>", "<https://evil")


def test_markup_in_posts_is_escaped_in_the_dashboard(client, session):
    _seed_markup(session)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/ui/login", data={"key": client.keys["admin"], "csrf": token})
    pid = session.execute(sa.select(Post.id).where(Post.external_id == "m0")).scalar_one()
    for url in (
        "/ui/posts",
        f"/ui/posts/{pid}",
        "/ui/?week=2026-W43",
        "/ui/themes/refusal_complaint?week=2026-W43",
        "/ui/releases",
        "/ui/posts?q=" + quote("<script>"),
    ):
        html = client.get(url).text
        for raw in RAW:
            assert raw not in html, (url, raw)
    page = client.get(f"/ui/posts/{pid}").text
    assert "&lt;script&gt;alert(1)" in page
    # A link from a source is shown only when it is http(s).
    assert 'href="javascript:' not in page.lower()
    other = session.execute(sa.select(Post.id).where(Post.external_id == "m1")).scalar_one()
    assert 'href="https://example.org/1"' in client.get(f"/ui/posts/{other}").text


def test_markup_in_posts_is_escaped_in_the_weekly_report_and_slack(settings, session):
    from core.taxonomy import load_taxonomy
    from trends.report import _slack_text, build_weekly_report

    with make_client(settings, session):
        pass
    _seed_markup(session)
    report = build_weekly_report(
        session=session, settings=settings, taxonomy=load_taxonomy(), week="2026-W43"
    )
    for name in ("report.html", "email.html", "report.md"):
        text = report.files[name].decode()
        assert "alert(1)" in text, name  # the example posts are in it...
        for raw in RAW:
            assert raw not in text, (name, raw)  # ...as text, never markup
    md = report.files["report.md"].decode()
    assert not re.search(r"(?<!\\)\]\(javascript:", md) and "\\[click\\]" in md
    report.summary["movers"] = [
        {"theme": "refusal_<!here>", "share_pp": 1.0, "count": 3},
        *report.summary["movers"],
    ]
    report.summary["coverage_gaps"] = ["<https://evil.example|src>"]
    slack = _slack_text(report)
    for raw in RAW:
        assert raw not in slack, raw
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in slack and "&lt;!here&gt;" in slack


def test_alert_slack_message_escapes_post_text(settings):
    from datetime import UTC, datetime

    from core.models import Alert, AlertRule
    from trends.notify import slack_text

    rule = AlertRule(id=1, name="r <!channel>", theme="refusal_complaint")
    alert = Alert(
        id=7,
        rule_id=1,
        opened_at=datetime(2026, 10, 20, tzinfo=UTC),
        window_start=datetime(2026, 10, 20, tzinfo=UTC),
        window_end=datetime(2026, 10, 20, 1, tzinfo=UTC),
        tail_p=1e-6,
        details={
            "summary": "spike <!everyone>",
            "examples": [{"id": 1, "text": MARKUP}, {"id": 2, "text": "a\n> <!here> b"}],
        },
    )
    text = slack_text(alert, rule, settings)
    for raw in (*RAW, "<!everyone>"):
        assert raw not in text, raw
    assert "&lt;script&gt;" in text and "&amp; more" in text
    # Our own link is the only Slack link left in the message.
    assert re.findall(r"<([^>]+)>", text) == [
        f"{settings.public_url or 'http://127.0.0.1:8000'}/v1/alerts/7|alert #7"
    ]
    # A newline in a post cannot start a line of its own.
    assert len(text.splitlines()) == 4


def test_stored_files_cannot_be_reached_by_path_tricks(client, settings):
    from trends.report import reports_root

    secret = reports_root(settings).parent / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("do-not-serve")
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/ui/login", data={"key": client.keys["read"], "csrf": token})
    for url in (
        "/ui/reports/..%2F..%2Fsecret.txt/report.md",
        "/ui/reports/2026-W43/..%2F..%2Fsecret.txt",
        "/ui/reports/%2E%2E/secret.txt",
        "/ui/reports/2026-W43/%2e%2e%5c%2e%2e%5csecret.txt",
        "/ui/static/..%2F..%2F..%2Fcore%2Fsettings.py",
        "/ui/static/%2e%2e/%2e%2e/templates/base.html",
    ):
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert "do-not-serve" not in r.text and "BaseSettings" not in r.text
