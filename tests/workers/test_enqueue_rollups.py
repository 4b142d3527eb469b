"""Rollup refreshes are coalesced on a Redis broker: one queued refresh covers every batch before it."""

from __future__ import annotations

import redis

from core.settings import get_settings
from workers import enqueue


def test_one_refresh_is_queued_until_it_starts(monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(enqueue.celery_app, "send_task", lambda name, **kw: sent.append((name, kw)))
    url = get_settings().celery_broker_url
    assert url.startswith("redis://")
    client = redis.Redis.from_url(url)
    client.delete(enqueue.ROLLUPS_PENDING_KEY)
    try:
        for _ in range(5):  # five classify batches committed while no refresh has started
            enqueue.enqueue_rollups()
        assert [name for name, _ in sent] == ["trends.refresh_rollups"]
        assert sent[0][1]["countdown"] == enqueue.ROLLUPS_DEBOUNCE_S
        ttl = client.ttl(enqueue.ROLLUPS_PENDING_KEY)
        assert 0 < ttl <= enqueue.ROLLUPS_PENDING_TTL_S  # a lost message only delays the next

        enqueue.rollups_refresh_started()  # the refresh reads the dirty hours from here on
        enqueue.enqueue_rollups()
        assert len(sent) == 2
    finally:
        client.delete(enqueue.ROLLUPS_PENDING_KEY)
