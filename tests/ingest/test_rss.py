"""RSS/Atom adapter against recorded feeds on loopback, with ETag / If-Modified-Since."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.http import SourceError
from ingest.sources import build_source
from tests.ingest.conftest import config, drain, own, recorded

XML = {"Content-Type": "application/xml"}


def test_rss2_feed_then_304(api, client, sleeps):
    api.add(
        "/t/ruby.rss",
        recorded(
            "rss_atom/lobsters_t_ruby_rss2.xml",
            etag='"v1"',
            headers={**XML, "Last-Modified": "Fri, 15 Jan 2021 18:00:00 GMT"},
        ),
    )
    feed = f"{api.url}/t/ruby.rss"
    cfg = config("rss", options={"feeds": [feed]})
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    assert len(got.posts) == 25 and got.quarantined == []
    first = got.posts[0]
    assert first.external_id == "https://lobste.rs/s/ay6ouz"
    assert first.title == "Stop worrying about PostgreSQL locks in your Rails migrations"
    assert first.text == first.title + "\n\nComments"
    assert first.created_at == datetime(2021, 1, 15, 17, 16, 43, tzinfo=UTC)
    assert first.author_handle == "kngl" and first.query == feed
    assert first.url.startswith("https://medium.com/doctolib/")
    assert "Playing around with pattern matching" in got.posts[1].text
    assert "<p>" not in got.posts[1].text
    state = got.cursor["feeds"][feed]
    assert state["etag"] == '"v1"' and state["last_modified"] == "Fri, 15 Jan 2021 18:00:00 GMT"

    again = drain(build_source(cfg, client=client, sleep=sleeps), got.cursor)
    assert again.posts == []
    last = api.requests_to("/t/ruby.rss")[-1]
    assert last.headers["if-none-match"] == '"v1"'
    assert last.headers["if-modified-since"] == "Fri, 15 Jan 2021 18:00:00 GMT"


def test_atom_feeds_and_seen_entries_without_etag(api, client, sleeps):
    api.add("/r/worldnews/.rss", recorded("rss_atom/reddit_r_worldnews_atom.xml", headers=XML))
    api.add("/feeds/videos.xml", recorded("rss_atom/youtube_channel_atom.xml", headers=XML))
    feeds = [f"{api.url}/r/worldnews/.rss", f"{api.url}/feeds/videos.xml"]
    cfg = config("rss", options={"feeds": feeds})
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    posts = got.by_id()
    assert f"{feeds[0]}#t3_167sdt8" in posts
    reddit = posts[f"{feeds[0]}#t3_167sdt8"]
    assert reddit.title == "/r/WorldNews Live Thread" and reddit.author_handle == "/u/WorldNewsMods"
    assert reddit.created_at == datetime(2023, 9, 2, 4, 2, 37, tzinfo=UTC)
    assert (
        "submitted by" in reddit.text and "&lt;" not in reddit.text and "<table>" not in reddit.text
    )
    video = posts["yt:video:CNJL4GsSrcc"]
    assert video.title.startswith("Серебряков - об эмиграции")
    assert video.created_at == datetime(2018, 2, 20, 11, 25, 57, tzinfo=UTC)
    assert "Алексей Серебряков" in video.text
    assert len(got.posts) == 2 + 15
    assert drain(build_source(cfg, client=client, sleep=sleeps), got.cursor).posts == []


def test_broken_entry_is_quarantined(api, client, sleeps):
    api.add("/feed.xml", own("rss_broken.xml", headers=XML))
    feed = f"{api.url}/feed.xml"
    got = drain(build_source(config("rss", feed), client=client, sleep=sleeps))
    assert [p.external_id for p in got.posts] == ["https://blog.example/gemini", f"{feed}#post-3"]
    assert got.posts[0].text == "Gemini release notes & reactions\n\nPeople love it & hate it."
    assert got.posts[0].created_at == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)
    assert len(got.quarantined) == 1 and "post-2" in got.quarantined[0].payload


def test_entity_declarations_are_refused(api, client, sleeps):
    api.add("/bomb.xml", own("rss_entities.xml", headers=XML))
    with pytest.raises(SourceError, match="entities"):
        drain(build_source(config("rss", f"{api.url}/bomb.xml"), client=client, sleep=sleeps))


def test_not_a_feed_is_a_source_error(api, client, sleeps):
    api.add("/x", own("truncated.json"))
    with pytest.raises(SourceError):
        drain(build_source(config("rss", f"{api.url}/x"), client=client, sleep=sleeps))
