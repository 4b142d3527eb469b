"""Mastodon adapter against recorded tag timelines and contexts on loopback."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import ingest.sources.mastodon as mastodon_module
from ingest.sources import build_source
from tests.ingest import watching
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
from tests.ingest.watching import Watched


def test_two_instances_one_post_per_uri_then_nothing_new(api, client, sleeps):
    api.add(
        "/mastodon.social/api/v1/timelines/tag/rstats",
        recorded("mastodon/timelines_tag_rstats_mastodon_social.json"),
    )
    api.add(
        "/fosstodon/api/v1/timelines/tag/rstats",
        recorded("mastodon/timelines_tag_rstats_fosstodon.json"),
    )
    instances = [f"{api.url}/mastodon.social", f"{api.url}/fosstodon"]
    cfg = config("mastodon", queries=["#rstats"], thread_depth=0, options={"instances": instances})
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    statuses = load_recorded("mastodon/timelines_tag_rstats_mastodon_social.json")
    assert [p.external_id for p in got.posts] == [s["uri"] for s in statuses]
    assert got.quarantined == []
    first = got.posts[0]
    assert first.text.startswith("After a month or so of not using Claude Code much")
    assert "<" not in first.text and "&amp;" not in first.text
    assert first.created_at == datetime(2025, 7, 17, 19, 7, 48, tzinfo=UTC)
    assert first.author_handle == "simonpcouch@rstats.me" and first.lang == "en"
    assert first.root_external_id == first.external_id and first.parent_external_id is None
    assert first.engagement == {"replies": 0, "reposts": 0, "likes": 0}
    assert first.query == "#rstats"
    assert got.cursor == {
        "since_id": {
            f"{instances[0]}|rstats": "114870142396314555",
            f"{instances[1]}|rstats": "114870142263126875",
        }
    }
    again = drain(build_source(cfg, client=client, sleep=sleeps), got.cursor)
    assert again.posts == []
    last = api.requests_to("/fosstodon/api/v1/timelines/tag/rstats")[-1]
    assert last.params["since_id"] == "114870142263126875"


def test_link_header_paging_and_broken_status(api, client, sleeps, monkeypatch):
    freeze_now(monkeypatch, mastodon_module, datetime(2025, 3, 1, 13, tzinfo=UTC))
    path = "/api/v1/timelines/tag/claude"
    api.add(path, own("mastodon_tag_page2.json"), max_id="200001")
    api.add(
        path,
        own(
            "mastodon_tag_page1.json",
            headers={
                "Link": '<{base}/api/v1/timelines/tag/claude?max_id=200001>; rel="next", '
                '<{base}/api/v1/timelines/tag/claude?min_id=200003>; rel="prev"'
            },
        ),
    )
    cfg = config("mastodon", api.url, queries=["claude"], thread_depth=0)
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    assert [p.external_id.rsplit("/", 1)[1] for p in got.posts] == ["200003", "200002", "100001"]
    assert len(got.quarantined) == 1 and "200001" in got.quarantined[0].payload
    assert got.posts[0].text == "Claude & GPT-5 #ai\n\nsecond line"
    assert got.posts[2].title == "cw: rant"
    assert got.cursor["since_id"][f"{api.url}|claude"] == "200003"


def test_context_descendants_resolve_to_uris(api, client, sleeps):
    api.add("/api/v1/timelines/tag/rstats", own("mastodon_tag_focal.json"))
    api.add(
        "/api/v1/statuses/109294719267373593/context",
        recorded("mastodon/statuses_109294719267373593_context.json"),
    )
    cfg = config("mastodon", api.url, queries=["rstats"], thread_depth=10, thread_size=1000)
    got = drain(build_source(cfg, client=client, sleep=sleeps))
    context = load_recorded("mastodon/statuses_109294719267373593_context.json")
    focal_uri = "https://mastodon.social/users/focal_user/statuses/109294719267373593"
    uri_of = {s["id"]: s["uri"] for s in context["descendants"]} | {"109294719267373593": focal_uri}
    posts = got.by_id()
    assert set(posts) == {focal_uri} | {s["uri"] for s in context["descendants"]}
    for s in context["descendants"]:
        post = posts[s["uri"]]
        assert post.parent_external_id == uri_of[s["in_reply_to_id"]]
        assert post.root_external_id == focal_uri
        assert "<" not in post.text


def test_context_ancestors_give_parent_and_root(api, client, sleeps):
    api.add("/api/v1/timelines/tag/rstats", own("mastodon_tag_reply.json"))
    api.add(
        "/api/v1/statuses/114027213608365869/context",
        recorded("mastodon/statuses_114027213608365869_context_with_ancestors.json"),
    )
    cfg = config("mastodon", api.url, queries=["rstats"])
    posts = drain(build_source(cfg, client=client, sleep=sleeps)).by_id()
    ancestor = "https://fosstodon.org/users/schochastics/statuses/114026814291152535"
    reply = posts["https://fosstodon.org/users/reply_user/statuses/114027213608365869"]
    assert reply.parent_external_id == ancestor and reply.root_external_id == ancestor
    assert posts[ancestor].root_external_id == ancestor
    assert posts[ancestor].created_at == datetime(2025, 2, 18, 20, 38, 26, 738000, tzinfo=UTC)


def test_a_walk_cut_short_by_max_pages_is_finished_by_the_next_run(
    api, client, sleeps, monkeypatch
):
    """One page per run: the second run follows the kept next link before looking for new posts."""
    freeze_now(monkeypatch, mastodon_module, datetime(2025, 3, 1, 13, tzinfo=UTC))
    path = "/api/v1/timelines/tag/claude"
    api.add(path, own("mastodon_tag_page2.json"), max_id="200001")
    api.add(path, as_json([]), since_id="200003")
    api.add(
        path,
        own(
            "mastodon_tag_page1.json",
            headers={"Link": '<{base}/api/v1/timelines/tag/claude?max_id=200001>; rel="next"'},
        ),
    )
    cfg = config("mastodon", api.url, queries=["claude"], thread_depth=0, max_pages=1)
    first = drain(build_source(cfg, client=client, sleep=sleeps))
    assert [p.external_id.rsplit("/", 1)[1] for p in first.posts] == ["200003", "200002"]
    key = f"{api.url}|claude"
    assert first.cursor["since_id"][key] == "200003"
    assert first.cursor["backlog"][key]["next"].endswith("max_id=200001")

    second = drain(build_source(cfg, client=client, sleep=sleeps), first.cursor)
    assert [p.external_id.rsplit("/", 1)[1] for p in second.posts] == ["100001"]
    assert "backlog" not in second.cursor and second.cursor["since_id"][key] == "200003"


# Watched statuses: the focal status 109294719267373593 was posted 2022-11-06 03:20 UTC, so at
# FOUND it is 40 minutes old, inside the default 24-hour watch.
FOCAL_ID = "109294719267373593"
FOCAL_URI = "https://mastodon.social/users/focal_user/statuses/109294719267373593"
FOUND = datetime(2022, 11, 6, 4, tzinfo=UTC)
CONTEXT = f"/api/v1/statuses/{FOCAL_ID}/context"
CONTEXT_FILE = "mastodon/statuses_109294719267373593_context.json"
NEW_REPLY = "mastodon_status_109303400000000001.json"


def _watched_status(api, client, sleeps, monkeypatch, *later) -> Watched:
    """A source finding the focal status; its context is served as recorded, then ``later``."""
    api.add("/api/v1/timelines/tag/rstats", own("mastodon_tag_focal.json"))
    api.add(CONTEXT, recorded(CONTEXT_FILE), *later)
    cfg = config("mastodon", api.url, queries=["rstats"], thread_depth=10, thread_size=1000)
    return Watched(
        api,
        client,
        sleeps,
        monkeypatch,
        module=mastodon_module,
        cfg=cfg,
        thread_id=FOCAL_URI,
        thread_path=CONTEXT,
        created=datetime(2022, 11, 6, 3, 20, tzinfo=UTC),
        found=FOUND,
    )


def _grown_context():
    """The recorded context with one new reply (tests/fixtures/ingest) to the focal status."""
    context = load_recorded(CONTEXT_FILE)
    reply = own_json(NEW_REPLY)
    assert reply["in_reply_to_id"] == FOCAL_ID
    context["descendants"].append(reply)
    return context


def test_watched_status_is_read_again_for_new_replies(api, client, sleeps, monkeypatch):
    watched = _watched_status(api, client, sleeps, monkeypatch, as_json(_grown_context()))
    new_uri = "https://mastodon.social/users/austinkocher/statuses/109303400000000001"
    first, second = watching.check_read_again(watched, new={new_uri})
    descendants = load_recorded(CONTEXT_FILE)["descendants"]
    assert set(first.by_id()) == {FOCAL_URI} | {s["uri"] for s in descendants}
    newest = max(datetime.fromisoformat(s["created_at"]).timestamp() for s in descendants)
    assert first.cursor["threads"] == {
        FOCAL_URI: {
            "t": int(watched.created.timestamp()),
            "newest": newest,
            "newest_ids": [
                s["uri"]
                for s in descendants
                if datetime.fromisoformat(s["created_at"]).timestamp() == newest
            ],
            "query": "#rstats",
            "instance": api.url,
            "id": FOCAL_ID,
        }
    }
    reply = second.posts[0]
    assert reply.parent_external_id == FOCAL_URI and reply.root_external_id == FOCAL_URI
    assert reply.query == "#rstats"
    assert reply.created_at == datetime(2022, 11, 7, 16, tzinfo=UTC)
    assert second.cursor["threads"][FOCAL_URI]["newest"] == reply.created_at.timestamp()


def test_a_reply_at_the_time_of_the_newest_read_is_read_again(api, client, sleeps, monkeypatch):
    """A reply created at the newest time read, but not visible then, is still read once."""
    context = load_recorded(CONTEXT_FILE)
    newest = max(context["descendants"], key=lambda s: datetime.fromisoformat(s["created_at"]))
    reply = own_json(NEW_REPLY)
    sid = "109303400000000002"
    reply.update(
        id=sid,
        uri=f"https://mastodon.social/users/austinkocher/statuses/{sid}",
        url=f"https://mastodon.social/@austinkocher/{sid}",
        content="<p>Posted at the same time.</p>",
        created_at=newest["created_at"],
    )
    context["descendants"].append(reply)
    watched = _watched_status(api, client, sleeps, monkeypatch, as_json(context))
    watching.check_reply_in_the_same_second(watched, new=reply["uri"])


def test_a_status_older_than_watch_hours_is_not_read_again(api, client, sleeps, monkeypatch):
    watching.check_ages_out(_watched_status(api, client, sleeps, monkeypatch))


def test_a_deleted_watched_status_is_dropped(api, client, sleeps, monkeypatch):
    gone = Reply(404, b'{"error": "Record not found"}')
    watching.check_gone_is_dropped(_watched_status(api, client, sleeps, monkeypatch, gone))


def test_a_watched_status_hidden_for_a_run_stays_watched(api, client, sleeps, monkeypatch):
    denied = Reply(401, b'{"error": "The access token is invalid"}')
    watched = _watched_status(api, client, sleeps, monkeypatch, denied, as_json(_grown_context()))
    first = watched.run()
    watched.at(FOUND + timedelta(hours=1))
    second = watched.run(first.cursor)
    # A token problem hides every thread at once: none is dropped, the run goes on.
    assert second.posts == []
    assert second.cursor["threads"] == first.cursor["threads"]
    third = watched.run(second.cursor)
    assert [p.external_id for p in third.posts] == [
        "https://mastodon.social/users/austinkocher/statuses/109303400000000001"
    ]
    assert watched.reads() == 3


def test_a_watched_status_on_an_instance_no_longer_configured_is_dropped(
    api, client, sleeps, monkeypatch
):
    watched = _watched_status(api, client, sleeps, monkeypatch)
    first = watched.run()
    moved = copy.deepcopy(first.cursor)
    moved["threads"][FOCAL_URI]["instance"] = f"{api.url}/elsewhere"
    watched.at(FOUND + timedelta(hours=1))
    second = watched.run(moved)
    assert second.posts == [] and "threads" not in second.cursor
    assert watched.reads() == 1
    assert api.requests_to(f"/elsewhere{CONTEXT}") == []


def test_a_thread_is_watched_from_the_batch_that_stores_it(api, client, sleeps, monkeypatch):
    watching.check_watched_from_its_batch(_watched_status(api, client, sleeps, monkeypatch))


def test_a_watched_status_larger_than_thread_size_is_read_on_by_later_runs(
    api, client, sleeps, monkeypatch
):
    """The recorded context lists its 59 replies in thread order, not time order. Twenty a
    read, oldest first, the first read and two revisits take them all. Taken in thread order,
    the first read's mark jumped to 19:11 (its 13th reply), the revisits read only the 2 newer
    replies, and 37 replies were never read."""
    descendants = load_recorded(CONTEXT_FILE)["descendants"]
    watched = _watched_status(api, client, sleeps, monkeypatch)
    watched.cfg = watched.cfg.model_copy(update={"thread_size": 20})
    runs = [watched.run()]
    for hours in (1, 2, 3):
        watched.at(FOUND + timedelta(hours=hours))
        runs.append(watched.run(runs[-1].cursor))
    replies = [[p for p in r.posts if p.external_id != FOCAL_URI] for r in runs]
    assert [len(r) for r in replies] == [20, 20, 19, 0]
    assert {p.external_id for r in replies for p in r} == {s["uri"] for s in descendants}
    # Each read takes the oldest replies it has not read yet.
    times = [sorted(p.created_at for p in r) for r in replies[:3]]
    assert times[0][-1] <= times[1][0] and times[1][-1] <= times[2][0]
