"""Prometheus metrics in the text exposition format, kept in the process (no extra dependency)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts and latency histograms by method, route template and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.hist: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.rate_limited = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            counts = self.hist.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[(method, route)] += seconds
            if status == 429:
                self.rate_limited += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The text format; ``gauges`` maps name -> (help, value) read at scrape time."""
        out = [
            "# HELP undertow_http_requests_total HTTP requests by method, route and status.",
            "# TYPE undertow_http_requests_total counter",
        ]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                out.append(
                    f'undertow_http_requests_total{{method="{m}",route="{_label(r)}",status="{s}"}} {n}'
                )
            out += [
                "# HELP undertow_http_request_duration_seconds Time to the response start.",
                "# TYPE undertow_http_request_duration_seconds histogram",
            ]
            for (m, r), counts in sorted(self.hist.items()):
                lab = f'method="{m}",route="{_label(r)}"'
                for b, n in zip(BUCKETS, counts, strict=False):
                    out.append(
                        f'undertow_http_request_duration_seconds_bucket{{{lab},le="{b}"}} {n}'
                    )
                out.append(
                    f'undertow_http_request_duration_seconds_bucket{{{lab},le="+Inf"}} {counts[-1]}'
                )
                out.append(f"undertow_http_request_duration_seconds_count{{{lab}}} {counts[-1]}")
                out.append(
                    f"undertow_http_request_duration_seconds_sum{{{lab}}} {self.sums[(m, r)]:.6f}"
                )
            out += [
                "# HELP undertow_rate_limited_total Requests refused with 429.",
                "# TYPE undertow_rate_limited_total counter",
                f"undertow_rate_limited_total {self.rate_limited}",
            ]
        for name, (help_, value) in sorted(gauges.items()):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(out) + "\n"


def install(app: FastAPI) -> Metrics:
    """Attach a Metrics object and the middleware that feeds it."""
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # Route templates, not raw paths: /v1/posts/{post_id} is one series, not one per id.
            path = getattr(route, "path", None) or "unmatched"
            metrics.observe(request.method, path, status, time.perf_counter() - start)

    return metrics
