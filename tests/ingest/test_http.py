"""The polite request helper against a real loopback server: retries, 429s, rate limits."""

from __future__ import annotations

import socket
import time

import pytest

from ingest.http import Http, RetryPolicy, SourceError
from tests.ingest.conftest import Reply, as_json, own

OK = as_json({"ok": True})


def http(client, sleeps, **kw) -> Http:
    return Http(client, source="t", sleep=sleeps, **kw)


def test_429_with_retry_after_then_success(api, client, sleeps):
    api.add("/x", Reply(429, b"{}", {"Retry-After": "2"}), OK)
    assert http(client, sleeps).get_json(f"{api.url}/x") == {"ok": True}
    assert sleeps == [2.0]
    assert len(api.requests_to("/x")) == 2


def test_429_with_x_ratelimit_reset_epoch(api, client, sleeps):
    now = 1_800_000_000.0
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now + 7))}
    api.add("/x", Reply(429, b"{}", headers), OK)
    assert http(client, sleeps, clock=lambda: now).get_json(f"{api.url}/x") == {"ok": True}
    assert sleeps == [7.0]


def test_429_with_x_rate_limit_headers(api, client, sleeps):
    now = 1_800_000_000.0
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now + 4))}
    api.add("/x", Reply(429, b"{}", headers), OK)
    http(client, sleeps, clock=lambda: now).get_json(f"{api.url}/x")
    assert sleeps == [4.0]


def test_429_with_bluesky_ratelimit_headers(api, client, sleeps):
    now = 1_800_000_000.0
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(int(now + 3))}
    api.add("/x", Reply(429, b"{}", headers), OK)
    http(client, sleeps, clock=lambda: now).get_json(f"{api.url}/x")
    assert sleeps == [3.0]


def test_exhausted_window_pauses_the_next_request(api, client, sleeps):
    # Reddit's reset is seconds from now, not an epoch.
    api.add("/x", as_json({}, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "5"}))
    h = http(client, sleeps, clock=lambda: 1000.0)
    h.get_json(f"{api.url}/x")
    assert sleeps == []
    h.get_json(f"{api.url}/x")
    assert sleeps == [5.0]


def test_retry_after_beyond_the_limit_fails_without_waiting(api, client, sleeps):
    api.add("/x", Reply(429, b"{}", {"Retry-After": "3600"}))
    with pytest.raises(SourceError) as e:
        http(client, sleeps, policy=RetryPolicy(max_wait_s=60)).get(f"{api.url}/x")
    assert e.value.status == 429 and e.value.retry_after_s == 3600
    assert sleeps == []


def test_500_then_success_backs_off_with_jitter(api, client, sleeps):
    api.add("/x", Reply(500, b"oops"), Reply(503, b""), OK)
    policy = RetryPolicy(attempts=4, base_delay_s=1.0, max_delay_s=10)
    assert http(client, sleeps, policy=policy).get_json(f"{api.url}/x") == {"ok": True}
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_persistent_500_is_a_source_error_with_the_status(api, client, sleeps):
    api.add("/x", Reply(502, b""))
    with pytest.raises(SourceError) as e:
        http(client, sleeps, policy=RetryPolicy(attempts=3)).get(f"{api.url}/x")
    assert e.value.status == 502
    assert len(api.requests_to("/x")) == 3 and len(sleeps) == 2


def test_4xx_is_not_retried(api, client, sleeps):
    api.add("/x", Reply(403, b'{"message": "forbidden"}'))
    with pytest.raises(SourceError) as e:
        http(client, sleeps).get(f"{api.url}/x")
    assert e.value.status == 403 and "forbidden" in str(e.value)
    assert len(api.requests_to("/x")) == 1 and sleeps == []


def test_truncated_json_is_a_source_error(api, client, sleeps):
    api.add("/x", own("truncated.json"))
    with pytest.raises(SourceError, match="malformed JSON"):
        http(client, sleeps).get_json(f"{api.url}/x")


def test_connection_errors_are_retried_and_bounded(client, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SourceError) as e:
        http(client, sleeps, policy=RetryPolicy(attempts=3)).get(f"http://127.0.0.1:{port}/x")
    assert e.value.status is None and "ConnectError" in str(e.value)
    assert len(sleeps) == 2 and time.monotonic() - start < 5


def test_secrets_in_the_query_stay_out_of_errors(api, client, sleeps):
    api.add("/x", Reply(401, b"{}"))
    with pytest.raises(SourceError) as e:
        http(client, sleeps).get(f"{api.url}/x", params={"access_token": "s3cret"})
    assert "s3cret" not in str(e.value)
