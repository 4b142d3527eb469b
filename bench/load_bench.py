"""Load: the API under a fixed arrival rate for 60 s while ingest and classification run.

    python -m bench.load_bench --posts 300000 --rate 5 --reuse

PostgreSQL holds ``--posts`` generated posts (bench.api_bench.prepare: COPY + bulk rollups).
Then, at the same time, on this machine:

- uvicorn serves the app on loopback (one process, as ``undertow api`` runs it);
- a feeder appends new posts to a JSON Lines file (``--feed`` posts/s), and a ``file`` source
  reads it: the benchmark sends ``ingest.run_source`` every ``--ingest-every`` seconds, as the
  scheduler would, to a Celery ingest worker (queues ingest, default: rollups too);
- a Celery classify worker (Redis broker, db 9) labels every new post with the transformers
  classifier (``--classifier``), pinned to one core so it cannot starve the API;
- locust, headless, sends ``--rate`` requests per second (constant_throughput users) for
  ``--seconds``: 70% GET /v1/trends/weekly, 10% each /v1/trends/series, /v1/posts,
  /v1/posts/{id}.

Writes p50/p95/p99 per endpoint, errors, and what the pipeline did meanwhile to
bench/results/load.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.api_bench import REPO, Server, _db_url, make_key, prepare
from bench.common import machine, write_result
from bench.generate import _BODIES, _OPENERS, _WORDS, PLATFORMS, PRODUCTS

BROKER = os.environ.get("UNDERTOW_BENCH_BROKER", "redis://127.0.0.1:6379/9")
SOURCE = "load-feed"


def _feed(path: Path, rate: float, stop: threading.Event, counter: list[int]) -> None:
    """Append ``rate`` new posts a second (written once a second) until ``stop``."""
    rnd = random.Random(11)
    with path.open("a", encoding="utf-8") as fh:
        while not stop.is_set():
            tick = time.monotonic()
            now = datetime.now(UTC)
            lines = []
            for _ in range(int(rate)):
                i = counter[0] = counter[0] + 1
                product = rnd.choice(PRODUCTS)
                body = rnd.choice(_BODIES).format(p=product.title(), w=rnd.choice(_WORDS))
                lines.append(
                    json.dumps(
                        {
                            "platform": PLATFORMS[i % len(PLATFORMS)],
                            "external_id": f"load-{int(time.time())}-{i}",
                            "text": f"{rnd.choice(_OPENERS)} {body} (load {i})".strip(),
                            "created_at": (
                                now - timedelta(seconds=rnd.randint(0, 600))
                            ).isoformat(),
                            "author_handle": f"loaduser{i % 997}",
                        }
                    )
                    + "\n"
                )
            fh.write("".join(lines))
            fh.flush()
            stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


def _worker(
    env: dict[str, str], queues: str, log: Path, *, cpus: str | None, nice: int
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cli.main", "worker", "--queues", queues, "--concurrency", "1"]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pipeline_counts(pg: str, since: datetime) -> tuple[int, int]:
    """Fed posts of this run stored, and how many of them are classified."""
    with psycopg.connect(pg) as conn:
        row = conn.execute(
            "SELECT count(*), count(classification_id) FROM post "
            "WHERE source = %s AND collected_at >= %s",
            (SOURCE, since),
        ).fetchone()
    return int(row[0]), int(row[1])  # type: ignore[index]


def _locust(
    prefix: Path, base: str, rate: int, seconds: int, env: dict[str, str]
) -> dict[str, Any]:
    """One headless locust run; its table rows, totals and weekly p95."""
    cmd = [
        sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "load_locustfile.py"),
        "--headless", "--users", str(rate), "--spawn-rate", str(rate),
        "--run-time", f"{seconds}s", "--host", base, "--csv", str(prefix),
        "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING",
    ]  # fmt: skip
    load_start = os.getloadavg()
    out = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode not in (0, 1):  # 1: some requests failed (reported in the table)
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit(f"locust exited {out.returncode}")
    with Path(f"{prefix}_stats.csv").open() as fh:
        stats = list(csv.DictReader(fh))
    res: dict[str, Any] = {
        "rows": [],
        "requests": 0,
        "errors": 0,
        "weekly_p95": float("nan"),
        "load": (load_start, os.getloadavg()),
        "failures": Path(f"{prefix}_failures.csv").read_text().strip().splitlines()[1:6],
    }
    for s in stats:
        n, fails = int(s["Request Count"]), int(s["Failure Count"])
        if s["Name"] == "Aggregated":
            res["requests"], res["errors"] = n, fails
        elif s["Name"] == "/v1/trends/weekly":
            res["weekly_p95"] = float(s["95%"])
        res["rows"].append(
            f"| {s['Name']} | {n:,} | {fails} | {s['50%']} | {s['95%']} | {s['99%']} | "
            f"{float(s['Average Response Time']):.0f} | {float(s['Requests/s']):.1f} |"
        )
    return res


def _table(title: str, res: dict[str, Any]) -> list[str]:
    (a, b) = res["load"]
    return [
        f"### {title}",
        "",
        f"Load average (1/5/15 min) before: {a[0]:.1f} / {a[1]:.1f} / {a[2]:.1f}; "
        f"after: {b[0]:.1f} / {b[1]:.1f} / {b[2]:.1f}.",
        "",
        "| endpoint | requests | errors | p50 ms | p95 ms | p99 ms | mean ms | req/s |",
        "|---|---|---|---|---|---|---|---|",
        *res["rows"],
        "",
        f"Errors: {res['errors']} of {res['requests']:,}"
        + (" (first kinds: " + "; ".join(res["failures"]) + ")" if res["failures"] else "")
        + ". Target: zero errors and p95 of the weekly summary under 100 ms: "
        + ("met." if res["errors"] == 0 and res["weekly_p95"] < 100 else "not met."),
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=300_000)
    ap.add_argument("--db", default="undertow_load")
    ap.add_argument("--reuse", action="store_true", help="Keep an existing bench database.")
    ap.add_argument("--rate", type=int, default=5, help="API requests per second.")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--feed", type=float, default=5.0, help="New posts per second to ingest.")
    ap.add_argument("--ingest-every", type=float, default=5.0)
    ap.add_argument("--classifier", choices=["transformers", "rules"], default="transformers")
    ap.add_argument("--warmup", type=int, default=20, help="Seconds of pipeline before the load.")
    ap.add_argument(
        "--nice",
        type=int,
        default=10,
        help="Run the workers at this niceness, so the API's requests get the CPU first.",
    )
    ap.add_argument(
        "--alone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Then the same load with the workers stopped, for comparison.",
    )
    args = ap.parse_args()

    import redis
    from celery import Celery

    t0 = time.perf_counter()
    started = datetime.now(UTC)
    info = prepare(args.db, args.posts, args.reuse)
    url = _db_url(args.db)
    pg = url.replace("+psycopg", "")
    from core.migrate import upgrade

    upgrade(url=url)  # a reused database follows the schema of this checkout
    key = make_key(url)
    with psycopg.connect(pg) as conn:
        conn.execute("DELETE FROM source WHERE name = %s", (SOURCE,))  # a fresh cursor
        conn.commit()
        n_posts, max_id = conn.execute("SELECT count(*), max(id) FROM post").fetchone()  # type: ignore[misc]
        hi = conn.execute(
            "SELECT max(created_at) FROM post WHERE source <> %s", (SOURCE,)
        ).fetchone()[0]  # type: ignore[index]
    today = datetime.now(UTC)
    weeks = []
    day = max(hi, today)
    for _ in range(12):  # this week (being ingested into) and the 11 before it
        y, w, _ = day.isocalendar()
        weeks.append(f"{y}-W{w:02d}")
        day -= timedelta(days=7)
    series_from = (today - timedelta(days=90)).date().isoformat()

    redis.Redis.from_url(BROKER).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="undertow-load-"))
    feed_path = tmp / "feed.jsonl"
    feed_path.touch()
    source = {
        "name": SOURCE,
        "kind": "file",
        "interval_s": 60,
        "options": {"path": str(feed_path), "format": "jsonl", "platform": "reddit"},
    }
    env = {
        **os.environ,
        "UNDERTOW_DATABASE_URL": url,
        "UNDERTOW_BROKER_URL": BROKER,
        "UNDERTOW_DATA_DIR": str(tmp / "var"),
        "UNDERTOW_SOURCES": json.dumps([source]),
        "UNDERTOW_CLASSIFIER": args.classifier,
        "UNDERTOW_LOG_LEVEL": "WARNING",
        "UNDERTOW_AUTHOR_KEY_SECRET": "load-bench-secret",
    }
    ingest_worker = _worker(env, "ingest,default", tmp / "ingest.log", cpus=None, nice=args.nice)
    # One core for the model: torch sizes its thread pool from the affinity mask.
    classify_worker = _worker(env, "classify", tmp / "classify.log", cpus="1", nice=args.nice)
    celery = Celery(broker=BROKER)
    stop = threading.Event()
    fed = [0]
    feeder = threading.Thread(target=_feed, args=(feed_path, args.feed, stop, fed), daemon=True)

    def scheduler() -> None:
        while not stop.wait(args.ingest_every):
            celery.send_task("ingest.run_source", args=[SOURCE], queue="ingest")

    ticker = threading.Thread(target=scheduler, daemon=True)
    server = Server(url)
    lenv = {
        **os.environ,
        "LOAD_API_KEY": key,
        "LOAD_WEEKS": ",".join(weeks),
        "LOAD_MAX_POST_ID": str(max_id),
        "LOAD_SERIES_FROM": series_from,
    }
    try:
        feeder.start()
        ticker.start()
        # Let the workers load the model and reach a steady state before measuring.
        time.sleep(args.warmup)
        before = _pipeline_counts(pg, started)
        busy = _locust(tmp / "busy", server.base, args.rate, args.seconds, lenv)
        after = _pipeline_counts(pg, started)
        stop.set()
        _stop(ingest_worker)
        _stop(classify_worker)
        alone = None
        if args.alone:
            alone = _locust(tmp / "alone", server.base, args.rate, args.seconds, lenv)
        server_rss = server.peak_rss_mb()
    finally:
        stop.set()
        server.stop()
        _stop(ingest_worker)
        _stop(classify_worker)
        redis.Redis.from_url(BROKER).flushdb()

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        f"Code: commit {commit} with uncommitted work (issue 8 in progress).",
        f"Database: PostgreSQL, {n_posts:,} posts before the run (generated by `bench.generate`, "
        f"rollups built in bulk{', reused' if 'generate_s' not in info else ''}).",
        f"Load: locust {args.rate} users x `constant_throughput(1)` = {args.rate} requests/s "
        f"offered for {args.seconds} s, headless, on loopback against one uvicorn process "
        "(70% weekly summary, 10% each series over 90 days, post list, single post).",
        f"Pipeline: a feeder appended {args.feed:g} posts/s to a JSON Lines file; "
        f"`ingest.run_source` every {args.ingest_every:g} s on an ingest worker (queues "
        f"ingest,default); a classify worker with the {args.classifier} classifier (its default "
        "encoder backend) pinned to "
        f"one core (`taskset -c 1`); both workers at nice {args.nice}; Redis broker db 9. "
        f"During the measured {args.seconds} s: {after[0] - before[0]:,} posts ingested, "
        f"{after[1] - before[1]:,} classified (of this run's fed posts, {after[0]:,} stored and "
        f"{after[1]:,} classified when the load ended).",
        "Other helpers' test and benchmark jobs shared this 2-core machine during the run "
        "(see the load averages): latencies include waiting for a CPU.",
        f"API server peak RSS: {server_rss:.0f} MB.",
        "",
        *_table("With ingest and classification running", busy),
    ]
    if alone is not None:
        lines += _table("The same load, API alone (workers stopped)", alone)
    lines += [
        "Locust rounds percentiles above 100 ms to 10 ms. "
        f"Command: `python -m bench.load_bench --posts {args.posts} --rate {args.rate} "
        f"--seconds {args.seconds} --feed {args.feed:g} --classifier {args.classifier} "
        f"--nice {args.nice}`; "
        f"total run {time.perf_counter() - t0:.0f} s.",
    ]
    path = write_result(
        "load",
        "Load: API under a fixed arrival rate with ingest and classification running",
        "\n".join(lines),
        machine=machine(),
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
