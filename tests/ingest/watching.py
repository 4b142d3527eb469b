"""Checks of what a source's watch list promises (ingest.watch), shared by the source tests.

Each test file serves its platform's recordings and builds a ``Watched``: a source whose run
finds one thread and the path that thread is read at. The checks here run it a few times and
return the runs, so the file asserts only what differs per platform (posts, cursor entries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest

from ingest.sources import build_source
from tests.ingest.conftest import ApiServer, Drained, Sleeps, drain, freeze_now

# The sources' default watch_hours.
WATCH_HOURS = 24


@dataclass
class Watched:
    """A source whose run finds ``thread_id`` (created at ``created``) with the clock at ``found``."""

    api: ApiServer
    client: httpx.Client
    sleeps: Sleeps
    monkeypatch: pytest.MonkeyPatch
    module: ModuleType
    cfg: Any
    thread_id: str
    thread_path: str
    created: datetime
    found: datetime

    def __post_init__(self) -> None:
        self.at(self.found)

    def run(self, cursor: dict[str, Any] | None = None) -> Drained:
        """One run of a fresh source from ``cursor``."""
        return drain(build_source(self.cfg, client=self.client, sleep=self.sleeps), cursor)

    def at(self, when: datetime) -> None:
        """Pin the source module's clock."""
        freeze_now(self.monkeypatch, self.module, when)

    def reads(self) -> int:
        """How many times the thread was asked for so far."""
        return len(self.api.requests_to(self.thread_path))


def check_read_again(watched: Watched, *, new: set[str]) -> tuple[Drained, Drained]:
    """Run 1 finds the thread; run 2, an hour later from its cursor, hands on only ``new``.

    Also: run 1 reads the thread once, run 2 once more, and a cursor from before watching (no
    ``threads``) reads no thread. Returns runs 1 and 2.
    """
    first = watched.run()
    assert watched.thread_id in first.cursor["threads"]
    assert json.loads(json.dumps(first.cursor)) == first.cursor
    # Found in this run, so read once, not again by the same run's revisit.
    assert watched.reads() == 1

    watched.at(watched.found + timedelta(hours=1))
    second = watched.run(first.cursor)
    # Only the new replies: the posts stored by the first run are passed over.
    assert {p.external_id for p in second.posts} == new
    assert len(second.posts) == len(new)
    assert watched.reads() == 2

    old = {k: v for k, v in first.cursor.items() if k != "threads"}
    third = watched.run(old)
    assert third.posts == [] and third.quarantined == []
    assert watched.reads() == 2
    return first, second


def check_ages_out(watched: Watched) -> None:
    """A thread is read again while younger than watch_hours, then dropped without a request."""
    first = watched.run()
    watched.at(watched.created + timedelta(hours=WATCH_HOURS - 1))
    second = watched.run(first.cursor)
    assert second.posts == [] and watched.thread_id in second.cursor["threads"]
    assert watched.reads() == 2

    watched.at(watched.created + timedelta(hours=WATCH_HOURS + 1))
    third = watched.run(second.cursor)
    assert third.posts == [] and "threads" not in third.cursor
    assert watched.reads() == 2


def check_gone_is_dropped(watched: Watched) -> None:
    """A watched thread answered as gone is dropped, without failing the run; not asked again."""
    first = watched.run()
    assert watched.thread_id in first.cursor["threads"]

    watched.at(watched.found + timedelta(hours=1))
    second = watched.run(first.cursor)
    assert second.posts == [] and "threads" not in second.cursor
    assert watched.reads() == 2

    third = watched.run(second.cursor)
    assert third.posts == [] and watched.reads() == 2


def check_watched_from_its_batch(watched: Watched) -> None:
    """The batch that hands on the thread's post carries it in its cursor already.

    So a run that stops after committing that batch (a crash, a deploy) still watches the
    thread; the run's end is not needed.
    """
    source = build_source(watched.cfg, client=watched.client, sleep=watched.sleeps)
    found = False
    for batch in source.fetch(cursor={}):
        found = found or any(p.external_id == watched.thread_id for p in batch.posts)
        if found and batch.cursor is not None:
            assert watched.thread_id in batch.cursor.get("threads", {})
            return
    raise AssertionError(f"no batch handed on {watched.thread_id} with a cursor")


def check_reply_in_the_same_second(watched: Watched, *, new: str) -> None:
    """A reply posted at run 1's ``newest`` but not visible then is read by run 2, only once.

    Run 2 is served the thread plus ``new``, created at exactly the newest reply time run 1
    read; the reply run 1 read at that time is not handed on again, and neither reply is by a
    run 3 served the same thread.
    """
    first, second = check_read_again(watched, new={new})
    before, after = first.cursor["threads"][watched.thread_id], second.cursor["threads"]
    assert after[watched.thread_id]["newest"] == before["newest"]
    assert set(after[watched.thread_id]["newest_ids"]) == set(before["newest_ids"]) | {new}
    third = watched.run(second.cursor)
    assert third.posts == [] and third.quarantined == []
    assert watched.reads() == 3
