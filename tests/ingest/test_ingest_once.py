"""`undertow ingest once NAME` end to end: recorded responses on loopback -> database -> API/export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import create_key
from core.models import Post, Quarantine, Source
from tests.conftest import REPO
from tests.ingest.conftest import own

SEARCH = "/api/v1/search_by_date"


def _cli(cfg, settings, *args):
    env = {
        **os.environ,
        "UNDERTOW_DATABASE_URL": settings.sqlalchemy_url,
        "UNDERTOW_CONFIG": str(cfg),
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def hn_config(api, tmp_path):
    api.add(SEARCH, own("hn_search_broken.json"), tags="(story)")
    api.add(SEARCH, own("hn_search_comment_17.json"), tags="(comment)")
    api.add("/api/v1/items/900001", own("hn_items_900001.json"))
    cfg = tmp_path / "undertow.toml"
    cfg.write_text(
        f"""
[[sources]]
name = "hn"
kind = "hackernews"
base_url = "{api.url}"
queries = ["claude"]
options = {{ expand_comments = false }}
"""
    )
    return cfg


def test_ingest_once_stores_exactly_what_was_served_and_twice_adds_nothing(
    settings, session, hn_config
):
    first = _cli(hn_config, settings, "ingest", "once", "hn")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert counts["inserted"] == 5 and counts["quarantined"] == 1
    ids = set(session.scalars(sa.select(Post.external_id)))
    assert ids == {"900001", "900003", "900010", "900011", "17"}
    # One broken item: every other item stored, one quarantine record kept with the reason.
    q = session.scalars(sa.select(Quarantine)).all()
    assert len(q) == 1 and "900002" in q[0].payload
    second = _cli(hn_config, settings, "ingest", "once", "hn")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["inserted"] == 0
    assert session.execute(sa.select(sa.func.count()).select_from(Post)).scalar_one() == 5
    src = session.scalars(sa.select(Source).where(Source.name == "hn")).one()
    assert src.posts_collected == 5 and src.consecutive_failures == 0 and src.last_success_at

    status = json.loads(_cli(hn_config, settings, "ingest", "status").stdout)
    assert status[0]["name"] == "hn" and status[0]["quarantined"] == 1

    # Thread links survive to the API and the export; a post deleted at the source is hidden.
    _, key = create_key(session=session, name="t", scopes=["read"])
    session.commit()
    with TestClient(create_app(settings)) as c:
        items = c.get("/v1/posts", headers={"Authorization": f"Bearer {key}"}).json()["items"]
    by_id = {i["external_id"]: i for i in items}
    assert "900010" not in by_id
    assert by_id["900011"]["parent_external_id"] == "900010"
    assert by_id["900011"]["root_external_id"] == "900001"
    exported = _cli(hn_config, settings, "export", "--format", "jsonl")
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {r["external_id"] for r in rows} == {"900001", "900003", "900011", "17"}
    assert {r["external_id"]: r["root_external_id"] for r in rows}["900011"] == "900001"


def test_unknown_source_is_a_clear_error(settings, hn_config):
    r = _cli(hn_config, settings, "ingest", "once", "nope")
    assert r.returncode == 1 and "no source named 'nope'" in r.stderr


def test_a_cut_emoji_or_a_nul_costs_neither_its_post_nor_the_batch(settings, session, tmp_path):
    """JSON's "\\ud83d" (half of an emoji cut by a length limit) decodes to a lone surrogate, which
    UTF-8 cannot encode, and PostgreSQL refuses NUL in any text or JSON column (here in a field
    kept only in the raw payload): the batch's insert failed, the cursor never moved and every
    later run failed the same way. Both now read as U+FFFD, in posts, raw payloads, authors and
    quarantined lines."""
    data = tmp_path / "posts.jsonl"
    rows = [
        {"id": "1", "body": "Claude cut \ud83d", "ts": 1700000000, "user": {"name": "a\udc00"}},
        {"id": "2", "body": "fine", "ts": 1700000001, "user": {"name": "b"}, "extra": "x\u0000"},
    ]
    data.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"id": "3", "body": "\\ud83d broken\0\n'
    )
    cfg = tmp_path / "undertow.toml"
    mapping = 'external_id = "id", text = "body", created_at = "ts", author_handle = "user.name"'
    cfg.write_text(
        f'[[sources]]\nname = "f"\nkind = "file"\n'
        f'options = {{ path = "{data}", mapping = {{ {mapping} }} }}\n'
    )
    first = _cli(cfg, settings, "ingest", "once", "f")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["inserted"] == 2
    stored = dict(session.execute(sa.select(Post.external_id, Post.text)).all())
    assert stored == {"1": "Claude cut \ufffd", "2": "fine"}
    raw = dict(session.execute(sa.select(Post.external_id, Post.raw)).all())
    assert raw["2"]["extra"] == "x\ufffd" and raw["1"]["user"]["name"] == "a\ufffd"
    (q,) = session.scalars(sa.select(Quarantine)).all()
    assert "broken\ufffd" in q.payload
    again = _cli(cfg, settings, "ingest", "once", "f")
    assert again.returncode == 0 and json.loads(again.stdout)["inserted"] == 0
