"""Settings: defaults, the packaged sources, credentials that switch sources on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import PLACEHOLDER_SECRET, Settings


def test_default_sources_watch_ai_discourse_without_credentials():
    s = Settings()
    enabled = {x.name for x in s.sources if x.enabled}
    assert enabled == {"hackernews", "reddit", "mastodon", "rss"}
    hn = next(x for x in s.sources if x.kind == "hackernews")
    assert {"Claude", "ChatGPT", "refused", "censorship"} <= set(hn.queries)


def test_credentials_switch_on_bluesky_and_x():
    # Values no path or default could hold: the data dir's random name once held "pw".
    password, token = "app-pass-QX7Z-never-shown", "bearer-QX7Z-never-shown"
    s = Settings(
        bluesky_identifier="me.bsky.social", bluesky_app_password=password, x_bearer_token=token
    )
    on = {x.kind: x for x in s.sources if x.enabled}
    assert on["bluesky"].options["app_password"] == password
    assert on["x"].options["bearer_token"] == token
    assert password not in repr(s) and token not in repr(s)


def test_production_refuses_placeholder_secret():
    with pytest.raises(ValidationError, match="author_key_secret"):
        Settings(env="production", author_key_secret=PLACEHOLDER_SECRET, session_secret="s")
    Settings(env="production", author_key_secret="real-secret", session_secret="s")


def test_duplicate_source_names_are_refused():
    with pytest.raises(ValidationError, match="unique"):
        Settings(sources=[{"name": "a", "kind": "rss"}, {"name": "a", "kind": "rss"}])
