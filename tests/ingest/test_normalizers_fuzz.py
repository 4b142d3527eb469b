"""hypothesis: every normalizer returns a post or a quarantine record, never raises."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.base import NormalizedPost, Quarantined
from ingest.http import SourceError
from ingest.normalize import ItemError, parse_time
from ingest.sources import bluesky, file, hackernews, mastodon, reddit, rss, x
from ingest.text import html_to_text
from tests.ingest.conftest import load_recorded

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "2025-05-19T17:10:09.561858Z",
            "Fri, 15 Jan 2021 11:16:43 -0600",
            "t3_x",
            "[deleted]",
            "at://did:plc:x/app.bsky.feed.post/3kbi55xm6u62v",
            "1400942130898554891",
            "<p>a &amp; b</p>",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("children", "replies") and isinstance(v, list | dict) and prefix:
                out.append((*prefix, k))
                continue
            out.extend(_paths(v, (*prefix, k)))
    return out


def _mutate(data: st.DataObject, sample: Any) -> Any:
    """A real item with a few fields replaced by arbitrary JSON or removed."""
    item = copy.deepcopy(sample)
    paths = _paths(item)
    for _ in range(data.draw(st.integers(1, 3))):
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        target = item
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if data.draw(st.booleans()):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = data.draw(json_values)
    return item


def _check(result: Any) -> None:
    assert isinstance(result, NormalizedPost | Quarantined), type(result)
    if isinstance(result, NormalizedPost):
        assert result.created_at.utcoffset() == timedelta(0)
        assert isinstance(result.text, str) and "\x00" not in result.text
        assert isinstance(result.external_id, str) and result.external_id
        assert all(isinstance(v, int) for v in result.engagement.values())
    else:
        assert isinstance(result.payload, str) and result.reason


SAMPLES = {
    "hn_hit": load_recorded("hn_algolia/search_by_date_comment_query_apple.json")["hits"][0],
    "hn_item": load_recorded("hn_algolia/items_17.json"),
    "reddit": load_recorded("reddit/comments_thread_1cebxh.json")[1]["data"]["children"][0],
    "reddit_t3": load_recorded("reddit/subreddit_netsec_listing.json")["data"]["children"][0],
    "bluesky": load_recorded("bluesky/searchPosts_q_hashtag_rstats.json")["posts"][0],
    "bluesky_node": load_recorded("bluesky/getPostThread_with_parent.json")["thread"],
    "mastodon": load_recorded("mastodon/timelines_tag_rstats_mastodon_social.json")[0],
    "x": load_recorded("twitter_v2/search_all_from_kfc_expansions.json")["data"][3],
    "rss": {
        "id": "g1",
        "title": "t",
        "link": "https://a",
        "author": "a@b (c)",
        "published": "Fri, 15 Jan 2021 11:16:43 -0600",
        "content": "<p>x</p>",
    },
    "file": {
        "external_id": "1",
        "text": "t",
        "created_at": "2024-01-01T00:00:00Z",
        "platform": "reddit",
    },
}
NORMALIZERS = {
    "hn_hit": lambda r: hackernews.normalize_hit(r, source="s", strict=True),
    "hn_item": lambda r: hackernews.normalize_item(r, source="s", strict=True),
    "reddit": lambda r: reddit.normalize_thing(r, source="s", strict=True),
    "reddit_t3": lambda r: reddit.normalize_thing(r, source="s", strict=True),
    "bluesky": lambda r: bluesky.normalize_post_view(r, source="s", strict=True),
    "bluesky_node": lambda r: bluesky.normalize_thread_node(r, source="s", strict=True),
    "mastodon": lambda r: mastodon.normalize_status(r, source="s", uri_of={"1": "u"}, strict=True),
    "x": lambda r: x.normalize_tweet(r, source="s", users={"15392391": "kfc"}, strict=True),
    "rss": lambda r: rss.normalize_entry(r, source="s", feed="https://f", strict=True),
    "file": lambda r: file.normalize_row(r, source="s", strict=True),
}


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_real_items_normalize(name):
    assert isinstance(NORMALIZERS[name](SAMPLES[name]), NormalizedPost | type(None))


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@FUZZ
@given(raw=json_values)
def test_arbitrary_json(name, raw):
    result = NORMALIZERS[name](raw)
    if result is not None:  # a blocked Bluesky node is skipped
        _check(result)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@FUZZ
@given(data=st.data())
def test_mutated_real_items(name, data):
    result = NORMALIZERS[name](_mutate(data, SAMPLES[name]))
    if result is not None:
        _check(result)


@FUZZ
@given(
    text=st.text(max_size=300)
    | st.from_regex(
        r"<[a-z]{1,3}( [a-z]+=\"[^\"]*\")?>[^<]{0,20}(</[a-z]{1,3}>)?&[a-z#0-9]{0,6};?",
        fullmatch=True,
    )
)
def test_html_to_text_total(text):
    out = html_to_text(text)
    assert isinstance(out, str) and "\x00" not in out and out == out.strip()


@FUZZ
@given(value=json_values)
def test_parse_time_is_utc_or_item_error(value):
    try:
        dt = parse_time(value)
    except ItemError:
        return
    assert dt.utcoffset() == timedelta(0)


@FUZZ
@given(
    body=st.binary(max_size=200)
    | st.text(max_size=200).map(
        lambda t: f"<rss><channel><item>{t}</item></channel></rss>".encode()
    )
)
def test_parse_feed_returns_entries_or_source_error(body):
    try:
        kind, entries = rss.parse_feed(body)
    except SourceError:
        return
    for el in entries:
        _check(
            rss.normalize_entry(
                rss._entry_dict(kind, el), source="s", feed="https://f", strict=True
            )
        )
