"""Hacker News adapter against recorded Algolia responses on a loopback server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ingest.sources.hackernews as hackernews_module
from ingest.base import Quarantined
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
    recorded,
)
from tests.ingest.watching import (
    Watched,
    check_ages_out,
    check_read_again,
    check_reply_in_the_same_second,
    check_watched_from_its_batch,
)

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


def test_a_burst_beyond_max_pages_is_read_by_the_next_run(api, client, sleeps, monkeypatch):
    """A run that runs out of pages keeps the unread time range and reads it next time."""
    template = load_recorded("hn_algolia/search_by_date_story.json")["hits"][0]
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    freeze_now(monkeypatch, hackernews_module, now)
    floor = int(now.timestamp()) - 24 * 3600
    times = [floor + 600 + 60 * i for i in range(6)]  # t0 .. t5, served newest first

    def hit(i: int) -> dict[str, Any]:
        return {
            **template,
            "objectID": str(5000 + i),
            "created_at_i": times[i],
            "created_at": datetime.fromtimestamp(times[i], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "title": f"Story number {i}",
        }

    def page(idx: list[int], n_pages: int) -> Reply:
        return as_json({"hits": [hit(i) for i in idx], "nbPages": n_pages})

    story = {"tags": "(story)"}
    # Run 2: the backlog range first, then the normal pass from the newest mark.
    gap = f"created_at_i>={floor},created_at_i<={times[2]}"
    api.add(SEARCH, page([2, 1], 2), numericFilters=gap, page="0", **story)
    api.add(SEARCH, page([0], 2), numericFilters=gap, page="1", **story)
    api.add(SEARCH, page([5], 1), numericFilters=f"created_at_i>={times[5]}", **story)
    # Run 1: six new stories, but only two pages of two per run.
    api.add(SEARCH, page([5, 4], 3), page="0", **story)
    api.add(SEARCH, page([3, 2], 3), page="1", **story)
    api.add(SEARCH, as_json({"hits": [], "nbPages": 0}), tags="(comment)")
    cfg = config(
        "hackernews", api.url, queries=[""], thread_depth=0, max_pages=2, backfill_hours=24
    )
    src = build_source(cfg, client=client, sleep=sleeps)

    first = drain(src)
    assert sorted(p.external_id for p in first.posts) == ["5002", "5003", "5004", "5005"]
    assert first.cursor["backlog"] == {"story:": {"from": floor, "until": times[2]}}

    second = drain(src, first.cursor)
    assert sorted(p.external_id for p in second.posts) == ["5000", "5001", "5002"]
    assert "backlog" not in second.cursor
    assert second.cursor["since"][""]["t"] == float(times[5])


# Watched stories: story 7000 is an hour old at FOUND, inside the default 24-hour watch.
FOUND = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STORY_T = int(FOUND.timestamp()) - 3600
ITEMS = "/api/v1/items/7000"


def _node(i: int, dt: int, kids: list[Any] | None = None, parent: int = 7000) -> dict[str, Any]:
    """An items/{id} comment node posted ``dt`` seconds after the story."""
    when = datetime.fromtimestamp(STORY_T + dt, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "id": i,
        "created_at": when,
        "created_at_i": STORY_T + dt,
        "type": "comment",
        "author": f"user{i}",
        "text": f"reply {i}",
        "parent_id": parent,
        "story_id": 7000,
        "children": kids or [],
    }


def _story_tree(*children: dict[str, Any]) -> Reply:
    return as_json(
        {
            "id": 7000,
            "created_at_i": STORY_T,
            "type": "story",
            "title": "A story",
            "children": children,
        }
    )


def _watched_story(api, client, sleeps, monkeypatch, *later) -> Watched:
    """A source whose search finds story 7000; its tree has reply 7001 at first, then ``later``."""
    template = load_recorded("hn_algolia/search_by_date_story.json")["hits"][0]
    created = datetime.fromtimestamp(STORY_T, UTC)
    story = {**template, "objectID": "7000", "created_at_i": STORY_T, "num_comments": 1}
    story["created_at"] = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    api.add(ITEMS, _story_tree(_node(7001, 60)), *later)
    nothing = as_json({"hits": [], "nbPages": 0})
    api.add(SEARCH, nothing, numericFilters=f"created_at_i>={STORY_T}")
    api.add(SEARCH, as_json({"hits": [story], "nbPages": 1}), tags="(story)")
    api.add(SEARCH, nothing, tags="(comment)")
    cfg = config("hackernews", api.url, queries=[""], thread_depth=3, backfill_hours=24)
    return Watched(
        api,
        client,
        sleeps,
        monkeypatch,
        module=hackernews_module,
        cfg=cfg,
        thread_id="7000",
        thread_path=ITEMS,
        created=created,
        found=FOUND,
    )


def test_watched_threads_are_read_again_for_new_replies(api, client, sleeps, monkeypatch):
    """Replies that arrive after a story was found are collected by later runs."""
    later = _story_tree(_node(7001, 60, [_node(7002, 120, parent=7001)]), _node(7003, 180))
    watched = _watched_story(api, client, sleeps, monkeypatch, later)
    first, second = check_read_again(watched, new={"7002", "7003"})
    assert sorted(first.by_id()) == ["7000", "7001"]
    assert first.cursor["threads"]["7000"]["newest"] == STORY_T + 60
    assert first.cursor["threads"]["7000"]["newest_ids"] == ["7001"]
    assert second.by_id()["7002"].parent_external_id == "7001"
    assert second.cursor["threads"]["7000"]["newest"] == STORY_T + 180


def test_a_reply_in_the_second_of_the_newest_read_is_read_again(api, client, sleeps, monkeypatch):
    """Hacker News times are whole seconds: a reply that was not visible yet can share one."""
    later = _story_tree(_node(7001, 60), _node(7004, 60))
    watched = _watched_story(api, client, sleeps, monkeypatch, later)
    check_reply_in_the_same_second(watched, new="7004")


def test_a_story_older_than_watch_hours_is_not_read_again(api, client, sleeps, monkeypatch):
    check_ages_out(_watched_story(api, client, sleeps, monkeypatch))


def test_a_watched_story_whose_items_answer_404_stays_watched(api, client, sleeps, monkeypatch):
    """Unlike the other sources, a 404 for a watched story does not drop it: it is asked again."""
    watched = _watched_story(api, client, sleeps, monkeypatch, Reply(404, b'{"status": 404}'))
    first = watched.run()
    watched.at(FOUND + timedelta(hours=1))
    second = watched.run(first.cursor)  # the 404 does not fail the run
    assert second.posts == [] and second.cursor["threads"] == first.cursor["threads"]
    third = watched.run(second.cursor)
    assert third.posts == [] and watched.reads() == 3


def test_a_thread_is_watched_from_the_batch_that_stores_it(api, client, sleeps, monkeypatch):
    check_watched_from_its_batch(_watched_story(api, client, sleeps, monkeypatch))


def test_a_watched_story_larger_than_thread_size_is_read_on_by_later_runs(
    api, client, sleeps, monkeypatch
):
    """Two replies a read: every run takes the oldest replies not read yet, so none is left
    behind. Algolia lists children in rank order, not time order: read in tree order, the second
    run took 7003 and 7005, moved the mark to 7005's time and never read 7002 or 7004."""
    tree = _story_tree(
        _node(7003, 90, [_node(7004, 100, parent=7003)]),
        _node(7001, 60),
        _node(7005, 110),
        _node(7002, 80),
    )
    watched = _watched_story(api, client, sleeps, monkeypatch, tree, tree, tree)
    watched.cfg = watched.cfg.model_copy(update={"thread_size": 2})
    first = watched.run()  # the story's first read serves one reply, 7001
    runs, cursor = [], first.cursor
    for hours in (1, 2, 3):
        watched.at(FOUND + timedelta(hours=hours))
        got = watched.run(cursor)
        runs.append(sorted(p.external_id for p in got.posts))
        cursor = got.cursor
    assert sorted(first.by_id()) == ["7000", "7001"]
    assert runs == [["7002", "7003"], ["7004", "7005"], []]
    assert cursor["threads"]["7000"]["newest"] == STORY_T + 110
