"""The demo corpus loaded into a test database: classified, rolled up, with releases, keys,
a post whose text holds markup, and an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.keys import create_key
from core.models import Alert, AlertRule, Source
from core.taxonomy import load_taxonomy
from ingest.sources.replay import parse_line
from ingest.store import upsert_posts
from tests.conftest import REPO
from trends.releases import add_release
from trends.rollups import rebuild_all

DEMO = REPO / "data" / "demo"
XSS = (
    '<script>window.__xss = 1</script><img src=x onerror="window.__xss=2"> Claude refused to answer'
)


def load_demo(session: Session, *, demo: Path = DEMO) -> dict[str, Any]:
    """Replay, classify and roll up the demo corpus; returns keys per scope and ids to poke at."""
    posts = [
        parse_line(json.loads(line), source="demo")
        for line in (demo / "posts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    posts.append(
        parse_line(
            {
                "platform": "reddit",
                "external_id": "xss-1",
                "text": XSS,
                "created_at": "2026-11-18T12:00:00Z",
                "author_handle": "mallory",
                "root_external_id": "xss-1",
            },
            source="demo",
        )
    )
    res = upsert_posts(session=session, posts=posts, secret="test")
    session.commit()
    classifier = RulesClassifier()
    for i in range(0, len(res.inserted), 500):
        classify_posts(session=session, post_ids=res.inserted[i : i + 500], classifier=classifier)
    rebuild_all(session=session)
    tax = load_taxonomy()
    for r in json.loads((demo / "releases.json").read_text()):
        add_release(
            session=session, taxonomy=tax, product=r["product"], day=r["date"], title=r["title"]
        )
    session.add(
        Source(
            name="demo",
            kind="replay",
            last_run_at=datetime(2026, 11, 23, tzinfo=UTC),
            last_success_at=datetime(2026, 11, 23, tzinfo=UTC),
        )
    )
    rule = AlertRule(name="refusals-claude", theme="refusal_complaint", product="claude")
    session.add(rule)
    session.flush()
    opened = datetime(2026, 10, 21, 9, tzinfo=UTC)
    alert = Alert(
        rule_id=rule.id,
        status="open",
        opened_at=opened,
        window_start=opened - timedelta(hours=6),
        window_end=opened,
        observed=31,
        expected=4.2,
        tail_p=1e-7,
        details={
            "summary": "refusal complaint (claude) spike: 31 posts in 6 h vs 4.2 expected",
            "examples": [
                {
                    "id": res.inserted[0],
                    "platform": "x",
                    "text": XSS,
                    "created_at": opened.isoformat(),
                }
            ],
        },
    )
    session.add(alert)
    keys = {}
    for scope in ("read", "label", "export", "admin"):
        _, keys[scope] = create_key(session=session, name=f"{scope}-user", scopes=[scope])
    session.commit()
    return {"keys": keys, "alert_id": alert.id, "posts": len(res.inserted)}
