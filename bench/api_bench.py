"""API benchmark: weekly summary latency over the real HTTP stack, and export throughput.

    python -m bench.api_bench --posts 1000000          # generate, then measure
    python -m bench.api_bench --posts 1000000 --reuse  # measure an already generated database

Posts (with classifications and tags) are bulk-loaded into PostgreSQL with COPY, rollups and
their example posts are built with INSERT ... SELECT (checked against the project's own per-hour
recompute and per-day merge on a sample of hours and days), then uvicorn serves the app on
loopback and an httpx client measures GET /v1/trends/weekly against a baseline route that
aggregates the raw posts table, and GET /v1/exports (CSV, Parquet, JSON Lines) in rows per
second with the server's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
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

# Posts per hour x platform x model version in force (trends.rollups.tally_versions).
VERSION_SQL = """
INSERT INTO rollup_version (bucket, platform, model_version, posts, first_post_at,
                            first_classified_at)
SELECT date_trunc('hour', p.created_at), p.platform, c.model_version, count(*),
       min(p.created_at), min(c.created_at)
FROM post p JOIN classification c ON c.id = p.classification_id
WHERE p.deleted_at IS NULL
GROUP BY 1, 2, 3
"""

# The example posts kept with the rollups (trends.rollups.tally_bucket / merge_day_examples):
# per hour x platform x product x theme the top EXAMPLES_KEPT by (human label, the theme's score,
# newest, id), then per day the top of its hours. Generated posts have no targets, so a theme
# counts for every product of its post, as post_tag lists them.
EXAMPLES_SQL = """
INSERT INTO rollup_example (span, bucket, platform, product, theme, rank, post_id, score, human,
                            created_at)
SELECT 'hour', bucket, platform, product, theme, rn, id, score, human, created_at FROM (
    SELECT p.bucket, p.platform, pr.value AS product, th.value AS theme, p.id, p.created_at,
           p.human, coalesce((p.scores ->> th.value)::float8, 1.0) AS score,
           row_number() OVER (
               PARTITION BY p.bucket, p.platform, pr.value, th.value
               ORDER BY p.human DESC, coalesce((p.scores ->> th.value)::float8, 1.0) DESC,
                        p.created_at DESC, p.id DESC) AS rn
    FROM (SELECT post.id, post.platform, post.created_at, post.label_id IS NOT NULL AS human,
                 date_trunc('hour', post.created_at) AS bucket, c.scores
          FROM post JOIN classification c ON c.id = post.classification_id
          WHERE post.deleted_at IS NULL) p
    JOIN post_tag th ON th.post_id = p.id AND th.kind = 'theme'
    JOIN (SELECT post_id, value FROM post_tag WHERE kind = 'product'
          UNION ALL SELECT id, '*' FROM post) pr ON pr.post_id = p.id
) x WHERE rn <= {kept};
INSERT INTO rollup_example (span, bucket, platform, product, theme, rank, post_id, score, human,
                            created_at)
SELECT 'day', day, platform, product, theme, rn, post_id, score, human, created_at FROM (
    SELECT date_trunc('day', bucket) AS day, platform, product, theme, post_id, score, human,
           created_at,
           row_number() OVER (
               PARTITION BY date_trunc('day', bucket), platform, product, theme
               ORDER BY human DESC, score DESC, created_at DESC, post_id DESC) AS rn
    FROM rollup_example WHERE span = 'hour'
) x WHERE rn <= {kept};
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
    # A reused database may predate a migration: bring it up to date (and fill what it adds).
    upgrade(url=url)
    if exists:
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            info["posts"] = conn.execute("SELECT count(*) FROM post").fetchone()[0]  # type: ignore[index]
            has_examples = conn.execute("SELECT 1 FROM rollup_example LIMIT 1").fetchone()
        if not has_examples:
            info["examples_s"] = build_examples(url)
            info["rollups_checked"] = check_rollups(url)
        return info
    t = time.perf_counter()
    info.update(generate(url, n=n))
    info["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(ROLLUP_SQL)
        conn.execute("ANALYZE rollup")
        conn.execute(VERSION_SQL)
        conn.execute("ANALYZE rollup_version")
    info["rollups_s"] = time.perf_counter() - t
    info["examples_s"] = build_examples(url)
    info["rollups_checked"] = check_rollups(url)
    return info


def build_examples(url: str) -> float:
    """Fill rollup_example in bulk; the bulk load leaves every hour's rollups current."""
    from trends.rollups import EXAMPLES_KEPT

    t = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("DELETE FROM rollup_example")
        conn.execute(EXAMPLES_SQL.format(kept=EXAMPLES_KEPT))  # type: ignore[arg-type]
        # Migration 0004 marked the hours of an older database dirty to fill their examples.
        conn.execute("DELETE FROM dirty_bucket")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rollup_example")
    return time.perf_counter() - t


def check_rollups(url: str, hours: int = 24, days: int = 3) -> int:
    """Compare the bulk rollups and examples with trends.rollups on random hours and days."""
    import heapq

    import sqlalchemy as sa
    from sqlmodel import Session

    from core.db import make_engine
    from trends.rollups import EXAMPLE, EXAMPLES_KEPT, ROLLUP, VERSION, tally_bucket, tally_versions

    def stored_examples(session: Session, span: str, bucket: Any) -> dict[Any, list[int]]:
        c = EXAMPLE.c
        out: dict[Any, list[int]] = {}
        for pl, pr, th, pid in session.execute(
            sa.select(c.platform, c.product, c.theme, c.post_id)
            .where(c.span == span, c.bucket == bucket)
            .order_by(c.platform, c.product, c.theme, c.rank)
        ):
            out.setdefault((pl, pr, th), []).append(pid)
        return out

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
            counts, top = tally_bucket(session, bucket)
            assert stored == dict(counts), f"rollups differ at {bucket}"
            versions = session.execute(
                sa.select(VERSION).where(VERSION.c.bucket == bucket)
            ).mappings()
            assert sorted(map(dict, versions), key=str) == sorted(
                tally_versions(session, bucket), key=str
            ), f"version rows differ at {bucket}"
            expected = {k: [r[3] for r in v] for k, v in top.items()}
            assert stored_examples(session, "hour", bucket) == expected, f"examples at {bucket}"
        for bucket in rnd.sample(buckets, min(days, len(buckets))):
            day = bucket.replace(hour=0)
            merged: dict[Any, list[Any]] = {}
            for h in range(24):
                for k, v in tally_bucket(session, day + timedelta(hours=h))[1].items():
                    merged.setdefault(k, []).extend(v)
            expected = {
                k: [r[3] for r in heapq.nlargest(EXAMPLES_KEPT, v)] for k, v in merged.items()
            }
            assert stored_examples(session, "day", day) == expected, f"day examples at {day}"
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


# (granularity, span in days) of the series requests: the dashboard's defaults and a quarter.
SERIES_SPANS = (("hour", 7), ("day", 30), ("day", 90), ("week", 182))


def series_latency(client: httpx.Client, newest: Any, repeat: int) -> list[dict[str, Any]]:
    """GET /v1/trends/series over ranges ending at the newest post, 8 ranges a span, against the
    same series with its version marks from a scan of the posts; the two must agree."""
    rows = []
    for gran, days in SERIES_SPANS:
        ends = [
            newest.replace(minute=0, second=0, microsecond=0) - timedelta(days=7 * k)
            for k in range(8)
        ]
        ranges = [((e - timedelta(days=days)).isoformat(), e.isoformat()) for e in ends]
        new = [
            f"/v1/trends/series?themes=refusal_complaint&granularity={gran}&from={urllib.parse.quote(a)}&to={urllib.parse.quote(b)}"
            for a, b in ranges
        ]
        old = [
            f"/bench/series-scan?granularity={gran}&start={urllib.parse.quote(a)}&end={urllib.parse.quote(b)}"
            for a, b in ranges
        ]
        for n, o in zip(new, old, strict=True):
            got, want = client.get(n).json(), client.get(o).json()
            assert got == want, (n, got.get("model_versions"), want.get("model_versions"))
        rows.append(
            {
                "granularity": gran,
                "days": days,
                "new": latency(client, new, repeat),
                "scan": latency(client, old, repeat),
            }
        )
    return rows


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


def _machine() -> str:
    """bench.common.machine(), saying when the tree holds uncommitted work."""
    text = machine()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if dirty:
        text = re.sub(r"commit (\S+),", r"commit \1 with uncommitted work,", text, count=1)
    return text


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
        n_tags = conn.execute("SELECT count(*) FROM post_tag").fetchone()[0]  # type: ignore[index]
    weeks: list[str] = []
    day = hi - timedelta(days=7)
    while len(weeks) < 20 and day > lo + timedelta(days=14):
        y, w, _ = day.isocalendar()
        weeks.append(f"{y}-W{w:02d}")
        day -= timedelta(days=7)

    loads = {"before the weekly requests": os.getloadavg()}
    server = Server(url)
    try:
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            check = c.get(f"/v1/trends/weekly?week={weeks[0]}").json()
            raw = c.get(f"/bench/weekly-raw?week={weeks[0]}").json()
            assert check["total"] == raw["total"], (check["total"], raw["total"])
            assert [t["count"] for t in check["themes"]] == [t["count"] for t in raw["themes"]]
            shown = [len(t["examples"]) for t in check["themes"]]
            assert all(k == min(3, t["count"]) for k, t in zip(shown, check["themes"], strict=True))
            weekly = latency(c, [f"/v1/trends/weekly?week={w}" for w in weeks], args.repeat)
            weekly_no_ex = latency(
                c, [f"/v1/trends/weekly?week={w}&examples=0" for w in weeks], args.repeat
            )
            baseline = latency(c, [f"/bench/weekly-raw?week={w}" for w in weeks], args.repeat)
            series_rows = series_latency(c, hi, args.repeat)
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
    loads["before the exports"] = os.getloadavg()
    exports = {fmt: export_run(url, key, fmt, params) for fmt in args.formats.split(",") if fmt}
    loads["at the end"] = os.getloadavg()

    lines = [
        f"Posts in PostgreSQL: {n_posts:,} with one classification each, "
        f"{n_tags:,} tags; spread over {(hi - lo).days} days.",
    ]
    if "generate_s" in info:
        lines.append(
            f"Generation (COPY): {info['generate_s']:.0f} s; rollups (INSERT ... SELECT): "
            f"{info['rollups_s']:.0f} s."
        )
    if "examples_s" in info:
        lines.append(
            f"Example posts kept with the rollups (`rollup_example`, INSERT ... SELECT): "
            f"{info['examples_s']:.0f} s; {info['rollups_checked']} random hours checked equal to "
            "`trends.rollups.tally_bucket` and `tally_versions` (counts, examples, version rows) and 3 random days to the merge "
            "of their hours."
        )
    lines += [
        "Load average (1 / 5 / 15 min; other jobs share this machine): "
        + "; ".join(f"{k} {v[0]:.1f} / {v[1]:.1f} / {v[2]:.1f}" for k, v in loads.items())
        + ".",
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
        f"### GET /v1/trends/series (refusal_complaint; 8 ranges per span ending at the newest post, {args.repeat} passes)",
        "",
        "Version marks from `rollup_version` against the same series with its marks from a scan "
        "of the range's posts (the route before `rollup_version`); both answers compared equal "
        "for every range first.",
        "",
        "| granularity | span | p50 ms | p95 ms | baseline (scan) p50 ms | p95 ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['granularity']} | {r['days']} days | {r['new']['p50']:.1f} | {r['new']['p95']:.1f} | "
            f"{r['scan']['p50']:.1f} | {r['scan']['p95']:.1f} |"
            for r in series_rows
        ),
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
    slow = [
        f for f in ("csv", "parquet") if f in exports and n_export / exports[f]["seconds"] < 50_000
    ]
    lines += [
        "",
        "Target: >= 50,000 rows/s for CSV and Parquet. "
        + (f"Not met: {', '.join(slow)}." if slow else "Met.")
        + " Each keyset page of 50,000 rows is one `COPY (SELECT ...) TO STDOUT` in its own "
        "short transaction, two pages at a time on two connections (page bounds from an index "
        "walk); PostgreSQL formats CSV and JSON Lines itself (neutralized cells, labels in force) "
        "and the server passes the bytes on in 256 KB chunks; Parquet is parsed from the same "
        "COPY by Arrow's CSV and JSON readers, one row group per 4 MB of COPY output.",
        "",
        f"Command: `python -m bench.api_bench --posts {args.posts}"
        + (f" --export-days {args.export_days}" if args.export_days else "")
        + f"`; total run {time.perf_counter() - t0:.0f} s.",
    ]
    path = write_result(
        "api",
        "API: weekly summary and series latency, export throughput",
        "\n".join(lines),
        machine=_machine(),
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
