"""Reddit adapter against recorded listings, a comment tree and morechildren on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import ingest.sources.reddit as reddit_module
from ingest.http import SourceError
from ingest.sources import build_source
from tests.ingest.conftest import (
    Reply,
    as_json,
    config,
    drain,
    freeze_now,
    load_recorded,
    own,
    own_json,
    recorded,
)
from tests.ingest.watching import (
    Watched,
    check_ages_out,
    check_gone_is_dropped,
    check_read_again,
    check_reply_in_the_same_second,
    check_watched_from_its_batch,
)


def _serve_listings(api):
    api.add("/search.json", own("reddit_search_page2.json"), after="t3_hmwhd7")
    api.add("/search.json", recorded("reddit/search_posts.json"), q="golang")
    api.add("/r/netsec/new.json", own("reddit_netsec_new_page2.json"), after="t3_582bi3")
    api.add("/r/netsec/new.json", recorded("reddit/subreddit_netsec_listing.json"))


def test_search_and_subreddit_listings_with_paging(api, client, sleeps, monkeypatch):
    # The recordings are from 2016/2020: pin "now" so they fall inside a 90-day backfill.
    freeze_now(monkeypatch, reddit_module, datetime(2016, 10, 20, tzinfo=UTC))
    _serve_listings(api)
    cfg = config(
        "reddit",
        api.url,
        queries=["golang"],
        backfill_hours=24 * 90,
        thread_depth=0,
        options={"subreddits": ["netsec"]},
    )
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    recorded_ids = {
        c["data"]["name"]
        for rel in ("reddit/search_posts.json", "reddit/subreddit_netsec_listing.json")
        for c in load_recorded(rel)["data"]["children"]
    }
    posts = got.by_id()
    assert set(posts) == recorded_ids | {"t3_581zzz"}
    assert len(got.posts) == 2 + 27 + 1
    assert len(got.quarantined) == 1 and "581yyy" in got.quarantined[0].payload

    hiring = posts["t3_552rz1"]
    assert hiring.title == "/r/netsec's Q4 2016 Information Security Hiring Thread"
    assert "Rules & Guidelines" in hiring.text and "&amp;" not in hiring.text
    assert hiring.created_at == datetime.fromtimestamp(1475163718, tz=UTC)
    assert hiring.root_external_id == "t3_552rz1" and hiring.parent_external_id is None
    assert hiring.url == (
        "https://www.reddit.com/r/netsec/comments/552rz1/rnetsecs_q4_2016_information_security_hiring/"
    )
    assert hiring.engagement == {"score": 205, "comments": 69}
    assert posts["t3_hybow9"].query == "golang" and posts["t3_552rz1"].query is None

    removed = posts["t3_581zzz"]
    assert removed.deleted and removed.author_handle is None
    assert removed.text == "A post whose author left"

    # Paging followed ``after`` and sent the descriptive User-Agent.
    afters = [r.params.get("after") for r in api.requests_to("/r/netsec/new.json")]
    assert afters == [None, "t3_582bi3"]
    assert api.requests[0].headers["user-agent"].startswith("undertow/")
    assert api.requests[0].params["raw_json"] == "1"

    n = len(api.requests)
    again = drain(build_source(cfg, client=client, sleep=sleeps), got.cursor)
    assert again.posts == [] and again.quarantined == []
    # Each listing stops at its first page: everything on it is at or below the mark.
    assert len(api.requests) - n == 2


def _walk(children, out):
    for c in children:
        if c["kind"] == "t1":
            out.append(c["data"])
            replies = c["data"].get("replies")
            if isinstance(replies, dict):
                _walk(replies["data"]["children"], out)
    return out


def _more_ids(children, out):
    for c in children:
        if c["kind"] == "more":
            out.extend(c["data"]["children"])
        elif isinstance(c["data"].get("replies"), dict):
            _more_ids(c["data"]["replies"]["data"]["children"], out)
    return out


THREAD = "/comments/1cebxh.json"


def _self_1cebxh(api, *later, more_limit: int):
    """Serve r/self finding thread 1cebxh (as recorded, then ``later``); a config reading it."""
    api.add("/r/self/new.json", own("reddit_self_new_1cebxh.json"))
    api.add(THREAD, recorded("reddit/comments_thread_1cebxh.json"), *later)
    return config(
        "reddit",
        api.url,
        thread_depth=50,
        thread_size=10_000,
        options={"subreddits": ["self"], "more_limit": more_limit},
    )


def test_comment_tree_with_more_stubs(api, client, sleeps, monkeypatch):
    freeze_now(monkeypatch, reddit_module, datetime(2013, 4, 16, tzinfo=UTC))
    api.add("/api/morechildren", recorded("reddit/morechildren.json"))
    cfg = _self_1cebxh(api, more_limit=1)
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    posts = got.by_id()

    thread = load_recorded("reddit/comments_thread_1cebxh.json")
    tree = _walk(thread[1]["data"]["children"], [])
    more = [
        t["data"]
        for t in load_recorded("reddit/morechildren.json")["json"]["data"]["things"]
        if t["kind"] == "t1"
    ]
    expected = {"t3_1cebxh"} | {c["name"] for c in tree} | {c["name"] for c in more}
    assert set(posts) == expected
    assert len(got.posts) == 1 + 199 + 50 and got.quarantined == []

    top = posts["t1_c9ftsjg"]
    assert top.parent_external_id == "t3_1cebxh" and top.root_external_id == "t3_1cebxh"
    assert top.author_handle == "bacon_cake" and top.text.endswith("that's something special.")
    nested = next(c for c in tree if c["parent_id"].startswith("t1_"))
    assert posts[nested["name"]].parent_external_id == nested["parent_id"]
    deleted = [p for p in got.posts if p.deleted]
    gone = {c["name"] for c in tree if c["body"] in ("[deleted]", "[removed]")}
    assert {p.external_id for p in deleted} == gone and all(p.text == "" for p in deleted)
    assert posts["t1_fvbhult"].root_external_id == "t3_hbo4a7"

    calls = api.requests_to("/api/morechildren")
    assert len(calls) == 1
    assert calls[0].params["link_id"] == "t3_1cebxh"
    assert (
        calls[0].params["children"].split(",")
        == sorted(_more_ids(thread[1]["data"]["children"], []), key=lambda i: int(i, 36))[:100]
    )
    tree_call = api.requests_to(THREAD)[0]
    assert tree_call.params["depth"] == "50" and tree_call.params["sort"] == "new"


def test_thread_size_bounds_the_tree(api, client, sleeps, monkeypatch):
    freeze_now(monkeypatch, reddit_module, datetime(2013, 4, 16, tzinfo=UTC))
    api.add("/r/self/new.json", own("reddit_self_new_1cebxh.json"))
    api.add("/comments/1cebxh.json", recorded("reddit/comments_thread_1cebxh.json"))
    cfg = config(
        "reddit", api.url, thread_depth=1, thread_size=10, options={"subreddits": ["self"]}
    )
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    comments = [p for p in got.posts if p.external_id.startswith("t1_")]
    assert len(comments) == 10
    assert all(p.parent_external_id == "t3_1cebxh" for p in comments)
    assert api.requests_to("/api/morechildren") == []


def test_oauth_client_credentials(api, client, sleeps, monkeypatch):
    freeze_now(monkeypatch, reddit_module, datetime(2016, 10, 20, tzinfo=UTC))
    api.add(
        "/api/v1/access_token",
        as_json({"access_token": "tok123", "expires_in": 3600}),
        method="POST",
    )
    api.add(
        "/r/netsec/new.json", as_json({"kind": "Listing", "data": {"after": None, "children": []}})
    )
    cfg = config(
        "reddit",
        api.url,
        options={
            "subreddits": ["netsec"],
            "client_id": "id",
            "client_secret": "pw",
            "auth_url": api.url,
        },
    )
    drain(build_source(cfg, client=client, sleep=sleeps))
    token_call = api.requests_to("/api/v1/access_token")[0]
    assert token_call.headers["authorization"].startswith("Basic ")
    assert b"grant_type=client_credentials" in token_call.body
    assert api.requests_to("/r/netsec/new.json")[0].headers["authorization"] == "bearer tok123"


def test_a_non_listing_response_is_a_source_error(api, client, sleeps):
    api.add("/r/netsec/new.json", as_json({"message": "Forbidden"}))
    cfg = config("reddit", api.url, options={"subreddits": ["netsec"]})
    with pytest.raises(SourceError):
        drain(build_source(cfg, client=client, sleep=sleeps))


def test_a_listing_cut_short_by_max_pages_is_finished_by_the_next_run(
    api, client, sleeps, monkeypatch
):
    """One page per run: the second run follows the kept ``after`` token before anything else."""
    freeze_now(monkeypatch, reddit_module, datetime(2016, 10, 20, tzinfo=UTC))
    api.add("/r/netsec/new.json", own("reddit_netsec_new_page2.json"), after="t3_582bi3")
    api.add("/r/netsec/new.json", recorded("reddit/subreddit_netsec_listing.json"))
    cfg = config(
        "reddit",
        api.url,
        backfill_hours=24 * 90,
        thread_depth=0,
        max_pages=1,
        options={"subreddits": ["netsec"]},
    )
    first = drain(build_source(cfg, client=client, sleep=sleeps))
    page1 = {
        c["data"]["name"]
        for c in load_recorded("reddit/subreddit_netsec_listing.json")["data"]["children"]
    }
    assert set(first.by_id()) == page1
    assert first.cursor["backlog"]["r/netsec"]["after"] == "t3_582bi3"

    second = drain(build_source(cfg, client=client, sleep=sleeps), first.cursor)
    assert "t3_581zzz" in second.by_id() and not set(second.by_id()) & page1
    assert "backlog" not in second.cursor
    afters = [r.params.get("after") for r in api.requests_to("/r/netsec/new.json")]
    assert afters == [None, "t3_582bi3", None]


# Watched threads: the recorded thread 1cebxh was posted 2013-04-15 16:44:39 UTC, so at FOUND it
# is seven hours old, inside the default 24-hour watch.
FOUND = datetime(2013, 4, 16, tzinfo=UTC)


def _watched_thread(api, client, sleeps, monkeypatch, *later) -> Watched:
    """A source whose listing finds thread 1cebxh, served as recorded first, then ``later``."""
    return Watched(
        api,
        client,
        sleeps,
        monkeypatch,
        module=reddit_module,
        # more_limit=0: the recorded morechildren answer belongs to another (2020) thread.
        cfg=_self_1cebxh(api, *later, more_limit=0),
        thread_id="t3_1cebxh",
        thread_path=THREAD,
        created=datetime(2013, 4, 15, 16, 44, 39, tzinfo=UTC),
        found=FOUND,
    )


def _grown_thread():
    """The recorded thread with one new reply (tests/fixtures/ingest) under its top comment."""
    thread = load_recorded("reddit/comments_thread_1cebxh.json")
    top = thread[1]["data"]["children"][0]["data"]
    assert top["name"] == "t1_c9ftsjg"
    reply = own_json("reddit_comment_c9zz001.json")
    top["replies"]["data"]["children"].insert(0, reply)  # sort=new: the newest first
    return thread


def test_watched_thread_is_read_again_for_new_comments(api, client, sleeps, monkeypatch):
    watched = _watched_thread(api, client, sleeps, monkeypatch, as_json(_grown_thread()))
    first, second = check_read_again(watched, new={"t1_c9zz001"})
    tree = _walk(load_recorded("reddit/comments_thread_1cebxh.json")[1]["data"]["children"], [])
    assert set(first.by_id()) == {"t3_1cebxh"} | {c["name"] for c in tree}
    newest = max(int(c["created_utc"]) for c in tree)
    at_newest = sorted(c["name"] for c in tree if int(c["created_utc"]) == newest)
    top = max((c["id"] for c in tree), key=lambda i: int(i, 36))
    assert first.cursor["threads"] == {
        "t3_1cebxh": {
            "t": 1366044279,
            "newest": newest,
            "newest_ids": at_newest,
            "query": None,
            "max_id": top,
        }
    }
    reply = second.posts[0]
    assert reply.parent_external_id == "t1_c9ftsjg" and reply.root_external_id == "t3_1cebxh"
    assert reply.created_at == datetime.fromtimestamp(1366231907, tz=UTC)
    assert second.cursor["threads"]["t3_1cebxh"]["newest"] == 1366231907


def test_a_comment_in_the_second_of_the_newest_read_is_read_again(api, client, sleeps, monkeypatch):
    """Reddit times are whole seconds: a comment that was not visible yet can share one."""
    thread = load_recorded("reddit/comments_thread_1cebxh.json")
    newest = max(int(c["created_utc"]) for c in _walk(thread[1]["data"]["children"], []))
    reply = own_json("reddit_comment_c9zz001.json")
    reply["data"].update(
        id="c9zz002", name="t1_c9zz002", body="Posted in the same second.", created_utc=newest
    )
    top = thread[1]["data"]["children"][0]["data"]
    top["replies"]["data"]["children"].append(reply)
    watched = _watched_thread(api, client, sleeps, monkeypatch, as_json(thread))
    check_reply_in_the_same_second(watched, new="t1_c9zz002")


def test_a_large_watched_thread_is_handed_on_in_batches(api, client, sleeps, monkeypatch):
    """A revisit hands on the pages its tree walk flushes, without a cursor, as they come."""
    monkeypatch.setattr(reddit_module, "_FLUSH_POSTS", 1)
    watched = _watched_thread(api, client, sleeps, monkeypatch, as_json(_grown_thread()))
    first = watched.run()
    watched.at(FOUND + timedelta(hours=1))
    batches = list(
        build_source(watched.cfg, client=client, sleep=sleeps).fetch(cursor=first.cursor)
    )
    flushed = [b for b in batches if b.posts]
    assert [[p.external_id for p in b.posts] for b in flushed] == [["t1_c9zz001"]]
    assert flushed[0].cursor is None
    assert batches[-1].cursor["threads"]["t3_1cebxh"]["newest"] == 1366231907


def test_a_thread_older_than_watch_hours_is_not_read_again(api, client, sleeps, monkeypatch):
    check_ages_out(_watched_thread(api, client, sleeps, monkeypatch))


def test_a_deleted_watched_thread_is_dropped(api, client, sleeps, monkeypatch):
    gone = Reply(404, b'{"error": 404}')
    check_gone_is_dropped(_watched_thread(api, client, sleeps, monkeypatch, gone))


def test_a_thread_is_watched_from_the_batch_that_stores_it(api, client, sleeps, monkeypatch):
    check_watched_from_its_batch(_watched_thread(api, client, sleeps, monkeypatch))


def test_a_watched_thread_larger_than_thread_size_is_read_on_by_later_visits(
    api, client, sleeps, monkeypatch
):
    """Fifty of the recorded thread's 199 comments a visit: each visit reads fifty no visit has
    read (the ones left past thread_size are owed, whatever their time), until all are read.
    Before, the first visit's mark moved to the newest comment read and the other 149 were
    never read."""
    watched = _watched_thread(api, client, sleeps, monkeypatch)
    watched.cfg = watched.cfg.model_copy(update={"thread_size": 50})
    runs = [watched.run()]
    for hours in range(1, 6):
        watched.at(FOUND + timedelta(hours=hours))
        runs.append(watched.run(runs[-1].cursor))
    read = [[p.external_id for p in r.posts if p.external_id.startswith("t1_")] for r in runs]
    assert [len(r) for r in read] == [50, 50, 50, 49, 0, 0]
    tree = _walk(load_recorded("reddit/comments_thread_1cebxh.json")[1]["data"]["children"], [])
    assert {i for r in read for i in r} == {c["name"] for c in tree}
    assert len(runs[0].cursor["threads"]["t3_1cebxh"]["pending"]) == 149
    assert "pending" not in runs[-1].cursor["threads"]["t3_1cebxh"]


def _strip_more(children):
    """The children without their ``more`` links, at every depth."""
    out = []
    for c in children:
        if c["kind"] == "more":
            continue
        replies = c["data"].get("replies")
        if isinstance(replies, dict):
            replies["data"]["children"] = _strip_more(replies["data"]["children"])
        out.append(c)
    return out


def test_ids_behind_more_links_left_by_one_visit_are_read_by_the_next(
    api, client, sleeps, monkeypatch
):
    """Four top-level comments behind one "more" link, two ids a call, one call a visit: the
    first visit reads the two oldest, the second the other two although they are older than
    everything read by then, the third asks for nothing. Before, every visit asked for the same
    first ids of the link, so the others were never read."""
    monkeypatch.setattr(reddit_module, "_MORE_BATCH", 2)
    thread = load_recorded("reddit/comments_thread_1cebxh.json")
    top = _strip_more(thread[1]["data"]["children"])
    hidden = [c for c in top if not isinstance(c["data"].get("replies"), dict)][-4:]
    ids = sorted((c["data"]["id"] for c in hidden), key=lambda i: int(i, 36))
    stub = {
        "kind": "more",
        "data": {
            "count": 4,
            "name": f"t1_{ids[0]}",
            "id": ids[0],
            "parent_id": "t3_1cebxh",
            "depth": 0,
            "children": [c["data"]["id"] for c in hidden],  # in the tree's order
        },
    }
    thread[1]["data"]["children"] = [c for c in top if c not in hidden] + [stub]
    by_id = {c["data"]["id"]: c for c in hidden}
    for pair in (ids[:2], ids[2:]):
        things = [{"kind": "t1", "data": {**by_id[i]["data"], "replies": ""}} for i in pair]
        reply = as_json({"json": {"errors": [], "data": {"things": things}}})
        api.add("/api/morechildren", reply, children=",".join(pair))
    watched = Watched(
        api,
        client,
        sleeps,
        monkeypatch,
        module=reddit_module,
        cfg=config(
            "reddit",
            api.url,
            thread_depth=50,
            thread_size=10_000,
            options={"subreddits": ["self"], "more_limit": 1},
        ),
        thread_id="t3_1cebxh",
        thread_path=THREAD,
        created=datetime(2013, 4, 15, 16, 44, 39, tzinfo=UTC),
        found=FOUND,
    )
    api.add("/r/self/new.json", own("reddit_self_new_1cebxh.json"))
    api.add(THREAD, as_json(thread))
    first = watched.run()
    assert {f"t1_{i}" for i in ids[:2]} <= set(first.by_id())
    assert not {f"t1_{i}" for i in ids[2:]} & set(first.by_id())
    assert first.cursor["threads"]["t3_1cebxh"]["pending"] == ids[2:]
    watched.at(FOUND + timedelta(hours=1))
    second = watched.run(first.cursor)
    assert sorted(p.external_id for p in second.posts) == [f"t1_{i}" for i in ids[2:]]
    assert "pending" not in second.cursor["threads"]["t3_1cebxh"]
    watched.at(FOUND + timedelta(hours=2))
    third = watched.run(second.cursor)
    assert third.posts == []
    calls = [r.params["children"] for r in api.requests_to("/api/morechildren")]
    assert calls == [",".join(ids[:2]), ",".join(ids[2:])]
