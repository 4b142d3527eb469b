"""Per-key request limits: a token bucket in the process, or a shared window in Redis."""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

from core.errors import RateLimited
from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)


class Limiter(Protocol):
    def check(self, key: str) -> None:
        """Raise RateLimited (with retry_after) when ``key`` has used up its allowance."""


class TokenBucket:
    """In-process: ``per_minute`` tokens per key, refilled continuously (one API process)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
                raise RateLimited(
                    f"rate limit of {int(self.capacity)} requests per minute for this key "
                    f"exceeded; retry in {wait} s",
                    retry_after=wait,
                )
            self._buckets[key] = (tokens - 1.0, now)


class RedisWindow:
    """Shared by every API replica: a counter per key and minute in Redis."""

    def __init__(self, url: str, per_minute: int) -> None:
        import redis

        self.limit = per_minute
        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._fallback = TokenBucket(per_minute)

    def check(self, key: str) -> None:
        import redis

        now = time.time()
        window = int(now // 60)
        name = f"undertow:ratelimit:{key}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, 120)
            used = int(pipe.execute()[0])
        except redis.RedisError as e:
            # Redis down must not take the API down: fall back to this process's bucket.
            log.warning("api.ratelimit_redis_down", error=type(e).__name__)
            self._fallback.check(key)
            return
        if used > self.limit:
            wait = max(1, math.ceil((window + 1) * 60 - now))
            raise RateLimited(
                f"rate limit of {self.limit} requests per minute for this key exceeded; "
                f"retry in {wait} s",
                retry_after=wait,
            )


def make_limiter(settings: Settings) -> Limiter:
    """Redis-backed when ``redis_url`` is set, else in-process."""
    if settings.redis_url:
        return RedisWindow(settings.redis_url, settings.rate_limit_per_minute)
    return TokenBucket(settings.rate_limit_per_minute)
