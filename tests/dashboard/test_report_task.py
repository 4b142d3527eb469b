"""The scheduled weekly-report task: writes the report, sends it once per alert channel."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from classify.rules import RulesClassifier
from classify.store import classify_posts
from core import settings as settings_mod
from core.models import AlertRule, Delivery
from ingest.store import upsert_posts
from tests.factories import make_post
from trends.report import reports_root
from trends.rollups import refresh_dirty
from workers.tasks.reports import weekly_report_task


class _Slack(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Slack.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_weekly_task_writes_and_sends_once(settings, session, monkeypatch):
    monkeypatch.setenv("UNDERTOW_ALERTS__ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("UNDERTOW_PUBLIC_URL", "https://undertow.example")
    settings_mod.get_settings.cache_clear()
    t0 = datetime(2026, 10, 20, 10, tzinfo=UTC)
    posts = [
        make_post(
            external_id=f"r{i}",
            text="Claude refused to help me again",
            created_at=t0 + timedelta(hours=i),
        )
        for i in range(5)
    ]
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    refresh_dirty(session=session)
    slack = http.server.HTTPServer(("127.0.0.1", 0), _Slack)
    threading.Thread(target=slack.serve_forever, daemon=True).start()
    _Slack.received = []
    channel = {"type": "slack", "url": f"http://127.0.0.1:{slack.server_port}/hook"}
    session.add(AlertRule(name="r1", theme="refusal_complaint", channels=[channel]))
    session.add(AlertRule(name="r2", theme="lost_work_claim", channels=[channel]))  # same channel
    session.commit()
    try:
        first = weekly_report_task.run(week="2026-W43")
        again = weekly_report_task.run(week="2026-W43")
    finally:
        slack.shutdown()
    assert [d["status"] for d in first["deliveries"]] == ["sent"]
    assert [d["status"] for d in again["deliveries"]] == ["skipped"]
    assert len(_Slack.received) == 1
    text = _Slack.received[0]["text"]
    assert "weekly report 2026-W43" in text and "5 posts" in text
    assert "https://undertow.example/ui/reports/2026-W43/report.html" in text
    assert (reports_root(settings_mod.get_settings()) / "2026-W43" / "report.html").is_file()
    session.expire_all()
    rows = list(session.exec(select(Delivery)))
    assert [(r.alert_id, r.status, r.channel_key[:8]) for r in rows] == [(None, "sent", "2026W43:")]
