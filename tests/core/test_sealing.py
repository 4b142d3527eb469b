"""Alert channel targets sealed at rest: what the database holds, what the code sees, the wrong
key, altered bytes, and migration 0007 over rules stored in plain text (both databases)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from core.sealing import (
    PREFIX,
    UNSEALABLE,
    Unsealable,
    current_key,
    derive_key,
    key_id,
    seal,
    unseal,
)

SLACK = "https://hooks.slack.example/services/T000/B000/sekritpathtoken"
HOOK = "https://hooks.example.org/undertow/inbound"
SIGNING = "s3cret-signing-key-0123456789"


def test_seal_round_trip_fresh_nonce_and_plain_passthrough() -> None:
    key = derive_key("k" * 32, "")
    a, b = seal(SLACK, key=key), seal(SLACK, key=key)
    assert a.startswith(PREFIX + key_id(key) + ":") and a != b  # a fresh nonce every time
    assert SLACK not in a and "sekrit" not in a
    assert unseal(a, key=key) == unseal(b, key=key) == SLACK
    assert unseal(SLACK, key=key) == SLACK  # written before sealing: read as it is


def test_another_key_or_altered_bytes_are_refused_with_a_reason() -> None:
    key, other = derive_key("k" * 32, ""), derive_key("", "session-secret")
    sealed = seal(SIGNING, key=key)
    with pytest.raises(Unsealable, match=f"sealed under key {key_id(key)}.*{key_id(other)}"):
        unseal(sealed, key=other)
    body = sealed.rsplit(":", 1)[1]
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    with pytest.raises(Unsealable, match="altered"):
        unseal(sealed.rsplit(":", 1)[0] + ":" + flipped, key=key)
    # The key id is bound to the ciphertext: relabelling a value does not get it opened.
    with pytest.raises(Unsealable):
        unseal(sealed.replace(key_id(key), key_id(other)), key=other)


def test_secrets_key_wins_over_the_session_secret() -> None:
    assert derive_key("a" * 32, "x") == derive_key("a" * 32, "y") != derive_key("", "x")
    assert derive_key("", "x") != derive_key("", "y")


def _rule(session: Session, settings) -> int:
    from core.taxonomy import load_taxonomy
    from trends.alerts import RuleSpec, create_rule

    spec = RuleSpec.model_validate(
        {
            "name": "sealed",
            "theme": "refusal_complaint",
            "channels": [
                {"type": "slack", "url": SLACK},
                {"type": "webhook", "url": HOOK, "secret": SIGNING},
                {"type": "email", "to": ["policy@example.org"]},
            ],
        }
    )
    s = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"allow_private_targets": True})}
    )
    rule = create_rule(session=session, spec=spec, taxonomy=load_taxonomy(), settings=s)
    session.commit()
    return int(rule.id or 0)


def _raw(session: Session, rule_id: int) -> list[dict]:
    value = session.execute(
        sa.text("SELECT channels FROM alert_rule WHERE id = :id"), {"id": rule_id}
    ).scalar_one()
    return json.loads(value) if isinstance(value, str) else value


def test_the_database_holds_no_url_or_secret_and_the_code_sees_them(session, settings) -> None:
    from core.models import AlertRule
    from trends.alerts import rule_to_dict
    from trends.notify import channel_key

    rule_id = _rule(session, settings)
    raw = _raw(session, rule_id)
    text = json.dumps(raw)
    for plain in (SLACK, HOOK, SIGNING, "sekritpathtoken", "hooks.example.org"):
        assert plain not in text
    assert all(c["url"].startswith(PREFIX) for c in raw[:2]) and raw[1]["secret"].startswith(PREFIX)
    assert raw[2] == {"type": "email", "to": ["policy@example.org"]}  # nothing secret: as it was

    session.expire_all()
    rule = session.get(AlertRule, rule_id)
    assert rule is not None
    assert rule.channels[0] == {"type": "slack", "url": SLACK}
    assert rule.channels[1] == {"type": "webhook", "url": HOOK, "secret": SIGNING}
    # Channel keys (which deliveries are filed under) are those of the plain channels.
    assert channel_key(rule.channels[1]) == channel_key(
        {"type": "webhook", "url": HOOK, "secret": SIGNING}
    )
    shown = rule_to_dict(rule, reveal=True)["channels"]
    assert shown[0]["url"] == SLACK and "secret" not in shown[1]
    # A changed rule is sealed afresh (new nonces), never twice over.
    rule.channels = [*rule.channels[:2], {"type": "email", "to": ["trust@example.org"]}]
    session.add(rule)
    session.commit()
    again = _raw(session, rule_id)
    assert again[2] == {"type": "email", "to": ["trust@example.org"]}
    assert again[0]["url"] != raw[0]["url"] and again[0]["url"].count(PREFIX) == 1
    session.expire_all()
    assert session.get(AlertRule, rule_id).channels[0]["url"] == SLACK  # type: ignore[union-attr]


def test_under_another_key_the_rule_loads_and_only_its_deliveries_fail(
    session, settings, monkeypatch
) -> None:
    from core import settings as settings_mod
    from core.models import Alert, AlertRule, utcnow
    from trends.alerts import rule_to_dict
    from trends.notify import DeliveryError, send

    rule_id = _rule(session, settings)
    before = key_id(current_key())
    monkeypatch.setenv("UNDERTOW_SECRETS_KEY", "a-new-key-" + "z" * 24)
    settings_mod.get_settings.cache_clear()
    assert key_id(current_key()) != before
    session.expire_all()
    rule = session.get(AlertRule, rule_id)
    assert rule is not None
    assert f"sealed under key {before}" in rule.channels[0][UNSEALABLE]
    shown = rule_to_dict(rule)["channels"]  # the API's view still renders
    assert shown[0]["url"] == "(sealed under another key)"
    assert UNSEALABLE not in rule.channels[2]  # email: nothing sealed, still deliverable
    now = utcnow()
    alert = Alert(
        rule_id=rule_id, opened_at=now, window_start=now, window_end=now, observed=9, expected=1
    )
    with pytest.raises(DeliveryError, match="cannot be unsealed: sealed under key"):
        send(alert, rule, rule.channels[1], settings_mod.get_settings())


def test_migration_0007_seals_rules_stored_in_plain_text(db_url) -> None:
    from core.db import make_engine
    from core.migrate import downgrade, upgrade

    engine = make_engine(db_url)
    channels = [{"type": "webhook", "url": HOOK, "secret": SIGNING}]
    try:
        downgrade(url=db_url, rev="0006")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO alert_rule (name, theme, granularity, metric, budget, min_count,"
                    " cooldown_hours, channels, enabled, created_at)"
                    " VALUES ('legacy', 'refusal_complaint', 'hour', 'count', 2, 5, 24,"
                    " :channels, true, CURRENT_TIMESTAMP)"
                ),
                {"channels": json.dumps(channels)},
            )
        upgrade(url=db_url)
        with engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT channels FROM alert_rule")).scalar_one()
        raw = json.loads(raw) if isinstance(raw, str) else raw
        assert HOOK not in json.dumps(raw) and SIGNING not in json.dumps(raw)
        key = current_key()
        assert (
            unseal(raw[0]["url"], key=key) == HOOK and unseal(raw[0]["secret"], key=key) == SIGNING
        )
        downgrade(url=db_url, rev="0006")  # an older release reads plain text again
        with engine.connect() as conn:
            back = conn.execute(sa.text("SELECT channels FROM alert_rule")).scalar_one()
        assert (json.loads(back) if isinstance(back, str) else back) == channels
    finally:
        engine.dispose()
        upgrade(url=db_url)
