"""Hacker News adapter against recorded Algolia responses on a loopback server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.base import Quarantined
from ingest.http import SourceError
from ingest.sources import build_source
from tests.ingest.conftest import config, drain, own, recorded

SEARCH = "/api/v1/search_by_date"


def test_search_stories_and_comments_then_nothing_new(api, client, sleeps):
    api.add(SEARCH, recorded("hn_algolia/search_by_date_story.json"), tags="(story)")
    api.add(
        SEARCH,
        recorded("hn_algolia/search_by_date_comment_query_apple.json"),
        tags="(comment)",
        query="apple",
    )
    src = build_source(
        config("hackernews", api.url, queries=["apple"], thread_depth=0),
        client=client,
        sleep=sleeps,
    )
    got = drain(src)
    posts = got.by_id()
    assert set(posts) == {"7919424", "7919418"} and got.quarantined == []

    story = posts["7919424"]
    assert story.title == "Judge says concerned about Apple, Google hiring settlement"
    assert story.text == story.title
    assert story.created_at == datetime(2014, 6, 20, 3, 35, 46, tzinfo=UTC)
    assert story.parent_external_id is None and story.root_external_id == "7919424"
    assert story.url == "https://news.ycombinator.com/item?id=7919424"
    assert story.engagement == {"points": 1, "comments": 0}

    comment = posts["7919418"]
    assert comment.parent_external_id == "7919290" and comment.root_external_id == "7918547"
    assert comment.created_at == datetime(2014, 6, 20, 3, 32, 34, tzinfo=UTC)
    assert comment.text.startswith(
        "Yeah the article seems stupid, while technically they aren't contributing to the "
        "scholarship they do pay"
    )
    assert "Starbucks/Wal-Mart" in comment.text and "<" not in comment.text
    assert "\n\nI'm not the biggest fan" in comment.text
    assert comment.author_handle == "fleitz" and comment.source == "test-hackernews"
    assert comment.query == "apple" and comment.raw["objectID"] == "7919418"

    first = api.requests_to(SEARCH)[0].params["numericFilters"]
    assert first.startswith("created_at_i>=")
    assert got.cursor == {"since": {"apple": {"t": 1403235346.0, "ids": ["7919424"]}}}

    again = drain(src, got.cursor)
    assert again.posts == [] and again.quarantined == []
    assert api.requests_to(SEARCH)[-1].params["numericFilters"] == "created_at_i>=1403235346"


def test_thread_expansion_from_items(api, client, sleeps):
    api.add(SEARCH, own("hn_search_comment_17.json"), tags="(comment)")
    api.add(SEARCH, recorded("hn_algolia/search_by_date_story.json"), tags="(story)")
    api.add("/api/v1/items/17", recorded("hn_algolia/items_17.json"))
    src = build_source(config("hackernews", api.url, queries=["eat"]), client=client, sleep=sleeps)
    posts = drain(src).by_id()
    assert {"17", "1079", "454426"} <= set(posts)
    for reply in ("1079", "454426"):
        assert posts[reply].parent_external_id == "17"
        assert posts[reply].root_external_id == "1"
    assert posts["1079"].text == "sure"
    assert posts["454426"].created_at == datetime(2009, 1, 28, 20, 32, 27, tzinfo=UTC)
    assert posts["17"].parent_external_id == "15" and posts["17"].root_external_id == "1"


def test_broken_item_is_quarantined_and_deleted_reply_kept(api, client, sleeps):
    api.add(SEARCH, own("hn_search_broken.json"), tags="(story)")
    api.add(SEARCH, own("hn_search_comment_17.json"), tags="(comment)")
    api.add("/api/v1/items/900001", own("hn_items_900001.json"))
    cfg = config("hackernews", api.url, queries=["claude"], options={"expand_comments": False})
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    posts = got.by_id()
    assert len(got.quarantined) == 1 and isinstance(got.quarantined[0], Quarantined)
    assert "900002" in got.quarantined[0].payload and "time" in got.quarantined[0].reason
    assert {"900001", "900003", "900010", "900011", "17"} == set(posts)
    story = posts["900001"]
    assert (
        story.text
        == 'Claude refused my "harmless" request\n\nIt said it can\'t help.\n\nSecond paragraph.'
    )
    gone = posts["900010"]
    assert gone.deleted and gone.text == "" and gone.author_handle is None
    assert posts["900011"].parent_external_id == "900010"
    assert posts["900011"].text == "Try this & that"


def test_thread_limits(api, client, sleeps):
    api.add(SEARCH, own("hn_search_broken.json"), tags="(story)")
    api.add(SEARCH, own("hn_search_comment_17.json"), tags="(comment)")
    api.add("/api/v1/items/900001", own("hn_items_900001.json"))
    cfg = config(
        "hackernews",
        api.url,
        queries=["claude"],
        thread_depth=1,
        options={"expand_comments": False},
    )
    posts = drain(build_source(cfg, client=client, sleep=sleeps)).by_id()
    assert "900010" in posts and "900011" not in posts


def test_truncated_response_is_a_source_error(api, client, sleeps):
    api.add(SEARCH, own("truncated.json"))
    src = build_source(
        config("hackernews", api.url, queries=["claude"]), client=client, sleep=sleeps
    )
    with pytest.raises(SourceError, match="malformed JSON"):
        drain(src)
