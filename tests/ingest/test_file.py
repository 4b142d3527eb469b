"""File import: JSON Lines and CSV with a column mapping, resumed from a byte offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.http import SourceError
from ingest.sources import build_source
from tests.ingest.conftest import config, drain

MAPPING = {
    "external_id": "id",
    "text": "body",
    "created_at": "ts",
    "author_handle": "user.name",
    "parent_external_id": "reply_to",
}


def _jsonl(path, rows):
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def test_jsonl_with_mapping_quarantine_and_resume(tmp_path, client):
    path = tmp_path / "posts.jsonl"
    _jsonl(
        path,
        [
            {
                "id": 1,
                "body": "Claude refused &amp; I left",
                "ts": 1700000000,
                "user": {"name": "a"},
            },
            '{"id": 2, "body": "truncated',
            {
                "id": 3,
                "body": "ok",
                "ts": "2024-01-02T03:04:05+02:00",
                "reply_to": "1",
                "likes": "7",
            },
            {"id": 4, "ts": "2024-01-02T03:04:05Z"},
        ],
    )
    cfg = config(
        "file",
        options={
            "path": str(path),
            "mapping": MAPPING,
            "platform": "reddit",
            "engagement": {"likes": "likes"},
        },
    )
    got = drain(build_source(cfg, client=client))
    assert [p.external_id for p in got.posts] == ["1", "3"]
    first, second = got.posts
    assert first.platform == "reddit" and first.text == "Claude refused & I left"
    assert first.author_handle == "a" and first.created_at == datetime.fromtimestamp(
        1700000000, tz=UTC
    )
    assert second.created_at == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert second.parent_external_id == "1" and second.engagement == {"likes": 7}
    assert [q.reason.split(":")[0] for q in got.quarantined] == [
        "malformed JSON line",
        "row without text",
    ]
    assert got.cursor["offset"] == path.stat().st_size

    assert drain(build_source(cfg, client=client), got.cursor).posts == []
    _jsonl(path, [{"id": 5, "body": "appended", "ts": 1700000100}])
    later = drain(build_source(cfg, client=client), got.cursor)
    assert [p.external_id for p in later.posts] == ["5"]


def test_a_byte_order_mark_does_not_cost_the_first_row(tmp_path, client):
    """Windows tools write UTF-8 with a BOM; the first JSON line is a post, not malformed JSON."""
    path = tmp_path / "posts.jsonl"
    rows = [
        {"id": 1, "body": "first", "ts": 1700000000},
        {"id": 2, "body": "second", "ts": 1700000050},
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    cfg = config("file", options={"path": str(path), "mapping": MAPPING})
    got = drain(build_source(cfg, client=client))
    assert [p.external_id for p in got.posts] == ["1", "2"] and got.quarantined == []
    assert got.posts[0].text == "first"
    assert got.cursor["offset"] == path.stat().st_size
    _jsonl(path, [{"id": 3, "body": "appended", "ts": 1700000100}])
    assert [p.external_id for p in drain(build_source(cfg, client=client), got.cursor).posts] == [
        "3"
    ]


def test_csv_with_quoted_newlines(tmp_path, client):
    path = tmp_path / "posts.csv"
    path.write_text(
        "Post ID,Body,Created,Deleted\n"
        'a1,"line one\nline two, with comma",2025-09-01 10:00:00,\n'
        "a2,[deleted],2025-09-01 11:00:00,true\n"
        "a3,short row\n",
        encoding="utf-8",
    )
    mapping = {
        "external_id": "Post ID",
        "text": "Body",
        "created_at": "Created",
        "deleted": "Deleted",
    }
    got = drain(
        build_source(config("file", options={"path": str(path), "mapping": mapping}), client=client)
    )
    assert [p.external_id for p in got.posts] == ["a1", "a2"]
    assert got.posts[0].text == "line one\nline two, with comma"
    assert got.posts[0].created_at == datetime(2025, 9, 1, 10, tzinfo=UTC)
    assert got.posts[1].deleted and not got.posts[0].deleted
    assert len(got.quarantined) == 1 and "fields" in got.quarantined[0].reason


def test_missing_file_is_a_source_error(tmp_path, client):
    src = build_source(
        config("file", options={"path": str(tmp_path / "nope.jsonl")}), client=client
    )
    with pytest.raises(SourceError):
        drain(src)


def test_unknown_mapping_field_is_refused(tmp_path, client):
    with pytest.raises(ValueError, match="unknown mapping"):
        build_source(
            config("file", options={"path": "x.jsonl", "mapping": {"body": "b"}}), client=client
        )


def test_replay_reads_past_a_byte_order_mark(tmp_path):
    from ingest.sources.replay import ReplaySource

    path = tmp_path / "replay.jsonl"
    row = {"platform": "x", "external_id": "1", "text": "t", "created_at": "2024-01-01T00:00:00Z"}
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(row) + "\n").encode())
    (batch,) = list(ReplaySource(name="r", path=path).fetch(cursor={}))
    assert [p.external_id for p in batch.posts] == ["1"] and batch.quarantined == []
