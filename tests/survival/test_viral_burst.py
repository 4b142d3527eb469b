"""A 10x burst: a viral Reddit thread of 20,000 replies, served over loopback HTTP.

Breaks: the usual inflow of a couple of posts an hour meets one thread whose comment tree is
paged through ``/comments`` (500 comments and a ``more`` stub) and 195 ``/api/morechildren``
calls. Asserts that the ingest stores every reply once, that a real Celery worker (Redis db 9,
rules classifier) drains the queue with every post classified once, that the ingest process
and the worker stay under stated memory bounds, and that an alert rule on the thread's theme
opens in the first detection run after the burst's hour (and not before the burst).
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.models import Alert, AlertRule, Classification, Post, Rollup, Source
from tests.ingest.conftest import ApiServer, as_json
from tests.survival.conftest import base_env, wait_for

pytestmark = pytest.mark.survival

BROKER = "redis://127.0.0.1:6379/9"
REPLIES = 20_000
FIRST_TREE = 500  # what one /comments call returns; the rest hides behind "more" stubs
ARTICLE = "1vrl42"
LINK = f"t3_{ARTICLE}"
SUB = "ClaudeAI"
# Stated bounds (peak RSS). Measured on the 2-core dev machine: the ingest process ~110 MB (83 MB
# of it is the imports; the thread goes on in batches of 1,000; held whole, it peaked at 156 MB
# and grows with the thread), the worker ~170 MB.
INGEST_RSS_MB = 140
WORKER_RSS_MB = 300

_LOST = (
    "Claude wiped my whole project history overnight",
    "same here, lost three hours of research in that chat",
    "my entire essay is gone, the conversation just vanished",
    "It deleted my code notes from the project too",
    "Gone. Weeks of chats erased after the update",
    "lost the memory of my thesis project, no warning",
)
_OTHER = (
    "have you tried exporting your data from the settings page?",
    "this is why I keep local backups of everything",
    "support told me it is a sync bug and they are on it",
    "mine still shows up on the desktop app, weird",
    "which plan are you on? pro accounts seem fine",
    "can confirm it happened to a friend as well",
    "the status page says all systems operational lol",
    "is there an official answer anywhere yet",
)
_TAILS = ("", "", " :(", " ugh", " — anyone else?", " (EU region)", " since this morning")


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _thread(hour: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The submission and its replies as Reddit `t1` data (parents before children)."""
    rnd = random.Random(8)
    start = hour.timestamp()
    post = {
        "id": ARTICLE,
        "name": LINK,
        "title": "Claude deleted my entire project history, 6 months of work gone",
        "selftext": "Woke up and every chat in my project is gone. Is this happening to anyone?",
        "author": "throwaway_dev_42",
        "subreddit": SUB,
        "created_utc": start + 60,
        "score": 9000,
        "num_comments": REPLIES,
        "permalink": f"/r/{SUB}/comments/{ARTICLE}/claude_deleted_my_entire_project/",
    }
    replies: list[dict[str, Any]] = []
    for i in range(REPLIES):
        cid = _b36(36**5 + i)
        # A third reply to the post, the rest to an earlier reply (threads grow under comments).
        parent = LINK if i < 100 or rnd.random() < 0.33 else replies[rnd.randrange(i)]["name"]
        pool = _LOST if rnd.random() < 0.4 else _OTHER
        body = f"{rnd.choice(pool)}{rnd.choice(_TAILS)}"
        replies.append(
            {
                "id": cid,
                "name": f"t1_{cid}",
                "parent_id": parent,
                "link_id": LINK,
                "author": f"redditor_{rnd.randrange(7000)}",
                "body": f"{body} [{i}]",
                "created_utc": start + 120 + (3400 * i) // REPLIES,
                "score": rnd.randrange(-5, 400),
                "permalink": f"/r/{SUB}/comments/{ARTICLE}/_/{cid}/",
                "replies": "",
            }
        )
    return post, replies


def _serve_thread(api: ApiServer, post: dict[str, Any], replies: list[dict[str, Any]]) -> int:
    """Routes for the listing, the first tree page and each morechildren chunk; returns calls."""
    listing = {
        "kind": "Listing",
        "data": {"after": None, "children": [{"kind": "t3", "data": post}]},
    }
    api.add(f"/r/{SUB}/new.json", as_json(listing))
    first, rest = replies[:FIRST_TREE], replies[FIRST_TREE:]
    # Nest the first page as Reddit does: each reply inside its parent's "replies" listing.
    nodes = {r["name"]: {"kind": "t1", "data": dict(r)} for r in first}
    top: list[dict[str, Any]] = []
    for r in first:
        node, parent = nodes[r["name"]], nodes.get(r["parent_id"])
        if parent is None:
            top.append(node)
        else:
            if not parent["data"]["replies"]:
                parent["data"]["replies"] = {"kind": "Listing", "data": {"children": []}}
            parent["data"]["replies"]["data"]["children"].append(node)
    top.append(
        {
            "kind": "more",
            "data": {"parent_id": LINK, "count": len(rest), "children": [r["id"] for r in rest]},
        }
    )
    api.add(
        f"/comments/{ARTICLE}.json",
        as_json(
            [listing, {"kind": "Listing", "data": {"after": None, "children": top}}],
        ),
    )
    calls = 0
    for i in range(0, len(rest), 100):
        chunk = rest[i : i + 100]
        things = [{"kind": "t1", "data": r} for r in chunk]
        api.add(
            "/api/morechildren",
            as_json({"json": {"errors": [], "data": {"things": things}}}),
            children=",".join(r["id"] for r in chunk),
        )
        calls += 1
    return calls


def _per_hour(h: datetime) -> int:
    return 1 + (9 <= h.hour < 21) + (h.hour == 14)


def _baseline(path: Path, hours: list[datetime]) -> int:
    """The usual inflow: 1-3 posts an hour, a lost-work claim now and then."""
    rnd = random.Random(5)
    texts = [
        "Claude refused to summarize a public court ruling for me",
        "switched to Gemini for coding, the context window is nice",
        "ChatGPT lost my conversation history again, whole project gone",
        "glad it refused that one honestly, safety first",
        "reading the new model card over lunch",
        "does anyone use the API for batch jobs?",
    ]
    n = 0
    with path.open("w") as fh:
        for h in hours:
            for j in range(_per_hour(h)):
                n += 1
                fh.write(
                    json.dumps(
                        {
                            "platform": "reddit",
                            "external_id": f"base-{h:%Y%m%d%H}-{j}",
                            "text": f"{rnd.choice(texts)} #{n}",
                            "created_at": (h + timedelta(minutes=(13 * j + 5) % 60)).isoformat(),
                            "author_handle": f"regular{n % 31}",
                        }
                    )
                    + "\n"
                )
    return n


def _peak_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of a process and its children, the largest one; 0 once it has exited."""
    peaks = [0.0]
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


@pytest.fixture
def thread_api():
    server = ApiServer()
    # Headers and body go out in two writes; with Nagle's algorithm on, each of the 197
    # responses waited ~40 ms for a delayed ACK (8 of the ingest's 11 s of fetching).
    server.httpd.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def broker():
    import redis

    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_viral_thread_of_20000_replies(settings, session, thread_api, broker, procs, tmp_path):
    from workers.tasks.alerts import run_detection

    timings: dict[str, float] = {}
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    detect_at = hour + timedelta(hours=1, minutes=5)  # the first scheduled run after the hour

    post, replies = _thread(hour)
    more_calls = _serve_thread(thread_api, post, replies)
    source = {
        "name": "reddit-viral",
        "kind": "reddit",
        "base_url": thread_api.url,
        "backfill_hours": 24,
        "thread_depth": 50,
        "thread_size": REPLIES + 1000,
        "options": {"subreddits": [SUB], "more_limit": more_calls + 10},
    }
    env = base_env(
        tmp_path,
        database_url=settings.sqlalchemy_url,
        broker_url=BROKER,
        UNDERTOW_SOURCES=json.dumps([source]),
        UNDERTOW_LOG_LEVEL="WARNING",
        UNDERTOW_AUTHOR_KEY_SECRET="burst-secret",
    )
    run = procs(env)
    session.add(
        AlertRule(name="lost-work", theme="lost_work_claim", budget=2, min_count=5, channels=[])
    )
    session.commit()

    def n_classified() -> int:
        return session.execute(sa.select(sa.func.count()).select_from(Classification)).scalar_one()

    # 1. Three weeks of the usual inflow, classified by the worker; no alert on it.
    baseline = tmp_path / "baseline.jsonl"
    n_base = _baseline(baseline, [hour - timedelta(hours=i) for i in range(21 * 24, -1, -1)])
    worker = run.start("worker", "worker", "--queues", "ingest,classify,default")
    t = time.monotonic()
    run.run("ingest", "replay", str(baseline), "--name", "baseline")
    wait_for(lambda: n_classified() == n_base, 120, "the baseline classified")
    timings["baseline"] = time.monotonic() - t
    assert run_detection(detect_at)["opened"] == []

    # 2. The burst: one run of the Reddit source, as a process of its own. Its peak RSS is read
    # from /proc while it runs (wait4's ru_maxrss would report pytest's size at the fork).
    t = time.monotonic()
    ingest = run.start("ingest", "ingest", "once", "reddit-viral")
    ingest_rss_mb = 0.0
    while ingest.poll() is None:
        ingest_rss_mb = max(ingest_rss_mb, _peak_rss_mb(ingest.pid))
        time.sleep(0.05)
    timings["ingest"] = time.monotonic() - t
    assert ingest.returncode == 0, run.log("ingest")[-3000:]
    collected = session.execute(
        sa.select(Source.posts_collected).where(Source.name == "reddit-viral")
    ).scalar_one()
    assert collected == REPLIES + 1

    # Stored exactly once: every reply the server handed out, and nothing else.
    stored = session.execute(
        sa.select(Post.external_id, Post.parent_external_id).where(Post.root_external_id == LINK)
    ).all()
    assert len(stored) == REPLIES + 1
    assert {e for e, _ in stored} == {LINK} | {r["name"] for r in replies}
    parents = dict(stored)
    assert all(parents[r["name"]] == r["parent_id"] for r in replies[::97])
    assert len(thread_api.requests_to("/api/morechildren")) == more_calls

    # 3. The queue drains: every post classified exactly once, the broker's queues empty.
    t = time.monotonic()
    total = n_base + REPLIES + 1
    wait_for(lambda: n_classified() == total, 150, "every post of the burst classified", every=1)
    timings["drain"] = time.monotonic() - t
    per_post = session.execute(
        sa.select(Classification.post_id, sa.func.count()).group_by(Classification.post_id)
    ).all()
    assert len(per_post) == total and {c for _, c in per_post} == {1}
    wait_for(lambda: broker.llen("classify") == 0, 30, "the classify queue empty")
    worker_rss_mb = _peak_rss_mb(worker.pid)

    # 4. The next detection run after the hour rolls it up and opens the alert.
    t = time.monotonic()
    result = run_detection(detect_at)
    timings["detect"] = time.monotonic() - t
    session.expire_all()

    def rolled_up(theme: str) -> int:
        return session.execute(
            sa.select(Rollup.count).where(
                Rollup.bucket == hour,
                Rollup.platform == "reddit",
                Rollup.product == "*",
                Rollup.theme == theme,
            )
        ).scalar_one()

    assert rolled_up("*") == REPLIES + 1 + _per_hour(hour)
    assert len(result["opened"]) == 1, result
    alert = session.get(Alert, result["opened"][0])
    assert alert is not None and alert.status == "open" and alert.opened_at == detect_at
    assert alert.window_start <= hour < alert.window_end
    lost_in_hour = rolled_up("lost_work_claim")
    assert lost_in_hour > 5_000 and alert.observed >= lost_in_hour

    print(
        f"\nburst timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}; "
        f"peak RSS MB: ingest {ingest_rss_mb:.0f}, worker {worker_rss_mb:.0f}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    assert ingest_rss_mb < INGEST_RSS_MB
    assert worker_rss_mb < WORKER_RSS_MB
