"""Bluesky adapter against recorded searchPosts and getPostThread responses on loopback."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

import ingest.sources.bluesky as bluesky_module
from ingest.sources import build_source
from ingest.sources.bluesky import tid_time
from tests.ingest import watching
from tests.ingest.conftest import (
    Reply,
    as_json,
    config,
    drain,
    load_recorded,
    own,
    own_json,
    recorded,
)
from tests.ingest.watching import Watched

SEARCH = "/xrpc/app.bsky.feed.searchPosts"
THREAD = "/xrpc/app.bsky.feed.getPostThread"
AT = "at://did:plc:ntd53albt5ffa4rgervvgibd/app.bsky.feed.post/"


def test_search_pages_then_nothing_new(api, client, sleeps):
    api.add(SEARCH, own("bluesky_search_empty.json"), q="redistricting", cursor="25")
    api.add(SEARCH, own("bluesky_search_empty.json"), q="#rstats", cursor="100")
    api.add(SEARCH, recorded("bluesky/searchPosts_q_redistricting.json"), q="redistricting")
    api.add(SEARCH, recorded("bluesky/searchPosts_q_hashtag_rstats.json"), q="#rstats")
    cfg = config("bluesky", api.url, queries=["redistricting", "#rstats"], thread_depth=0)
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    expected = [
        p["uri"]
        for rel in (
            "bluesky/searchPosts_q_redistricting.json",
            "bluesky/searchPosts_q_hashtag_rstats.json",
        )
        for p in load_recorded(rel)["posts"]
    ]
    assert [p.external_id for p in got.posts] == list(dict.fromkeys(expected))
    assert got.quarantined == []

    posts = got.by_id()
    first = got.posts[0]
    assert first.created_at == datetime(2025, 5, 19, 17, 10, 9, 561858, tzinfo=UTC)
    assert first.author_handle == "socpaperbot.bsky.social" and first.lang is None
    langs = {p.external_id: (p.raw["record"].get("langs") or [None])[0] for p in got.posts}
    assert {p.external_id: p.lang for p in got.posts} == langs
    assert first.text.startswith("Ends Versus Means: Public Opinion on Congressional Redistricting")
    assert first.url.startswith("https://bsky.app/profile/socpaperbot.bsky.social/post/")

    reply = posts["at://did:plc:7nagdvjqrzaquzk7mueohne5/app.bsky.feed.post/3lpjzka2pzc2l"]
    assert reply.parent_external_id == (
        "at://did:plc:7nagdvjqrzaquzk7mueohne5/app.bsky.feed.post/3lpjzgltpa22l"
    )
    assert reply.root_external_id == (
        "at://did:plc:7nagdvjqrzaquzk7mueohne5/app.bsky.feed.post/3lpjy3eabqs2l"
    )
    offset = next(
        p for p in got.posts if p.raw["record"]["createdAt"] == "2025-07-04T03:02:14-05:00"
    )
    assert offset.created_at == datetime(2025, 7, 4, 8, 2, 14, tzinfo=UTC)

    cursors = [
        r.params.get("cursor") for r in api.requests_to(SEARCH) if r.params["q"] == "redistricting"
    ]
    assert cursors == [None, "25"]
    assert set(got.cursor["since"]) == {"redistricting", "#rstats"}

    again = drain(build_source(cfg, client=client, sleep=sleeps), got.cursor)
    assert again.posts == [] and again.quarantined == []
    assert api.requests_to(SEARCH)[-1].params["since"].startswith("2025-07-04T")


def test_thread_parents_and_replies(api, client, sleeps):
    api.add(SEARCH, own("bluesky_search_thread_hit.json"), q="atrrr")
    api.add(THREAD, recorded("bluesky/getPostThread_with_parent.json"), uri=AT + "3kbi57u4sys2l")
    cfg = config("bluesky", api.url, queries=["atrrr"], thread_depth=5)
    posts = drain(build_source(cfg, client=client, sleep=sleeps)).by_id()
    assert set(posts) == {
        AT + k for k in ("3kbi57u4sys2l", "3kbi56mwx5j2q", "3kbi55xm6u62v", "3kbi5dzaujr2n")
    }
    root, middle, tail = (
        posts[AT + "3kbi55xm6u62v"],
        posts[AT + "3kbi56mwx5j2q"],
        posts[AT + "3kbi5dzaujr2n"],
    )
    assert root.parent_external_id is None and root.root_external_id == AT + "3kbi55xm6u62v"
    assert (
        middle.parent_external_id == AT + "3kbi55xm6u62v"
        and middle.root_external_id == AT + "3kbi55xm6u62v"
    )
    assert (
        tail.parent_external_id == AT + "3kbi57u4sys2l"
        and tail.root_external_id == AT + "3kbi55xm6u62v"
    )
    assert posts[AT + "3kbi57u4sys2l"].text == "The search hit (a reply) &amp; its thread"
    call = api.requests_to(THREAD)[0]
    assert call.params["depth"] == "5" and call.params["parentHeight"] == "5"


def test_thread_replies_nested(api, client, sleeps):
    hit = load_recorded("bluesky/getPostThread_with_replies.json")["thread"]["post"]
    api.add(SEARCH, as_json({"posts": [hit]}), q="atrrr")
    api.add(THREAD, recorded("bluesky/getPostThread_with_replies.json"), uri=AT + "3kbi55xm6u62v")
    cfg = config("bluesky", api.url, queries=["atrrr"], thread_depth=2)
    posts = drain(build_source(cfg, client=client, sleep=sleeps)).by_id()
    # depth 2 stops before the third-level reply
    assert set(posts) == {AT + k for k in ("3kbi55xm6u62v", "3kbi56mwx5j2q", "3kbi57u4sys2l")}


def test_broken_item_deleted_reply_and_blocked(api, client, sleeps):
    api.add(SEARCH, own("bluesky_search_broken.json"), q="claude")
    api.add(THREAD, own("bluesky_thread_deleted_reply.json"))
    got = drain(
        build_source(config("bluesky", api.url, queries=["claude"]), client=client, sleep=sleeps)
    )
    posts = got.by_id()
    assert len(got.quarantined) == 1 and "3lpkbbbbbbb2b" in got.quarantined[0].payload
    deleted = posts["at://did:plc:dddddddddddddddddddddddd/app.bsky.feed.post/3lpkddddddd2d"]
    assert deleted.deleted and deleted.text == ""
    assert deleted.created_at == tid_time("3lpkddddddd2d")
    assert not any("eeeeeeee" in k for k in posts)  # blocked: skipped
    # createdAt unreadable: indexedAt stands in
    carol = posts["at://did:plc:cccccccccccccccccccccccc/app.bsky.feed.post/3lpkccccccc2c"]
    assert carol.created_at == datetime(2025, 5, 19, 8, 0, 1, tzinfo=UTC)
    assert len(posts) == 3


def test_tid_time_decodes_record_keys():
    # 3kbi55xm6u62v was created 2023-10-20 (the recording's createdAt).
    created = load_recorded("bluesky/getPostThread_with_replies.json")["thread"]["post"]["record"][
        "createdAt"
    ]
    assert (
        abs(
            (
                tid_time("3kbi55xm6u62v") - datetime.fromisoformat(created.replace("Z", "+00:00"))
            ).total_seconds()
        )
        < 5
    )


def test_app_password_session(api, client, sleeps):
    api.add(
        "/xrpc/com.atproto.server.createSession",
        as_json({"accessJwt": "acc", "refreshJwt": "ref", "did": "did:plc:x", "handle": "me"}),
        method="POST",
    )
    api.add(SEARCH, own("bluesky_search_empty.json"))
    cfg = config(
        "bluesky", api.url, queries=["x"], options={"identifier": "me", "app_password": "pw"}
    )
    drain(build_source(cfg, client=client, sleep=sleeps))
    session = api.requests_to("/xrpc/com.atproto.server.createSession")[0]
    assert b'"identifier": "me"' in session.body or b'"identifier":"me"' in session.body
    assert api.requests_to(SEARCH)[0].headers["authorization"] == "Bearer acc"


def test_a_search_cut_short_by_max_pages_is_finished_by_the_next_run(api, client, sleeps):
    """One page per run: the second run follows the kept page cursor before anything else."""
    api.add(SEARCH, own("bluesky_search_thread_hit.json"), q="redistricting", cursor="25")
    api.add(SEARCH, recorded("bluesky/searchPosts_q_redistricting.json"), q="redistricting")
    cfg = config("bluesky", api.url, queries=["redistricting"], thread_depth=0, max_pages=1)
    first = drain(build_source(cfg, client=client, sleep=sleeps))
    assert len(first.posts) == 25
    gap = first.cursor["backlog"]["redistricting"]
    assert gap["cursor"] == "25" and gap["mark"] is None

    second = drain(build_source(cfg, client=client, sleep=sleeps), first.cursor)
    assert [p.external_id for p in second.posts] == [AT + "3kbi57u4sys2l"]
    assert "backlog" not in second.cursor
    pages = [r.params.get("cursor") for r in api.requests_to(SEARCH)]
    assert pages == [None, "25", None]


# Watched posts: the search hit 3kbi57u4sys2l was posted 2023-10-20 12:00 UTC, so at FOUND it is
# an hour old, inside the default 24-hour watch.
HIT = AT + "3kbi57u4sys2l"
FOUND = datetime(2023, 10, 20, 13, tzinfo=UTC)
THREAD_FILE = "bluesky/getPostThread_with_parent.json"


def _watched_post(api, client, sleeps, monkeypatch, *later) -> Watched:
    """A source whose search finds the hit; its thread is served as recorded, then ``later``."""
    api.add(SEARCH, own("bluesky_search_thread_hit.json"), q="atrrr")
    api.add(THREAD, recorded(THREAD_FILE), *later, uri=HIT)
    cfg = config("bluesky", api.url, queries=["atrrr"], thread_depth=5)
    return Watched(
        api,
        client,
        sleeps,
        monkeypatch,
        module=bluesky_module,
        cfg=cfg,
        thread_id=HIT,
        thread_path=THREAD,
        created=datetime(2023, 10, 20, 12, tzinfo=UTC),
        found=FOUND,
    )


def _grown_thread():
    """The recorded thread with one new reply (tests/fixtures/ingest) to the hit."""
    body = load_recorded(THREAD_FILE)
    reply = own_json("bluesky_reply_3kbxyz2abcd2c.json")
    assert reply["post"]["record"]["reply"]["parent"]["uri"] == HIT
    body["thread"]["replies"].insert(0, reply)
    return body


def test_watched_post_is_read_again_for_new_replies(api, client, sleeps, monkeypatch):
    watched = _watched_post(api, client, sleeps, monkeypatch, as_json(_grown_thread()))
    first, second = watching.check_read_again(watched, new={AT + "3kbxyz2abcd2c"})
    assert set(first.by_id()) == {
        AT + k for k in ("3kbi57u4sys2l", "3kbi56mwx5j2q", "3kbi55xm6u62v", "3kbi5dzaujr2n")
    }
    # Reply times are indexedAt (createdAt is client-chosen), as for search marks.
    tail = load_recorded(THREAD_FILE)["thread"]["replies"][0]["post"]
    newest = datetime.fromisoformat(tail["indexedAt"]).timestamp()
    assert first.cursor["threads"] == {
        HIT: {
            "t": int(watched.created.timestamp()),
            "newest": newest,
            "newest_ids": [tail["uri"]],
            "query": "atrrr",
        }
    }
    reply = second.posts[0]
    assert reply.parent_external_id == HIT and reply.root_external_id == AT + "3kbi55xm6u62v"
    assert reply.query == "atrrr"
    assert (
        second.cursor["threads"][HIT]["newest"]
        == datetime(2023, 10, 20, 14, 0, 0, 500000, tzinfo=UTC).timestamp()
    )


def test_a_reply_at_the_time_of_the_newest_read_is_read_again(api, client, sleeps, monkeypatch):
    """A reply indexed at the newest time read, but not visible then, is still read once."""
    body = load_recorded(THREAD_FILE)
    tail = body["thread"]["replies"][0]["post"]
    reply = own_json("bluesky_reply_3kbxyz2abcd2c.json")
    reply["post"].update(uri=AT + "3kbxyz2abcd2d", indexedAt=tail["indexedAt"])
    reply["post"]["record"]["text"] = "Indexed at the same time."
    body["thread"]["replies"].insert(0, reply)
    watched = _watched_post(api, client, sleeps, monkeypatch, as_json(body))
    watching.check_reply_in_the_same_second(watched, new=AT + "3kbxyz2abcd2d")


def test_a_post_older_than_watch_hours_is_not_read_again(api, client, sleeps, monkeypatch):
    watching.check_ages_out(_watched_post(api, client, sleeps, monkeypatch))


@pytest.mark.parametrize(
    "gone",
    [
        # The AppView's answer for a deleted post ...
        Reply(400, b'{"error": "NotFound", "message": "Post not found: ' + HIT.encode() + b'"}'),
        # ... or a thread whose root is a notFoundPost node.
        as_json(
            {"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": HIT, "notFound": True}}
        ),
    ],
    ids=["400-NotFound", "notFoundPost"],
)
def test_a_deleted_watched_post_is_dropped(api, client, sleeps, monkeypatch, gone):
    watching.check_gone_is_dropped(_watched_post(api, client, sleeps, monkeypatch, gone))


def test_a_thread_is_watched_from_the_batch_that_stores_it(api, client, sleeps, monkeypatch):
    watching.check_watched_from_its_batch(_watched_post(api, client, sleeps, monkeypatch))


def test_a_watched_post_larger_than_thread_size_is_read_on_by_later_runs(
    api, client, sleeps, monkeypatch
):
    """Five replies join the recorded thread, listed out of time order; three posts a read
    (the hit's two ancestors count in the first): every read takes the oldest replies it has
    not read yet, so none is left behind.
    Taken in list order, the second read took 12:30, 12:10 and 12:50, its mark jumped to 12:50,
    and the replies at 12:20 and 12:40 were never read."""
    body = load_recorded(THREAD_FILE)
    template = own_json("bluesky_reply_3kbxyz2abcd2c.json")
    uris = {}
    for minute in (30, 10, 50, 20, 40):
        reply = copy.deepcopy(template)
        key = f"3kbzz{minute:02d}abcd2c"
        reply["post"]["uri"] = uri = template["post"]["uri"].rsplit("/", 1)[0] + "/" + key
        reply["post"]["indexedAt"] = f"2023-10-20T12:{minute:02d}:00.000Z"
        body["thread"]["replies"].append(reply)
        uris[minute] = uri
    watched = _watched_post(api, client, sleeps, monkeypatch, as_json(body))
    watched.cfg = watched.cfg.model_copy(update={"thread_size": 3})
    runs = [watched.run()]
    for hours in (1, 2, 3):
        watched.at(FOUND + timedelta(hours=hours))
        runs.append(watched.run(runs[-1].cursor))
    got = [sorted(p.external_id for p in r.posts) for r in runs]
    recorded_reply = AT + "3kbi5dzaujr2n"  # indexed 2023-10-11, the oldest reply
    assert got[0] == sorted([HIT, AT + "3kbi55xm6u62v", AT + "3kbi56mwx5j2q", recorded_reply])
    assert got[1:] == [sorted([uris[10], uris[20], uris[30]]), sorted([uris[40], uris[50]]), []]
