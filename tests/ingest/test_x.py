"""X adapter against recorded v2 search responses on loopback."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.sources import build_source
from tests.ingest.conftest import config, drain, load_recorded, own, recorded

SEARCH = "/2/tweets/search/recent"


def test_search_with_expansions_then_nothing_new(api, client, sleeps):
    api.add(SEARCH, recorded("twitter_v2/search_all_from_kfc_expansions.json"), query="(from:kfc)")
    cfg = config(
        "x", api.url, queries=["(from:kfc)"], thread_depth=0, options={"bearer_token": "BT"}
    )
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    rec = load_recorded("twitter_v2/search_all_from_kfc_expansions.json")
    assert [p.external_id for p in got.posts] == [
        t["id"] for t in rec["data"] + rec["includes"]["tweets"]
    ]
    assert got.quarantined == []
    posts = got.by_id()
    top = posts["1400942130898554891"]
    assert top.author_handle == "kfc" and top.lang == "en"
    assert top.created_at == datetime(2021, 6, 4, 22, 26, 46, tzinfo=UTC)
    assert top.root_external_id == "1400942130898554891" and top.parent_external_id is None
    assert top.engagement == {"replies": 55, "reposts": 141, "likes": 1238, "quotes": 17}
    assert top.url == "https://x.com/kfc/status/1400942130898554891"
    reply = posts["1400135988567973890"]
    assert reply.parent_external_id == "1399538256274882566"
    parent = posts["1399538256274882566"]
    assert parent.author_handle == "mattraub"
    request = api.requests_to(SEARCH)[0]
    assert request.headers["authorization"] == "Bearer BT"
    assert request.params["expansions"] == "author_id,referenced_tweets.id"
    assert "start_time" in request.params and "since_id" not in request.params
    assert got.cursor == {"since_id": {"(from:kfc)": "1400942130898554891"}}

    again = drain(build_source(cfg, client=client, sleep=sleeps), got.cursor)
    assert again.posts == []
    assert api.requests_to(SEARCH)[-1].params["since_id"] == "1400942130898554891"


def test_next_token_paging_and_time_from_the_id(api, client, sleeps):
    api.add(
        SEARCH,
        own("x_search_empty.json"),
        next_token="b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul",
    )
    api.add(SEARCH, recorded("twitter_v2/search_recent_minimal_tweepy.json"), query="Tweepy")
    got = drain(build_source(config("x", api.url, queries=["Tweepy"]), client=client, sleep=sleeps))
    assert len(got.posts) == 10 and got.quarantined == []
    for post in got.posts:
        # The recorded texts are the posting time; the snowflake id gives the same instant.
        stamp = datetime.fromisoformat(post.text.split(" tweepy")[0]).replace(tzinfo=UTC)
        assert abs((post.created_at - stamp).total_seconds()) < 2
    assert len(api.requests_to(SEARCH)) == 2


def test_conversation_expansion(api, client, sleeps):
    api.add(SEARCH, own("x_conversation.json"), query="conversation_id:1400942130898554891")
    api.add(SEARCH, recorded("twitter_v2/search_all_from_kfc_expansions.json"), query="(from:kfc)")
    cfg = config("x", api.url, queries=["(from:kfc)"], options={"max_conversations": 1})
    posts = drain(build_source(cfg, client=client, sleep=sleeps)).by_id()
    first, second = posts["1400950000000000001"], posts["1400950000000000002"]
    assert first.parent_external_id == "1400942130898554891"
    assert second.parent_external_id == "1400950000000000001"
    assert second.root_external_id == "1400942130898554891" and second.lang is None
    assert (
        first.text == "@kfc a reply in the conversation & more" and first.author_handle == "replier"
    )
    assert first.query == "(from:kfc)"
    assert len(api.requests_to(SEARCH)) == 2


def test_broken_tweet_is_quarantined(api, client, sleeps):
    api.add(SEARCH, own("x_search_broken.json"))
    got = drain(
        build_source(config("x", api.url, queries=["chatgpt"]), client=client, sleep=sleeps)
    )
    assert [p.external_id for p in got.posts] == ["1500000000000000001"]
    assert len(got.quarantined) == 2
    assert {q.reason for q in got.quarantined} == {
        "tweet id is not numeric: 'not-a-number'",
        "tweet without text",
    }
