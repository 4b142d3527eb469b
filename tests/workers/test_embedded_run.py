"""`undertow run` (what `make run` starts): demo corpus served, SIGKILLed worker recovered exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
DEMO_POSTS = sum(1 for line in (REPO / "data/demo/posts.jsonl").open() if line.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _counts(db: Path) -> tuple[int, int]:
    """Classifications and classified posts; (0, 0) while the migrations have not made the table."""
    try:
        with sqlite3.connect(db, timeout=30) as c:
            sql = "SELECT count(*), count(DISTINCT post_id) FROM classification"
            row = c.execute(sql).fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
        return 0, 0
    return int(row[0]), int(row[1])


def _children(pid: int) -> dict[str, int]:
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    )
    kids = {}
    for line in out.stdout.splitlines():
        cpid, args = line.strip().split(" ", 1)
        for role in ("worker", "scheduler", "api"):
            if f"cli.main {role}" in args:
                kids[role] = int(cpid)
    return kids


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run"],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _weekly(port: int, key: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/trends/weekly?week=2026-W43",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_run_serves_demo_and_recovers_from_a_sigkilled_worker(tmp_path):
    port = _free_port()
    data = tmp_path / "var"
    env = {
        **os.environ,
        "UNDERTOW_DATA_DIR": str(data),
        "UNDERTOW_DATABASE_URL": "",
        "UNDERTOW_BROKER_URL": "",
        "UNDERTOW_API_PORT": str(port),
        "UNDERTOW_SOURCES": "[]",
        "UNDERTOW_CLASSIFY_BATCH_SIZE": "32",
        # What `make run` uses: the transformers classifier with the shipped heads.
        "UNDERTOW_CLASSIFIER": "transformers",
    }
    db = data / "undertow.db"
    log = tmp_path / "run.log"
    first = _start(env, log)
    try:
        _wait(lambda: db.exists() and _counts(db)[0] > 0, 180, "the first classifications")
        kids = _children(first.pid)
        assert set(kids) == {"worker", "scheduler", "api"}, kids
        os.kill(kids["worker"], signal.SIGKILL)
        # The run notices its worker died and stops the rest.
        first.wait(timeout=60)
        assert first.returncode == 1
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    # The worker's pool process outlives it in the run's process group: end that group only.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(first.pid, signal.SIGKILL)
    done, distinct = _counts(db)
    assert done == distinct and done < DEMO_POSTS, "killed mid-corpus"

    second = _start(env, log)
    try:
        _wait(lambda: _counts(db)[0] >= DEMO_POSTS, 300, "every demo post classified")
        key = subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", "create", "--scope", "read", "--name", "t"],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip

        def counted() -> bool:
            try:
                return _weekly(port, key)["total"] > 0
            except OSError:
                return False

        _wait(counted, 120, "the weekly summary")
        time.sleep(3)
        summary = _weekly(port, key)
        nonzero = [t["theme"] for t in summary["themes"] if t["count"] > 0]
        assert len(nonzero) >= 3, summary
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)
    assert second.returncode == 0
    assert "undertow: stopped" in log.read_text()
    assert _counts(db) == (DEMO_POSTS, DEMO_POSTS), "every post classified exactly once"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM post").fetchone()[0] == DEMO_POSTS
