"""The shared httpx client and a polite request helper: timeouts, bounded retries, rate limits."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.logging import get_logger
from core.settings import Settings, get_settings

log = get_logger(__name__)

SleepFn = Callable[[float], None]

# Header pairs (remaining, reset) in the order they are consulted.
_RATE_HEADERS = (
    ("x-ratelimit-remaining", "x-ratelimit-reset"),  # Reddit
    ("x-rate-limit-remaining", "x-rate-limit-reset"),  # X
    ("ratelimit-remaining", "ratelimit-reset"),
)
# A reset value above this is an epoch timestamp (X, Bluesky); below it, seconds to wait (Reddit).
_EPOCH_THRESHOLD = 1_000_000_000


class SourceError(Exception):
    """A response that stays bad after retries, or a whole response that cannot be read."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.url:
            parts.append(f"url={self.url}")
        return " ".join(parts)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in total, backoff base and cap, the longest wait we accept."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # A Retry-After or rate-limit reset further away than this fails the run instead of blocking.
    max_wait_s: float = 300.0


def make_client(
    *, settings: Settings | None = None, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The httpx client every source shares: timeouts, User-Agent, redirects followed."""
    s = settings or get_settings()
    return httpx.Client(
        timeout=httpx.Timeout(s.http_timeout_s, connect=min(10.0, s.http_timeout_s)),
        headers={"User-Agent": s.http_user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=True,
        transport=transport,
    )


def _safe_url(url: httpx.URL) -> str:
    """The URL without its query string, which may carry tokens."""
    return str(url.copy_with(query=None))


def _header_float(headers: httpx.Headers, name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def retry_after_s(headers: httpx.Headers, *, now: float) -> float | None:
    """Seconds to wait according to Retry-After (seconds or an HTTP date), if present."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def rate_limit_wait_s(headers: httpx.Headers, *, now: float) -> float | None:
    """Seconds until the rate-limit window resets when the platform says none are left."""
    for remaining_name, reset_name in _RATE_HEADERS:
        remaining = _header_float(headers, remaining_name)
        reset = _header_float(headers, reset_name)
        if remaining is None or reset is None or remaining > 0:
            continue
        wait = reset - now if reset > _EPOCH_THRESHOLD else reset
        return max(0.0, wait)
    return None


class Http:
    """Requests for one source through the shared client, with retries and rate-limit pauses."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        source: str,
        sleep: SleepFn | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.source = source
        self.sleep = sleep if sleep is not None else time.sleep
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self._not_before = 0.0

    def _backoff(self, attempt: int) -> float:
        cap = min(self.policy.max_delay_s, self.policy.base_delay_s * 2**attempt)
        return random.uniform(cap / 2, cap)  # "equal jitter": never zero, never above the cap

    def _wait(self, seconds: float, *, url: str, status: int | None) -> None:
        if seconds > self.policy.max_wait_s:
            raise SourceError(
                "rate limited for longer than we wait",
                status=status,
                url=url,
                retry_after_s=seconds,
            )
        if seconds > 0:
            log.info("ingest.http.wait", source=self.source, url=url, seconds=round(seconds, 2))
            self.sleep(seconds)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request politely; return a 2xx/3xx (or an allowed status), else SourceError."""
        req_params = {k: v for k, v in (params or {}).items() if v is not None}
        last_error: str = ""
        last_status: int | None = None
        safe = url.split("?", 1)[0]
        for attempt in range(self.policy.attempts):
            pause = self._not_before - self.clock()
            if pause > 0:
                self._wait(pause, url=safe, status=None)
            try:
                response = self.client.request(
                    method,
                    url,
                    params=req_params or None,
                    headers=headers,
                    data=data,
                    json=json_body,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                )
            except (httpx.TransportError, httpx.DecodingError) as e:
                last_error, last_status = f"{type(e).__name__}: {e}", None
                log.warning(
                    "ingest.http.transport_error",
                    source=self.source,
                    url=safe,
                    attempt=attempt + 1,
                    error=type(e).__name__,
                )
                if attempt + 1 < self.policy.attempts:
                    self.sleep(self._backoff(attempt))
                continue
            safe = _safe_url(response.url)
            now = self.clock()
            status = response.status_code
            limit_wait = rate_limit_wait_s(response.headers, now=now)
            if status < 400 or status in ok_statuses:
                if limit_wait is not None:
                    # The window is used up: the next request waits for its reset.
                    self._not_before = now + limit_wait
                return response
            last_status, last_error = status, f"HTTP {status}"
            if status == 429:
                wait = retry_after_s(response.headers, now=now)
                if wait is None:
                    wait = limit_wait if limit_wait is not None else self._backoff(attempt)
                log.warning(
                    "ingest.http.rate_limited",
                    source=self.source,
                    url=safe,
                    attempt=attempt + 1,
                    wait_s=round(wait, 2),
                )
                if attempt + 1 < self.policy.attempts:
                    self._wait(wait, url=safe, status=status)
                continue
            if status >= 500:
                log.warning(
                    "ingest.http.server_error",
                    source=self.source,
                    url=safe,
                    status=status,
                    attempt=attempt + 1,
                )
                if attempt + 1 < self.policy.attempts:
                    wait = retry_after_s(response.headers, now=now)
                    self.sleep(
                        min(wait, self.policy.max_delay_s) if wait else self._backoff(attempt)
                    )
                continue
            raise SourceError(_error_message(response), status=status, url=safe)
        raise SourceError(
            f"gave up after {self.policy.attempts} attempts: {last_error}",
            status=last_status,
            url=safe,
        )

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET through :meth:`request`."""
        return self.request("GET", url, **kwargs)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and decode a JSON body; an unreadable body is a SourceError."""
        return decode_json(self.request("GET", url, **kwargs))


def decode_json(response: httpx.Response) -> Any:
    """The JSON body of a response, or SourceError when it is not JSON."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(
            f"malformed JSON response: {e}",
            status=response.status_code,
            url=_safe_url(response.url),
        ) from e


def _error_message(response: httpx.Response) -> str:
    """A short, secret-free description of an error response."""
    detail = ""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "title", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                detail = value[:200]
                break
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
