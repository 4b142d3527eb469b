"""Privacy: authors pseudonymous everywhere by default, retention deletes old posts with all that
derives from them (rollups stay consistent), and a post deleted at its source disappears."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from classify.review import correct_labels
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.models import (
    Alert,
    AlertRule,
    Classification,
    DirtyBucket,
    Label,
    Post,
    PostTag,
    Quarantine,
    Rollup,
    utcnow,
)
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.api.conftest import T0
from tests.factories import make_post
from tests.survival.hostile import bearer, make_client
from trends.rollups import rebuild_all, refresh_dirty

pytestmark = pytest.mark.survival
HANDLE = "alice_private_handle"


@pytest.fixture
def client(settings, session) -> Iterator:
    with make_client(settings, session) as c:
        res = upsert_posts(
            session=session,
            posts=[
                make_post(
                    external_id=f"h{i}",
                    text=f"Claude refused my request again, number {i}",
                    author_handle=HANDLE,
                    created_at=T0 + timedelta(hours=i),
                )
                for i in range(4)
            ],
            secret="k",
        )
        session.commit()
        classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
        refresh_dirty(session=session)
        session.commit()
        c.handle_ids = res.inserted  # type: ignore[attr-defined]
        yield c


def _login(client, key: str) -> None:
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/ui/login", data={"key": key, "csrf": token}).status_code == 303


def test_authors_are_pseudonymous_everywhere_by_default(client, session, settings):
    pid = client.handle_ids[0]
    for scope in ("read", "export", "admin"):
        h = bearer(client.keys[scope])
        for url in (
            "/v1/posts?limit=500",
            f"/v1/posts/{pid}",
            "/v1/trends/weekly?week=2026-W43&examples=10",
        ):
            r = client.get(url, headers=h)
            assert r.status_code == 200 and HANDLE not in r.text, (scope, url)
        if scope != "read":
            for fmt in ("csv", "jsonl"):
                r = client.get(f"/v1/exports?format={fmt}", headers=h)
                assert r.status_code == 200 and HANDLE not in r.text
            table = pq.read_table(
                io.BytesIO(client.get("/v1/exports?format=parquet", headers=h).content)
            )
            assert "author_handle" not in table.column_names
            assert "author_key" in table.column_names
            assert HANDLE not in str(table.to_pylist())
    # The pseudonym is stable per author and is not the handle.
    items = client.get("/v1/posts?limit=500", headers=bearer(client.keys["read"])).json()["items"]
    keys = {p["author_key"] for p in items if p["external_id"].startswith("h")}
    assert len(keys) == 1 and HANDLE not in next(iter(keys))
    # Only an admin who asks gets handles (so the checks above could have failed).
    r = client.get("/v1/posts?include_handles=true", headers=bearer(client.keys["admin"]))
    assert HANDLE in r.text
    r = client.get(
        "/v1/exports?format=csv&include_handles=true", headers=bearer(client.keys["admin"])
    )
    assert HANDLE in r.text
    _login(client, client.keys["admin"])
    for url in (
        "/ui/posts",
        f"/ui/posts/{pid}",
        "/ui/?week=2026-W43",
        "/ui/themes/refusal_complaint?week=2026-W43",
        "/ui/exports/download?format=csv",
    ):
        r = client.get(url)
        assert r.status_code == 200 and HANDLE not in r.text, url
    from trends.report import build_weekly_report

    report = build_weekly_report(
        session=session, settings=settings, taxonomy=load_taxonomy(), week="2026-W43"
    )
    assert "Claude refused my request again" in report.files["posts.csv"].decode()
    for name, body in report.files.items():
        assert HANDLE.encode() not in body, name


def _old_world(session) -> dict:
    """Posts 100 days old (labeled, tagged, raw payload), new posts, quarantine and an alert."""
    now = utcnow()
    old_at = now - timedelta(days=100)
    res = upsert_posts(
        session=session,
        posts=[
            make_post(
                external_id=f"old{i}",
                text=f"Claude refused me, long ago {i}",
                created_at=old_at + timedelta(hours=i),
                raw={"payload": f"old raw {i}"},
            )
            for i in range(5)
        ]
        + [
            make_post(
                external_id=f"new{i}",
                text=f"Claude refused me, today {i}",
                created_at=now - timedelta(days=1, hours=i),
                raw={"payload": f"new raw {i}"},
            )
            for i in range(3)
        ],
        secret="k",
    )
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    old_ids = res.inserted[:5]
    correct_labels(
        session=session,
        taxonomy=load_taxonomy(),
        post_id=old_ids[0],
        themes=["safety_support"],
        products=None,
        author="t",
        note=None,
    )
    session.add_all(
        [
            Quarantine(
                source="s",
                payload_hash="a" * 64,
                reason="bad",
                payload="old raw item",
                created_at=old_at,
            ),
            Quarantine(source="s", payload_hash="b" * 64, reason="bad", payload="new raw item"),
        ]
    )
    rule = AlertRule(name="r", theme="refusal_complaint")
    session.add(rule)
    session.flush()
    session.add(
        Alert(
            rule_id=rule.id,
            opened_at=old_at,
            window_start=old_at,
            window_end=old_at + timedelta(hours=1),
            details={
                "summary": "s",
                "examples": [
                    {
                        "id": old_ids[0],
                        "platform": "reddit",
                        "url": "https://example.org/old0",
                        "created_at": old_at.isoformat(),
                        "text": "long ago 0",
                    }
                ],
            },
        )
    )
    rebuild_all(session=session)
    session.commit()
    return {"old": old_ids, "new": res.inserted[5:], "old_at": old_at}


def _count(session, table, *where) -> int:
    stmt = sa.select(sa.func.count()).select_from(table)
    for w in where:
        stmt = stmt.where(w)
    return int(session.execute(stmt).scalar_one())


def test_retention_deletes_old_posts_and_all_they_left(settings, session, monkeypatch):
    from cli.main import app

    world = _old_world(session)
    old = world["old"]
    old_hours = {
        r.bucket for r in session.execute(sa.select(Rollup).where(Rollup.count > 0)).scalars()
    }
    assert any(b < utcnow() - timedelta(days=30) for b in old_hours)
    runner = CliRunner()
    # Off by default: the command says so and deletes nothing.
    r = runner.invoke(app, ["db", "prune"])
    assert r.exit_code == 2 and "retention is off" in r.output
    r = runner.invoke(app, ["db", "prune", "--older-than-days", "30", "--dry-run"])
    assert r.exit_code == 0 and "5 posts" in r.output
    assert _count(session, Post) == 8
    r = runner.invoke(app, ["db", "prune", "--older-than-days", "30"])
    assert r.exit_code == 0, r.output
    assert "deleted 5 posts" in r.output
    session.expire_all()
    assert _count(session, Post) == 3
    for table in (Classification, PostTag, Label):
        assert _count(session, table, table.post_id.in_(old)) == 0, table
    assert _count(session, Classification) == 3
    assert [q.payload for q in session.execute(sa.select(Quarantine)).scalars()] == ["new raw item"]
    alert = session.execute(sa.select(Alert)).scalar_one()
    assert alert.details["summary"] == "s"
    assert alert.details["examples"] == [
        {"id": old[0], "platform": "reddit", "created_at": world["old_at"].isoformat()}
    ]
    # The hours the old posts counted in are dirty; once recounted, the rollups equal a rebuild.
    dirty = {d.bucket for d in session.execute(sa.select(DirtyBucket)).scalars()}
    assert {b for b in old_hours if b < utcnow() - timedelta(days=30)} <= dirty
    refresh_dirty(session=session)
    session.commit()
    incremental = sorted(
        (r.bucket, r.platform, r.product, r.theme, r.count)
        for r in session.execute(sa.select(Rollup)).scalars()
    )
    rebuild_all(session=session)
    session.commit()
    rebuilt = sorted(
        (r.bucket, r.platform, r.product, r.theme, r.count)
        for r in session.execute(sa.select(Rollup)).scalars()
    )
    assert incremental == rebuilt
    assert all(b >= utcnow() - timedelta(days=30) for b, *_ in rebuilt)
    # Running it again finds nothing.
    r = runner.invoke(app, ["db", "prune", "--older-than-days", "30"])
    assert "deleted 0 posts" in r.output
    # The alert whose examples lost their texts still reads, in the API and the dashboard.
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.keys import create_key

    _, key = create_key(session=session, name="r", scopes=["read"])
    session.commit()
    with TestClient(create_app(settings), follow_redirects=False) as c:
        api_r = c.get(f"/v1/alerts/{alert.id}", headers=bearer(key))
        assert api_r.status_code == 200 and "long ago" not in api_r.text
        _login(c, key)
        ui_r = c.get(f"/ui/alerts/{alert.id}")
        assert ui_r.status_code == 200 and "long ago" not in ui_r.text


def test_retention_runs_on_schedule(settings, session, monkeypatch):
    from core import settings as settings_mod
    from workers.scheduler import build_scheduler, job_table

    assert "retention.prune" not in {j.id for j in job_table(settings)}
    monkeypatch.setenv("UNDERTOW_RETENTION_DAYS", "30")
    settings_mod.get_settings.cache_clear()
    configured = settings_mod.get_settings()
    assert configured.retention_days == 30
    job = {j.id: j for j in job_table(configured)}["retention.prune"]
    assert job.task == "retention.prune" and job.cron
    sched = build_scheduler(configured)
    assert sched.get_job("retention.prune").max_instances == 1
    # The task the job enqueues does the pruning (run in-process here).
    _old_world(session)
    from workers.tasks.retention import prune_task

    assert prune_task.run() == {"posts": 5, "quarantined": 1, "alerts_scrubbed": 1}
    session.expire_all()
    assert _count(session, Post) == 3


def test_a_post_deleted_at_its_source_drops_out(client, session):
    pid = client.handle_ids[1]
    h = bearer(client.keys["admin"])
    post = session.get(Post, pid)
    weekly = client.get("/v1/trends/weekly?week=2026-W43", headers=h).json()["total"]
    assert client.get(f"/v1/posts/{pid}", headers=h).status_code == 200
    res = upsert_posts(
        session=session,
        posts=[
            make_post(
                external_id=post.external_id,
                platform=post.platform,
                text="",
                created_at=post.created_at,
                deleted=True,
            )
        ],
        secret="k",
    )
    session.commit()
    assert res.to_classify == []
    refresh_dirty(session=session)
    session.commit()
    session.expire_all()
    assert session.get(Post, pid).deleted_at is not None
    assert client.get(f"/v1/posts/{pid}", headers=h).status_code == 404
    listed = client.get("/v1/posts?limit=500", headers=h).json()["items"]
    assert pid not in {p["id"] for p in listed}
    for fmt in ("csv", "jsonl"):
        body = client.get(f"/v1/exports?format={fmt}", headers=h).text
        assert post.external_id not in body and "number 1" not in body
    table = pq.read_table(io.BytesIO(client.get("/v1/exports?format=parquet", headers=h).content))
    assert post.external_id not in table.column("external_id").to_pylist()
    after = client.get("/v1/trends/weekly?week=2026-W43", headers=h).json()["total"]
    assert after == weekly - 1
    _login(client, client.keys["admin"])
    assert f'href="/ui/posts/{pid}"' not in client.get("/ui/posts").text
    assert client.get(f"/ui/posts/{pid}").status_code == 404
