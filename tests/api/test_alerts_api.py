"""/v1/alert-rules and /v1/alerts: scopes, validation naming the parameter, filters, triage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import create_key
from core.models import Alert, AlertRule

T0 = datetime(2026, 10, 20, 10, tzinfo=UTC)


@pytest.fixture
def client(settings, session):
    keys = {}
    for scope in ("read", "label", "admin"):
        _, keys[scope] = create_key(session=session, name=f"{scope}-key", scopes=[scope])
    session.commit()
    with TestClient(create_app(settings)) as c:
        c.keys = keys  # type: ignore[attr-defined]
        yield c


def auth(client, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.keys[scope]}"}


RULE = {
    "name": "claude refusals",
    "theme": "refusal_complaint",
    "product": "claude",
    "budget": 1,
    "channels": [
        {"type": "slack", "url": "https://hooks.slack.example/services/T0/B0/SECRETPATH"},
        {"type": "webhook", "url": "https://hooks.example.org/undertow", "secret": "x" * 24},
    ],
}


def test_rule_crud_needs_admin_and_hides_secrets(client):
    assert (
        client.post("/v1/alert-rules", json=RULE, headers=auth(client, "read")).status_code == 403
    )
    r = client.post("/v1/alert-rules", json=RULE, headers=auth(client, "admin"))
    assert r.status_code == 201, r.text
    rule = r.json()
    assert "x" * 24 not in r.text and rule["channels"][1]["signed_with"] == "channel secret"
    dup = client.post("/v1/alert-rules", json=RULE, headers=auth(client, "admin"))
    assert dup.status_code == 409
    assert dup.headers["content-type"].startswith("application/problem+json")
    listed = client.get("/v1/alert-rules", headers=auth(client, "read"))
    assert listed.status_code == 200
    assert "SECRETPATH" not in listed.text and "x" * 24 not in listed.text
    assert "SECRETPATH" in client.get("/v1/alert-rules", headers=auth(client, "admin")).text
    path = f"/v1/alert-rules/{rule['id']}"
    r = client.put(path, json={"min_count": 8}, headers=auth(client, "admin"))
    assert r.status_code == 200 and r.json()["min_count"] == 8
    assert client.put(path, json={"min_count": 8}, headers=auth(client, "label")).status_code == 403
    assert client.delete(path, headers=auth(client, "admin")).status_code == 204
    assert client.get(path, headers=auth(client, "read")).status_code == 404


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"theme": "nope"}, "theme"),
        ({"product": "nope"}, "product"),
        ({"budget": -1}, "budget"),
        ({"granularity": "minute"}, "granularity"),
        ({"channels": [{"type": "webhook", "url": "http://169.254.169.254/latest"}]}, "channels"),
        ({"channels": [{"type": "email", "to": ["not-an-address"]}]}, "channels"),
    ],
)
def test_bad_rules_are_422_naming_the_param(client, change, param):
    r = client.post("/v1/alert-rules", json={**RULE, **change}, headers=auth(client, "admin"))
    assert r.status_code == 422, r.text
    body = r.json()
    named = [body.get("param")] + [e.get("param") or "" for e in body.get("errors", [])]
    assert any(n and n.startswith(param) for n in named), body


def test_alerts_filters_and_triage(client, session):
    rules = [
        AlertRule(name="a", theme="refusal_complaint"),
        AlertRule(name="b", theme="lost_work_claim"),
    ]
    session.add_all(rules)
    session.flush()
    for i, rule in enumerate(rules * 2):
        session.add(
            Alert(
                rule_id=rule.id,
                opened_at=T0 + timedelta(days=i),
                window_start=T0,
                window_end=T0 + timedelta(hours=1),
                observed=20,
                expected=2,
                tail_p=1e-8,
                details={"summary": "spike"},
            )
        )
    session.commit()
    read = auth(client, "read")
    assert len(client.get("/v1/alerts", headers=read).json()["items"]) == 4
    r = client.get("/v1/alerts?theme=lost_work_claim", headers=read).json()
    assert {a["rule"]["name"] for a in r["items"]} == {"b"}
    r = client.get(f"/v1/alerts?rule={rules[0].id}&since=2026-10-21T00:00:00Z", headers=read)
    assert [a["opened_at"][:10] for a in r.json()["items"]] == ["2026-10-22"]
    page = client.get("/v1/alerts?limit=3", headers=read).json()
    more = client.get(f"/v1/alerts?limit=3&cursor={page['next_cursor']}", headers=read).json()
    assert len(page["items"]) == 3 and len(more["items"]) == 1
    bad = client.get("/v1/alerts?status=closed", headers=read)
    assert bad.status_code == 422 and "status" in bad.json()["detail"]
    first = page["items"][0]["id"]
    assert client.post(f"/v1/alerts/{first}/ack", headers=read).status_code == 403
    r = client.post(f"/v1/alerts/{first}/ack", headers=auth(client, "label"))
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.post(f"/v1/alerts/{first}/resolve", headers=auth(client, "admin"))
    assert r.json()["status"] == "resolved"
    assert client.post(f"/v1/alerts/{first}/ack", headers=auth(client, "label")).status_code == 409
    assert client.get("/v1/alerts?status=open", headers=read).json()["items"][0]["id"] != first
    detail = client.get(f"/v1/alerts/{first}", headers=read).json()
    assert detail["deliveries"] == [] and detail["details"]["resolution"]["by"] == "admin-key"
    assert client.post("/v1/alerts/999999/ack", headers=auth(client, "label")).status_code == 404
