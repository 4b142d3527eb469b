"""API benchmark: weekly summary latency over the real HTTP stack, and export throughput.

    python -m bench.api_bench --posts 1000000          # generate, then measure
    python -m bench.api_bench --posts 1000000 --reuse  # measure an already generated database

Posts (with classifications and tags) are bulk-loaded into PostgreSQL with COPY, rollups are
built with one INSERT ... SELECT (checked against the project's own per-hour recompute on a
sample of hours), then uvicorn serves the app on loopback and an httpx client measures
GET /v1/trends/weekly against a baseline route that aggregates the raw posts table, and
GET /v1/exports (CSV, Parquet) in rows per second with the server's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import machine, write_result
from bench.generate import generate

REPO = Path(__file__).resolve().parents[1]
ADMIN = os.environ.get("UNDERTOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

ROLLUP_SQL = """
INSERT INTO rollup (bucket, platform, product, theme, count)
WITH p AS (
    SELECT id, platform, date_trunc('hour', created_at) AS bucket
    FROM post WHERE deleted_at IS NULL AND classification_id IS NOT NULL
),
th AS (SELECT post_id, value FROM post_tag WHERE kind = 'theme'
       UNION ALL SELECT id, '*' FROM post),
pr AS (SELECT post_id, value FROM post_tag WHERE kind = 'product'
       UNION ALL SELECT id, '*' FROM post)
SELECT p.bucket, p.platform, pr.value, th.value, count(*)
FROM p JOIN th ON th.post_id = p.id JOIN pr ON pr.post_id = p.id
GROUP BY 1, 2, 3, 4
"""


def _db_url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def prepare(name: str, n: int, reuse: bool) -> dict[str, Any]:
    """Create (or reuse) the database with ``n`` posts and their rollups; returns timings."""
    from core.migrate import upgrade

    url = _db_url(name)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not reuse:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    info: dict[str, Any] = {}
    if exists:
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            info["posts"] = conn.execute("SELECT count(*) FROM post").fetchone()[0]  # type: ignore[index]
        return info
    upgrade(url=url)
    t = time.perf_counter()
    info.update(generate(url, n=n))
    info["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(ROLLUP_SQL)
        conn.execute("ANALYZE rollup")
    info["rollups_s"] = time.perf_counter() - t
    info["rollups_checked"] = check_rollups(url)
    return info


def check_rollups(url: str, hours: int = 24) -> int:
    """Compare the bulk rollups with trends.rollups.count_bucket on random hours."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from core.db import make_engine
    from trends.rollups import ROLLUP, count_bucket

    engine = make_engine(url)
    rnd = random.Random(3)
    with Session(engine) as session:
        buckets = [b for (b,) in session.execute(sa.select(ROLLUP.c.bucket).distinct().limit(5000))]
        for bucket in rnd.sample(buckets, min(hours, len(buckets))):
            stored = {
                (pl, pr, th): n
                for pl, pr, th, n in session.execute(
                    sa.select(
                        ROLLUP.c.platform, ROLLUP.c.product, ROLLUP.c.theme, ROLLUP.c.count
                    ).where(ROLLUP.c.bucket == bucket)
                )
            }
            assert stored == dict(count_bucket(session, bucket)), f"rollups differ at {bucket}"
    engine.dispose()
    return hours


def make_key(url: str) -> str:
    from sqlmodel import Session

    from core.db import make_engine
    from core.keys import create_key

    engine = make_engine(url)
    with Session(engine) as session:
        _, key = create_key(session=session, name="bench", scopes=["admin"])
        session.commit()
    engine.dispose()
    return key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn in a child process on loopback."""

    def __init__(self, url: str) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "UNDERTOW_DATABASE_URL": url,
            "UNDERTOW_RATE_LIMIT_PER_MINUTE": "1000000",
            "UNDERTOW_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.api_app:app", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            cwd=REPO,
            env=env,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("uvicorn did not start")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(client: httpx.Client, paths: list[str], repeat: int) -> dict[str, float]:
    """p50/p95/mean in ms over ``repeat`` passes of ``paths`` (after one warm-up pass)."""
    for p in paths:
        client.get(p).raise_for_status()
    times = []
    for _ in range(repeat):
        for p in paths:
            t = time.perf_counter()
            r = client.get(p)
            times.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
    return {
        "n": len(times),
        "p50": _pct(times, 0.5),
        "p95": _pct(times, 0.95),
        "mean": statistics.fmean(times),
    }


def export_run(url: str, key: str, fmt: str, params: dict[str, str]) -> dict[str, float]:
    """Stream one export from a fresh server; rows/s and the server's peak RSS."""
    server = Server(url)
    try:
        base_rss = server.peak_rss_mb()
        headers = {"Authorization": f"Bearer {key}"}
        t = time.perf_counter()
        size = 0
        with httpx.stream(
            "GET",
            f"{server.base}/v1/exports",
            params={"format": fmt, **params},
            headers=headers,
            timeout=600,
        ) as r:
            r.raise_for_status()
            for chunk in r.iter_raw():
                size += len(chunk)
        elapsed = time.perf_counter() - t
        return {
            "seconds": elapsed,
            "bytes": size,
            "rss_start": base_rss,
            "rss_peak": server.peak_rss_mb(),
        }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--db", default="undertow_bench")
    ap.add_argument("--reuse", action="store_true", help="Keep an existing bench database.")
    ap.add_argument("--repeat", type=int, default=10, help="Passes over the 20 weeks.")
    ap.add_argument(
        "--export-days", type=int, default=0, help="Export only the last N days (0: all)."
    )
    ap.add_argument("--formats", default="csv,parquet,jsonl", help="Export formats to measure.")
    args = ap.parse_args()

    t0 = time.perf_counter()
    info = prepare(args.db, args.posts, args.reuse)
    url = _db_url(args.db)
    key = make_key(url)
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        n_posts = conn.execute("SELECT count(*) FROM post").fetchone()[0]  # type: ignore[index]
        lo, hi = conn.execute("SELECT min(created_at), max(created_at) FROM post").fetchone()  # type: ignore[misc]
    weeks: list[str] = []
    day = hi - timedelta(days=7)
    while len(weeks) < 20 and day > lo + timedelta(days=14):
        y, w, _ = day.isocalendar()
        weeks.append(f"{y}-W{w:02d}")
        day -= timedelta(days=7)

    server = Server(url)
    try:
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            check = c.get(f"/v1/trends/weekly?week={weeks[0]}").json()
            raw = c.get(f"/bench/weekly-raw?week={weeks[0]}").json()
            assert check["total"] == raw["total"], (check["total"], raw["total"])
            assert [t["count"] for t in check["themes"]] == [t["count"] for t in raw["themes"]]
            weekly = latency(c, [f"/v1/trends/weekly?week={w}" for w in weeks], args.repeat)
            weekly_no_ex = latency(
                c, [f"/v1/trends/weekly?week={w}&examples=0" for w in weeks], args.repeat
            )
            baseline = latency(c, [f"/bench/weekly-raw?week={w}" for w in weeks], args.repeat)
    finally:
        server.stop()

    params: dict[str, str] = {}
    if args.export_days:
        params["since"] = (hi - timedelta(days=args.export_days)).isoformat()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        q = "SELECT count(*) FROM post" + (" WHERE created_at >= %s" if params else "")
        n_export = conn.execute(
            q, (hi - timedelta(days=args.export_days),) if params else ()
        ).fetchone()[0]  # type: ignore[index]
    exports = {fmt: export_run(url, key, fmt, params) for fmt in args.formats.split(",") if fmt}
    load = os.getloadavg()

    lines = [
        f"Posts in PostgreSQL: {n_posts:,} with one classification each, "
        f"{info.get('tags', 'n/a')} tags; spread over {(hi - lo).days} days.",
    ]
    if "generate_s" in info:
        lines.append(
            f"Generation (COPY): {info['generate_s']:.0f} s; rollups (INSERT ... SELECT): "
            f"{info['rollups_s']:.0f} s; {info['rollups_checked']} random hours checked equal to "
            "`trends.rollups.count_bucket`."
        )
    lines += [
        f"Load average at the end (other jobs share this machine): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        "",
        f"### GET /v1/trends/weekly (uvicorn on loopback, httpx, sequential, {weekly['n']} requests over {len(weeks)} weeks)",
        "",
        "| request | p50 ms | p95 ms | mean ms |",
        "|---|---|---|---|",
        f"| `/v1/trends/weekly` (rollups, 3 examples per theme, coverage) | {weekly['p50']:.1f} | {weekly['p95']:.1f} | {weekly['mean']:.1f} |",
        f"| `/v1/trends/weekly?examples=0` (rollups, coverage) | {weekly_no_ex['p50']:.1f} | {weekly_no_ex['p95']:.1f} | {weekly_no_ex['mean']:.1f} |",
        f"| baseline: same counts aggregated from raw `post` + `post_tag` | {baseline['p50']:.1f} | {baseline['p95']:.1f} | {baseline['mean']:.1f} |",
        "",
        "Target: p95 <= 50 ms. "
        + ("Met." if weekly["p95"] <= 50 else f"Not met ({weekly['p95']:.0f} ms)."),
        "",
        f"### GET /v1/exports ({n_export:,} rows, fresh server per format, streamed to the client)",
        "",
        "| format | rows/s | MB/s | seconds | server peak RSS MB (at start) |",
        "|---|---|---|---|---|",
    ]
    for fmt, e in exports.items():
        lines.append(
            f"| {fmt} | {n_export / e['seconds']:,.0f} | {e['bytes'] / e['seconds'] / 1e6:.1f} | "
            f"{e['seconds']:.1f} | {e['rss_peak']:.0f} ({e['rss_start']:.0f}) |"
        )
    lines += [
        "",
        "Target: >= 50,000 rows/s. Rows are read in keyset pages of 5,000 (the next page is "
        "fetched in a thread while this one is encoded) and written as they come; Parquet gets "
        "one row group per page.",
        "",
        f"Command: `python -m bench.api_bench --posts {args.posts}"
        + (f" --export-days {args.export_days}" if args.export_days else "")
        + f"`; total run {time.perf_counter() - t0:.0f} s.",
    ]
    path = write_result(
        "api",
        "API: weekly summary latency and export throughput",
        "\n".join(lines),
        machine=machine(),
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
