"""`undertow run`: the embedded default, one process tree (scheduler, worker, API), no Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from cli.common import load_settings

DEMO = Path("data/demo/posts.jsonl")
RELEASES = Path("data/demo/releases.json")


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args])


def load_demo(posts: Path, releases: Path) -> dict[str, Any]:
    """Replay the demo corpus (a second run adds nothing), record its releases, add the
    default alert rules (detection backfills the history they never watched)."""
    from cli.ingest import replay_file
    from core.db import session_scope
    from core.taxonomy import load_taxonomy
    from trends.alerts import ensure_default_rules
    from trends.releases import add_release

    settings = load_settings()
    counts = replay_file(posts.resolve(), name="demo", enqueue=False)
    if releases.exists():
        with session_scope(settings) as session:
            for r in json.loads(releases.read_text()):
                add_release(
                    session=session,
                    taxonomy=load_taxonomy(settings.taxonomy_path),
                    product=r["product"],
                    day=r["date"],
                    title=r["title"],
                )
    with session_scope(settings) as session:
        ensure_default_rules(
            session=session, taxonomy=load_taxonomy(settings.taxonomy_path), settings=settings
        )
    return counts


def requeue_all() -> int:
    """Embedded start-up: no worker of ours is alive, so the database alone says what is pending.

    Messages a killed worker had taken are gone with it (the filesystem transport does not
    redeliver them), and the queue may hold stale duplicates: purge it and enqueue every post
    without a classification for the current model and text.
    """
    from classify.loader import current_version
    from classify.store import pending_post_ids
    from core.db import session_scope
    from workers.app import QUEUES, celery_app
    from workers.enqueue import enqueue_classification

    settings = load_settings()
    with celery_app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_purge(queue)
    version = current_version(settings)
    with session_scope(settings) as session:
        ids = pending_post_ids(session=session, model_version=version, stale_after_s=0, limit=10**9)
    if ids:
        enqueue_classification(ids)
    return len(ids)


def run(
    demo: bool = typer.Option(True, help="Replay the demo corpus in data/demo first."),
    worker_concurrency: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Migrate, load the demo corpus, then run scheduler + worker + API until Ctrl-C."""
    from core.migrate import upgrade

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings=settings)
    if demo and DEMO.exists():
        counts = load_demo(DEMO, RELEASES)
        typer.echo(
            f"demo corpus: {counts['inserted']} new posts, {counts['unchanged']} already there"
        )
    typer.echo(f"queued for classification: {requeue_all()} posts")
    procs = {
        "worker": _spawn("worker", "--concurrency", str(worker_concurrency)),
        "scheduler": _spawn("scheduler"),
        "api": _spawn("api"),
    }
    base = f"http://{settings.api_host}:{settings.api_port}"
    typer.echo(
        f"""
Undertow is running (embedded: SQLite at {settings.sqlalchemy_url.split("///")[-1]},
broker in {settings.broker_dir}).
  API docs:  {base}/docs
  dashboard: {base}/ui/  (sign in with a key)
  health:    {base}/readyz
  get a key: .venv/bin/undertow keys create --scope read --name me
  try:       curl -H "Authorization: Bearer KEY" "{base}/v1/trends/weekly?week=2026-W43"
Ctrl-C stops everything.
"""
    )
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    code = 0
    while not stopping:
        for name, p in procs.items():
            if p.poll() is not None:
                typer.echo(f"undertow: {name} exited with {p.returncode}; stopping", err=True)
                stopping, code = True, 1
        time.sleep(0.5)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + 15
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
    typer.echo("undertow: stopped")
    raise typer.Exit(code)
