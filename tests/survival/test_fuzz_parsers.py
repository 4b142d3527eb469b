"""Fuzz the parsers that tests/ingest/test_normalizers_fuzz.py does not reach: whole files of the
file and replay sources, listing envelopes, record keys, URIs and Retry-After headers.

The normalizers of every platform (hackernews, reddit, bluesky, mastodon, x, rss, file) are
fuzzed there; this module checks that list stays complete and covers what surrounds them."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.settings import SourceConfig
from ingest.base import NormalizedPost, Quarantined
from ingest.http import SourceError, retry_after_s
from ingest.normalize import ItemError
from ingest.sources import bluesky, reddit, replay
from ingest.sources.file import FileSource
from tests.ingest.test_normalizers_fuzz import NORMALIZERS, json_values

pytestmark = pytest.mark.survival
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PLATFORMS = {"hackernews", "reddit", "bluesky", "mastodon", "x", "rss", "file"}


def test_every_platform_parser_is_fuzzed():
    from ingest.sources import build_source  # noqa: F401 - registers every kind

    fuzzed = {name.split("_")[0].replace("hn", "hackernews") for name in NORMALIZERS}
    assert fuzzed >= PLATFORMS, PLATFORMS - fuzzed


def _check(item) -> None:
    assert isinstance(item, NormalizedPost | Quarantined), type(item)
    if isinstance(item, NormalizedPost):
        assert item.created_at.utcoffset() == timedelta(0)
        assert "\x00" not in item.text


# Bytes that look like the files users import: lines of JSON or CSV with the odd broken one.
json_lines = st.lists(
    st.one_of(
        json_values.map(json.dumps),
        st.sampled_from(
            [
                '{"external_id": "1", "text": "t", "created_at": "2024-01-01T00:00:00Z"}',
                '{"external_id": 2, "text": "\\u0000", "created_at": 1e400}',
                '{"external_id": "3", "text": "t", "created_at": "NaN", "likes": Infinity}',
                '{"platform": "x", "external_id": "1", "text": "t", '
                '"created_at": "2024-01-01T00:00:00+00:00", "engagement": {"likes": Infinity}}',
                "[" * 5000,
                "{",
                "\ufeff{}",
            ]
        ),
        st.text(max_size=60),
    ),
    max_size=8,
).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
csv_files = st.lists(
    st.lists(st.text(max_size=12), min_size=1, max_size=5).map(",".join),
    max_size=8,
).map(lambda rows: ("external_id,text,created_at\n" + "\n".join(rows)).encode("utf-8", "replace"))


def _run_file(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"in.{fmt}"
        path.write_bytes(data)
        config = SourceConfig(name="f", kind="file", options={"path": str(path), "batch_size": 3})
        seen = 0
        for batch in FileSource(config).fetch(cursor={}):
            for item in [*batch.posts, *batch.quarantined]:
                _check(item)
                seen += 1
            assert 0 <= batch.cursor["offset"] <= len(data)


@FUZZ
@given(data=json_lines | st.binary(max_size=300))
def test_file_source_reads_any_jsonl_file(data):
    _run_file(data, "jsonl")


@FUZZ
@given(data=csv_files | st.binary(max_size=300).map(lambda b: b"external_id,text\n" + b))
def test_file_source_reads_any_csv_file(data):
    _run_file(data, "csv")


@FUZZ
@given(data=json_lines)
def test_replay_source_reads_any_file(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.jsonl"
        path.write_bytes(data)
        for batch in replay.ReplaySource(name="r", path=path, batch_size=3).fetch(cursor={}):
            for item in [*batch.posts, *batch.quarantined]:
                _check(item)


@FUZZ
@given(obj=json_values)
@example(
    obj={
        "platform": "x",
        "external_id": "1",
        "text": "t",
        "created_at": "2024-01-01T00:00:00+00:00",
        "engagement": {"likes": float("inf"), "n": float("nan"), "ok": 3},
    }
)
def test_replay_records_parse_or_fail_with_a_reason(obj):
    try:
        post = replay.parse_line(obj, source="r")
    except (ValueError, TypeError):
        return
    _check(post)


@FUZZ
@given(body=json_values)
def test_reddit_listing_envelope(body):
    try:
        children, after = reddit._listing_children(body)
    except SourceError:
        return
    assert isinstance(children, list) and (after is None or isinstance(after, str))


@FUZZ
@given(key=st.text(alphabet="234567abcdefghijklmnopqrstuvwxyz01", min_size=0, max_size=15))
def test_bluesky_record_keys(key):
    try:
        ts = bluesky.tid_time(key)
    except ItemError:
        return
    assert ts.utcoffset() == timedelta(0)


@FUZZ
@given(uri=st.text(max_size=40) | st.from_regex(r"at://[a-z:]{0,8}(/[a-z.]{0,12}){0,3}"))
def test_bluesky_uris(uri):
    try:
        did, rkey = bluesky._split_uri(uri)
    except ItemError:
        return
    assert did and rkey


@FUZZ
@given(
    value=st.text(max_size=40)
    | st.sampled_from(["1e400", "-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT", "0x10"])
)
def test_retry_after_is_a_wait_or_nothing(value):
    try:
        headers = httpx.Headers({"retry-after": value})
    except (UnicodeEncodeError, ValueError):
        return  # not a header a server could send
    wait = retry_after_s(headers, now=1_700_000_000.0)
    assert wait is None or (wait >= 0 and not math.isnan(wait))
