"""Faults: the embedded default's SQLite file cannot be written (disk full, read-only)."""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.survival.conftest import base_env
from tests.survival.test_faults_worker import write_corpus

pytestmark = [pytest.mark.survival, pytest.mark.faults]
EX_IOERR = 74


def _undertow(env, *args, preexec=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=preexec,
    )


def _stored(db) -> tuple[str, dict[str, str]]:
    with sqlite3.connect(db) as c:
        check = c.execute("PRAGMA integrity_check").fetchone()[0]
        posts = dict(c.execute("SELECT external_id, text FROM post").fetchall())
    return check, posts


@pytest.fixture
def embedded(tmp_path):
    """An embedded database (the default: SQLite under data_dir) holding 200 served posts."""
    env = base_env(tmp_path, database_url="")
    assert _undertow(env, "db", "upgrade").returncode == 0
    first = write_corpus(tmp_path / "first.jsonl", 200, "early")
    r = _undertow(env, "ingest", "replay", str(tmp_path / "first.jsonl"), "--no-enqueue")
    assert r.returncode == 0, r.stderr
    db = tmp_path / "var" / "undertow.db"
    check, before = _stored(db)
    assert check == "ok" and set(before) == first
    return env, db, before


def test_disk_full_is_a_clear_error_and_keeps_the_database(tmp_path, embedded):
    """Breaks: the disk fills up mid-ingest (a file-size limit, RLIMIT_FSIZE, on the process).

    Expected: exit code 74 with one clear line (no traceback); `PRAGMA integrity_check` = ok; the
    earlier posts intact; what was committed is whole, and a rerun with room stores the rest
    exactly once.
    """
    env, db, before = embedded
    served = write_corpus(tmp_path / "big.jsonl", 12000, "late")
    limit = db.stat().st_size + 1_500_000

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = _undertow(
        env, "ingest", "replay", str(tmp_path / "big.jsonl"), "--no-enqueue", preexec=full_disk
    )
    assert r.returncode == EX_IOERR, r.stderr[-3000:]
    assert "undertow: cannot write the database" in r.stderr
    assert "Traceback" not in r.stderr
    check, after = _stored(db)
    assert check == "ok"
    assert {k: after[k] for k in before} == before, "earlier posts changed"
    partial = set(after) - set(before)
    assert partial < served, "the limit did not stop the ingest"

    r = _undertow(env, "ingest", "replay", str(tmp_path / "big.jsonl"), "--no-enqueue")
    assert r.returncode == 0, r.stderr[-3000:]
    check, final = _stored(db)
    assert check == "ok" and set(final) == set(before) | served
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM post").fetchone()[0] == len(before) + len(served)


def test_read_only_database_is_a_clear_error_and_keeps_the_database(tmp_path, embedded):
    """Breaks: the folder holding the database becomes a read-only file system (a read-only bind
    mount in a private mount namespace, as when a disk is remounted read-only after errors).

    Expected: exit code 74 with one clear line; the file untouched and intact.
    """
    env, db, before = embedded
    write_corpus(tmp_path / "more.jsonl", 50, "ro")
    digest = db.read_bytes()
    folder = str(db.parent)
    cmd = [sys.executable, "-m", "cli.main", "ingest", "replay", str(tmp_path / "more.jsonl")]
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', folder, *cmd],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == EX_IOERR, r.stderr[-3000:]
    assert "undertow: cannot write the database" in r.stderr
    assert "Traceback" not in r.stderr
    assert db.read_bytes() == digest
    check, after = _stored(db)
    assert check == "ok" and after == before
