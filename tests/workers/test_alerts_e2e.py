"""End to end: replayed posts with a burst open one alert, a real Celery worker (Redis,
PostgreSQL) delivers it once to a signed webhook on loopback, and it resolves when the series
is back to normal."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.models import Alert, AlertRule, Classification, Delivery
from tests.workers.test_e2e_celery import _wait, _worker, redis_broker  # noqa: F401

pytestmark = pytest.mark.slow
SECRET = "e2e-webhook-signing-secret-0123456789"
TEXTS = [
    "Claude refused to help with my essay again, ridiculous",
    "ChatGPT refused my perfectly normal request today",
    "Gemini would not answer, it refused outright",
]


def _per_hour(h: datetime) -> int:
    """A steady weekly-seasonal baseline: 1 at night, 2 by day, 3 in the evening."""
    return 1 + (8 <= h.hour < 22) + (18 <= h.hour < 21) + (h.weekday() < 5 and h.hour == 12)


def _write(path: Path, hours: list[datetime], burst: datetime | None = None) -> int:
    n = 0
    with path.open("w") as fh:
        for h in hours:
            k = 30 if h == burst else _per_hour(h)
            for j in range(k):
                n += 1
                fh.write(
                    json.dumps(
                        {
                            "platform": "reddit",
                            "external_id": f"{h:%Y%m%d%H}-{j}",
                            "text": f"{TEXTS[(n + j) % 3]} #{h:%m%d%H}{j}",
                            "created_at": (h + timedelta(minutes=(j * 7) % 60)).isoformat(),
                            "author_handle": f"author{n % 17}",
                            "engagement": {"score": j},
                        }
                    )
                    + "\n"
                )
    return n


class _Receiver(http.server.BaseHTTPRequestHandler):
    hits: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ts = self.headers.get("X-Undertow-Timestamp", "")
        sig = self.headers.get("X-Undertow-Signature", "")
        # What a receiver does (README): HMAC-SHA256 over timestamp + "." + body, 5-minute window.
        want = (
            "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= 300
        ok = fresh and hmac.compare_digest(want, sig)
        type(self).hits.append({"ok": ok, "body": json.loads(body)})
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_burst_alert_is_delivered_once_and_resolves(settings, session, redis_broker, tmp_path):  # noqa: F811
    from cli.ingest import replay_file

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/undertow"
    session.add(
        AlertRule(
            name="refusals",
            theme="refusal_complaint",
            budget=2,
            min_count=5,
            cooldown_hours=24,
            channels=[{"type": "webhook", "url": hook, "secret": SECRET}],
        )
    )
    session.commit()

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    burst = now - timedelta(hours=6)
    base = [burst - timedelta(hours=i) for i in range(21 * 24, 0, -1)]
    first, after = tmp_path / "first.jsonl", tmp_path / "after.jsonl"
    n1 = _write(first, [*base, burst], burst=burst)
    n2 = _write(after, [burst + timedelta(hours=i) for i in range(1, 6)])

    env = {
        **os.environ,
        "UNDERTOW_DATABASE_URL": settings.sqlalchemy_url,
        "UNDERTOW_ALERTS__ALLOW_PRIVATE_TARGETS": "true",
        "UNDERTOW_ALERTS__RETRY_BASE_S": "0.5",
    }
    worker = _worker(env, tmp_path / "worker.log")

    def classified() -> int:
        return session.execute(sa.select(sa.func.count()).select_from(Classification)).scalar_one()

    def detect(at: datetime) -> None:
        from workers.app import celery_app

        celery_app.send_task("alerts.detect", args=[at.isoformat()])

    def alerts() -> list[Alert]:
        session.expire_all()
        return list(session.exec(select(Alert)))

    try:
        assert replay_file(first, name="e2e-alerts")["inserted"] == n1
        _wait(lambda: classified() == n1, 150, "the first replay classified")
        detect(burst + timedelta(minutes=40))
        _wait(lambda: len(alerts()) == 1, 60, "one alert")
        _wait(lambda: len(_Receiver.hits) == 1, 60, "the webhook delivery")
        (alert,) = alerts()
        assert alert.status == "open" and alert.observed >= 30
        assert alert.details["examples"] and len(alert.details["examples"][0]["text"]) <= 280
        hit = _Receiver.hits[0]
        assert hit["ok"], "signature did not verify"
        assert hit["body"]["alert"]["id"] == alert.id
        assert hit["body"]["rule"]["name"] == "refusals"

        # The incident goes on and the series returns to normal: still one alert, then resolved.
        assert replay_file(after, name="e2e-alerts")["inserted"] == n2
        _wait(lambda: classified() == n1 + n2, 120, "the second replay classified")
        detect(burst + timedelta(hours=1, minutes=40))
        detect(burst + timedelta(hours=5, minutes=30))

        def resolved() -> bool:
            return [a.status for a in alerts()] == ["resolved"]

        _wait(resolved, 60, "the alert resolved by the detector")
        time.sleep(1.0)  # a second delivery, if there were one, would have arrived by now
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.shutdown()
    assert len(_Receiver.hits) == 1
    sent = session.exec(select(Delivery).where(Delivery.status == "sent")).all()
    assert len(sent) == 1 and sent[0].alert_id == alert.id
    assert SECRET not in (sent[0].response or "") + sent[0].target
    assert alerts()[0].details["resolution"]["by"] == "detector"
