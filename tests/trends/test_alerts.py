"""Alert rules, detection lifecycle, coverage gaps, calibration, and the channels' safety."""

from __future__ import annotations

import http.server
import json
import math
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.errors import Conflict, InvalidInput
from core.models import Alert, AlertRule, Delivery, Rollup, Source, SourceOutage
from core.taxonomy import load_taxonomy
from trends.alerts import (
    RulePatch,
    RuleSpec,
    acknowledge_alert,
    calibrate_rule,
    create_rule,
    detect,
    ensure_default_rules,
    resolve_alert,
    rule_series,
    update_rule,
)
from trends.notify import (
    RefusedTarget,
    TransientDeliveryError,
    channel_key,
    check_literal_target,
    deliver,
    post_json,
    resolve_target,
    sign,
    verify_signature,
)

START = datetime(2026, 9, 1, tzinfo=UTC)
THEME = "refusal_complaint"
BASE_DAYS = 21


def baseline(hours: int, seed: int = 7) -> np.ndarray:
    """Low, overdispersed, daily-seasonal counts (mean about 2.5 an hour)."""
    rng = np.random.default_rng(seed)
    h = np.arange(hours)
    lam = (2.0 + 1.5 * np.sin(2 * np.pi * (h % 24) / 24)) * rng.gamma(8, 1 / 8, hours)
    return rng.poisson(lam).astype(int)


def write_series(session, counts, *, start=START, platform="reddit") -> None:
    rows = []
    for i, c in enumerate(counts):
        b = start + timedelta(hours=i)
        rows.append(dict(bucket=b, platform=platform, product="*", theme="*", count=int(c) + 10))
        rows.append(dict(bucket=b, platform=platform, product="*", theme=THEME, count=int(c)))
    session.execute(sa.insert(Rollup.__table__), rows)
    session.commit()


def make_rule(session, settings, **kw):
    spec = RuleSpec(name=kw.pop("name", "refusals"), theme=THEME, **kw)
    rule = create_rule(session=session, spec=spec, taxonomy=load_taxonomy(), settings=settings)
    session.commit()
    return rule


def at(hour: int, minute: int = 30) -> datetime:
    return START + timedelta(hours=hour, minutes=minute)


def run(session, settings, now):
    out = detect(session=session, settings=settings, now=now)
    session.commit()
    return out


def alerts(session):
    session.expire_all()
    return list(session.exec(select(Alert).order_by(Alert.id)))


SPIKE = 24 * BASE_DAYS


def test_one_alert_per_incident_then_resolved_with_why(settings, session):
    counts = baseline(SPIKE + 30)
    counts[SPIKE : SPIKE + 3] += 25
    write_series(session, counts)
    make_rule(session, settings)
    assert run(session, settings, at(SPIKE - 1))["opened"] == []
    first = run(session, settings, at(SPIKE))
    assert len(first["opened"]) == 1
    for h in (SPIKE + 1, SPIKE + 2):  # the incident goes on: no second alert
        assert run(session, settings, at(h))["opened"] == []
    (a,) = alerts(session)
    assert a.status == "open"
    assert a.window_end == START + timedelta(hours=SPIKE + 1)
    assert a.observed >= 25 and a.expected < a.observed / 3
    assert a.tail_p < 1e-4 and a.score >= a.threshold
    assert "spike" in a.details["summary"] and a.details["window_buckets"] >= 1
    # Back to normal for three complete hours after the spike: resolved by the detector.
    for h in range(SPIKE + 3, SPIKE + 8):
        run(session, settings, at(h))
    (a,) = alerts(session)
    assert a.status == "resolved" and a.details["resolution"]["by"] == "detector"


def test_cooldown_and_incident_window(settings, session):
    counts = baseline(SPIKE + 60)
    counts[SPIKE] += 30
    counts[SPIKE + 10] += 30  # inside the 24 h cooldown
    counts[SPIKE + 40] += 30  # after it
    write_series(session, counts)
    make_rule(session, settings, cooldown_hours=24)
    opened = []
    for h in (SPIKE - 1, SPIKE, SPIKE + 1, SPIKE + 10, SPIKE + 11, SPIKE + 40, SPIKE + 41):
        opened += run(session, settings, at(h))["opened"]
    got = [a.window_end - timedelta(hours=1) for a in alerts(session)]
    assert len(opened) == 2
    assert got == [START + timedelta(hours=SPIKE), START + timedelta(hours=SPIKE + 40)]


def test_acknowledged_alert_still_blocks_and_manual_resolve(settings, session):
    counts = baseline(SPIKE + 6)
    counts[SPIKE : SPIKE + 6] += 30
    write_series(session, counts)
    rule = make_rule(session, settings, cooldown_hours=0)
    run(session, settings, at(SPIKE))
    (a,) = alerts(session)
    acknowledge_alert(session=session, alert_id=a.id, by="me")
    session.commit()
    assert run(session, settings, at(SPIKE + 2))["opened"] == []
    resolve_alert(session=session, alert_id=a.id, by="me")
    session.commit()
    with pytest.raises(Conflict):
        acknowledge_alert(session=session, alert_id=a.id, by="me")
    assert resolve_alert(session=session, alert_id=a.id, by="me").status == "resolved"
    assert alerts(session)[0].details["acknowledged_by"] == "me"
    assert rule.id == a.rule_id


def test_coverage_gap_is_not_a_spike(settings, session):
    counts = baseline(SPIKE + 6)
    counts[SPIKE : SPIKE + 2] += 30  # the backfill after an outage lands here
    write_series(session, counts)
    session.add(Source(name="reddit-main", kind="reddit"))
    session.add(
        SourceOutage(
            source="reddit-main",
            started_at=START + timedelta(hours=SPIKE - 1, minutes=40),
            ended_at=START + timedelta(hours=SPIKE + 2, minutes=5),
        )
    )
    session.commit()
    rule = make_rule(session, settings)
    for h in range(SPIKE - 1, SPIKE + 3):
        assert run(session, settings, at(h))["opened"] == []
    series = rule_series(
        session=session,
        rule=rule,
        start=START,
        end=START + timedelta(hours=SPIKE + 4),
        now=at(SPIKE + 3),
    )
    gap = [t for t, v in zip(series.timestamps, series.values, strict=True) if math.isnan(v)]
    assert gap == [START + timedelta(hours=SPIKE + k) for k in (-1, 0, 1, 2)]
    assert alerts(session) == []


def test_failing_source_without_outage_row_is_a_gap(settings, session):
    counts = baseline(SPIKE + 3)
    counts[SPIKE] += 30
    write_series(session, counts)
    session.add(
        Source(
            name="reddit-main",
            kind="reddit",
            consecutive_failures=3,
            last_success_at=START + timedelta(hours=SPIKE - 2),
            last_error_at=START + timedelta(hours=SPIKE),
        )
    )
    session.commit()
    make_rule(session, settings)
    assert run(session, settings, at(SPIKE))["opened"] == []
    # A failing source of another platform does not blind a rule filtered to reddit.
    session.execute(sa.update(Source).values(kind="mastodon"))
    session.commit()
    make_rule(session, settings, name="reddit only", platform="reddit")
    assert len(run(session, settings, at(SPIKE))["opened"]) == 1


def test_calibration_uses_no_data_after_now(settings, session):
    counts = baseline(24 * 35, seed=3)
    write_series(session, counts)
    rule = make_rule(session, settings, budget=1.0)
    cut = at(24 * 28, 0)
    before = calibrate_rule(session=session, rule=rule, settings=settings, now=cut)
    thr = rule.threshold
    assert thr is not None and thr >= 4.0 and math.isfinite(thr)
    assert before["history_days"] == 28.0
    # Anything after the calibration time, however wild, must not move the threshold.
    session.execute(
        sa.update(Rollup)
        .where(Rollup.bucket >= cut, Rollup.theme == THEME)
        .values(count=Rollup.count + 40)
    )
    session.commit()
    again = calibrate_rule(session=session, rule=rule, settings=settings, now=cut)
    assert rule.threshold == thr and again["backtest_alerts"] == before["backtest_alerts"]
    # The backtest over the history stays within the budget (1 per 28 days, with slack).
    assert before["backtest_alerts_per_28_days"] <= 2


def test_rules_crud_defaults_and_validation(settings, session):
    tax = load_taxonomy()
    made = ensure_default_rules(session=session, taxonomy=tax, settings=settings)
    session.commit()
    assert {r.theme for r in made} >= {"refusal_complaint", "lost_work_claim"}
    assert ensure_default_rules(session=session, taxonomy=tax, settings=settings) == []
    with pytest.raises(InvalidInput) as e:
        create_rule(
            session=session,
            spec=RuleSpec(name="x", theme="not_a_theme"),
            taxonomy=tax,
            settings=settings,
        )
    assert e.value.extra["param"] == "theme"
    with pytest.raises(InvalidInput) as e:
        create_rule(
            session=session,
            spec=RuleSpec.model_validate(
                {
                    "name": "x",
                    "theme": THEME,
                    "channels": [{"type": "webhook", "url": "http://10.0.0.5/hook"}],
                }
            ),
            taxonomy=tax,
            settings=settings,
        )
    assert e.value.extra["param"] == "channels.0.url"
    rule = made[0]
    rule.threshold = 7.5
    session.commit()
    update_rule(
        session=session,
        rule_id=rule.id,
        patch=RulePatch(min_count=9),
        taxonomy=tax,
        settings=settings,
    )
    assert rule.threshold == 7.5 and rule.min_count == 9
    update_rule(
        session=session,
        rule_id=rule.id,
        patch=RulePatch(product="claude"),
        taxonomy=tax,
        settings=settings,
    )
    assert rule.threshold is None  # what it watches changed: calibrate again
    session.commit()
    assert session.exec(select(AlertRule).where(AlertRule.product == "claude")).one()


# --- channels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "::1", "0.0.0.0", "224.0.0.1"],
)
def test_non_public_targets_are_refused(host):
    with pytest.raises(RefusedTarget):
        resolve_target(host, 443, allow_private=False)
    url = f"http://[{host}]/x" if ":" in host else f"http://{host}/x"
    with pytest.raises(RefusedTarget):
        check_literal_target(url, allow_private=False)
    assert resolve_target(host, 443, allow_private=True)


def test_hostname_resolving_to_loopback_is_refused():
    with pytest.raises(RefusedTarget, match="localhost resolves to"):
        resolve_target("localhost", 80, allow_private=False)
    assert resolve_target("localhost", 80, allow_private=True)


def test_signature_verifies_and_rejects_stale_or_tampered():
    secret, body = "s" * 32, b'{"a":1}'
    ts = int(time.time())
    sig = sign(secret, ts, body)
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    assert verify_signature(secret, timestamp=str(ts), body=body, signature=sig)
    assert not verify_signature(secret, timestamp=str(ts), body=b'{"a":2}', signature=sig)
    assert not verify_signature("t" * 32, timestamp=str(ts), body=body, signature=sig)
    old = ts - 600
    stale = sign(secret, old, body)
    assert not verify_signature(secret, timestamp=str(old), body=body, signature=stale)
    assert verify_signature(secret, timestamp=str(old), body=body, signature=stale, tolerance_s=900)


class _Hook(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []
    hits: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).hits.append((dict(self.headers), body))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"statuses": [], "hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()


def test_post_json_refuses_loopback_unless_allowed(settings, hook, monkeypatch):
    url, handler = hook
    with pytest.raises(RefusedTarget):
        post_json(url, b"{}", {}, settings)
    assert handler.hits == []
    monkeypatch.setattr(settings.alerts, "allow_private_targets", True)
    assert post_json(url, b"{}", {}, settings) == 200
    handler.statuses = [302]
    with pytest.raises(Exception, match="redirects are not followed"):
        post_json(url, b"{}", {}, settings)
    handler.statuses = [503]
    with pytest.raises(TransientDeliveryError):
        post_json(url, b"{}", {}, settings)


def _alert_with_channel(session, settings, channel) -> tuple[int, str]:
    rule = make_rule(session, settings)
    rule.channels = [channel]
    alert = Alert(
        rule_id=rule.id,
        opened_at=at(1),
        window_start=at(0, 0),
        window_end=at(1, 0),
        observed=30,
        expected=3,
        tail_p=1e-9,
        score=9,
        threshold=4,
        details={"summary": "refusal complaint spike", "examples": [{"id": 1, "text": "hi"}]},
    )
    session.add(alert)
    session.commit()
    return int(alert.id), channel_key(channel)


def test_delivery_is_signed_logged_and_sent_once(settings, session, hook, monkeypatch):
    url, handler = hook
    monkeypatch.setattr(settings.alerts, "allow_private_targets", True)
    secret = "a-long-enough-secret-value"
    alert_id, key = _alert_with_channel(
        session, settings, {"type": "webhook", "url": url, "secret": secret}
    )
    handler.statuses = [500]
    first = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
    session.commit()
    assert first.retry and first.attempt == 1
    second = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
    session.commit()
    assert second.status == "sent" and second.attempt == 2
    again = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
    session.commit()
    assert again.status == "skipped" and len(handler.hits) == 2
    headers, body = handler.hits[-1]
    assert verify_signature(
        secret,
        timestamp=headers["X-Undertow-Timestamp"],
        body=body,
        signature=headers["X-Undertow-Signature"],
    )
    assert json.loads(body)["alert"]["id"] == alert_id
    rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.attempt, d.status) for d in rows] == [(1, "retrying"), (2, "sent")]
    assert all(secret not in (d.response or "") + d.target for d in rows)


def test_two_workers_delivering_the_same_alert_send_it_once(settings, session, monkeypatch):
    """Two workers holding the same (alert, channel) at once: one sends, the other finds it sent
    (PostgreSQL: an advisory lock; SQLite: the write lock taken before the check)."""
    from core.db import get_engine

    class Slow(_Hook):
        def do_POST(self):
            time.sleep(0.5)  # both workers are past their start while the first one sends
            super().do_POST()

    handler = type("SlowHook", (Slow,), {"statuses": [], "hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setattr(settings.alerts, "allow_private_targets", True)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    alert_id, key = _alert_with_channel(session, settings, {"type": "slack", "url": url})
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        with Session(get_engine(settings), expire_on_commit=False) as own:
            start.wait()
            outcome = deliver(session=own, alert_id=alert_id, key=key, settings=settings)
            own.commit()
        outcomes.append(outcome.status)

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(handler.hits) == 1
    rows = session.exec(select(Delivery).where(Delivery.alert_id == alert_id)).all()
    assert [d.status for d in rows] == ["sent"]


def test_delivery_gives_up_after_max_attempts_and_refuses_private(
    settings, session, hook, monkeypatch
):
    url, handler = hook
    monkeypatch.setattr(settings.alerts, "max_attempts", 2)
    alert_id, key = _alert_with_channel(session, settings, {"type": "slack", "url": url})
    refused = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
    session.commit()
    assert refused.status == "refused" and handler.hits == []
    session.execute(sa.delete(Delivery))
    session.commit()
    monkeypatch.setattr(settings.alerts, "allow_private_targets", True)
    handler.statuses = [502, 502, 502]
    outcomes = []
    for _ in range(3):
        outcomes.append(deliver(session=session, alert_id=alert_id, key=key, settings=settings))
        session.commit()
    assert [o.status for o in outcomes] == ["retrying", "failed", "skipped"]
    assert "text" in json.loads(handler.hits[0][1])


class _Smtp(socketserver.StreamRequestHandler):
    received: list[bytes] = []

    def handle(self):
        def say(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        say("220 test ESMTP")
        data: list[bytes] | None = None
        while line := self.rfile.readline():
            if data is not None:
                if line == b".\r\n":
                    type(self).received.append(b"".join(data))
                    data = None
                    say("250 queued")
                else:
                    data.append(line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                data = []
                say("354 go ahead")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")


def test_email_goes_through_smtp_and_private_host_is_refused(settings, session, monkeypatch):
    handler = type("Smtp", (_Smtp,), {"received": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setattr(settings.smtp, "host", "127.0.0.1")
    monkeypatch.setattr(settings.smtp, "port", server.server_address[1])
    monkeypatch.setattr(settings.smtp, "starttls", False)
    try:
        alert_id, key = _alert_with_channel(
            session, settings, {"type": "email", "to": ["policy@example.org"]}
        )
        refused = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
        session.commit()
        assert refused.status == "refused" and handler.received == []
        session.execute(sa.delete(Delivery))
        session.commit()
        monkeypatch.setattr(settings.alerts, "allow_private_targets", True)
        sent = deliver(session=session, alert_id=alert_id, key=key, settings=settings)
        session.commit()
    finally:
        server.shutdown()
        server.server_close()
    assert sent.status == "sent"
    (mail,) = handler.received
    assert b"To: policy@example.org" in mail and b"refusal complaint spike" in mail


def test_share_rule_ignores_general_buzz(settings, session):
    counts = baseline(SPIKE + 30)
    rows = []
    for i, c in enumerate(counts.tolist()):
        b = START + timedelta(hours=i)
        launch = 3 if SPIKE <= i < SPIKE + 4 else 1  # everything triples: a launch's buzz
        own = 6 if SPIKE + 20 <= i < SPIKE + 22 else 1  # only the theme jumps
        rows.append(
            dict(bucket=b, platform="reddit", product="*", theme="*", count=(c + 10) * launch)
        )
        rows.append(
            dict(
                bucket=b,
                platform="reddit",
                product="*",
                theme=THEME,
                count=c * launch * own + 10 * (own > 1),
            )
        )
    session.execute(sa.insert(Rollup.__table__), rows)
    session.commit()
    count_rule = make_rule(session, settings, name="count", cooldown_hours=0)
    share_rule = make_rule(session, settings, name="share", metric="share", cooldown_hours=0)
    opened: dict[int, list[int]] = {count_rule.id: [], share_rule.id: []}
    for h in (SPIKE + 2, SPIKE + 4, SPIKE + 22):
        run(session, settings, at(h))
    for a in alerts(session):
        opened[a.rule_id].append(int((a.window_end - START).total_seconds() // 3600) - 1)
    assert any(SPIKE <= h < SPIKE + 4 for h in opened[count_rule.id])
    assert not any(SPIKE <= h < SPIKE + 4 for h in opened[share_rule.id])
    assert any(SPIKE + 20 <= h < SPIKE + 22 for h in opened[share_rule.id])


def test_ingest_failures_open_and_success_closes_an_outage_window(settings, session):
    from ingest.pipeline import close_outages, record_failure

    ok_at = datetime(2026, 11, 1, 9, 45, tzinfo=UTC)
    src = Source(name="hn", kind="hackernews", last_success_at=ok_at)
    session.add(src)
    session.commit()
    for _ in range(2):  # two failures in a row are one outage
        record_failure(session=session, source=src, error="HTTP 503", interval_s=900)
        session.commit()
    (outage,) = session.exec(select(SourceOutage)).all()
    assert outage.started_at == ok_at and outage.ended_at is None
    close_outages(session=session, source=src)
    session.commit()
    session.refresh(outage)
    assert outage.ended_at is not None and outage.ended_at > ok_at


def test_budget_caps_live_alerts_unless_stronger(settings, session):
    counts = baseline(SPIKE + 90)
    counts[SPIKE] += 20
    counts[SPIKE + 48] += 14  # weaker: over the budget of one per 28 days
    counts[SPIKE + 80] += 80  # much stronger: pages anyway
    write_series(session, counts)
    # A fixed threshold, so only the budget's cap can hold the second incident back.
    make_rule(session, settings, budget=1.0, cooldown_hours=0, threshold=4.0)
    for h in (SPIKE, SPIKE + 48, SPIKE + 49, SPIKE + 80):
        run(session, settings, at(h))
        for a in alerts(session):
            resolve_alert(session=session, alert_id=a.id, by="test")
        session.commit()
    got = [int((a.window_end - START).total_seconds() // 3600) - 1 for a in alerts(session)]
    assert got == [SPIKE, SPIKE + 80]
