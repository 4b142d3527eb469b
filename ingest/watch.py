"""Threads a source found recently, kept in its cursor and read again each run for new replies.

A thread keeps growing after its post was found, and most of its replies never match a search
query. Cursor: ``{"threads": {thread_id: {"t": created, "newest": reply time | None, "query":
q, "newest_ids": [...], ...}}}`` (``newest``: the newest reply time read in that thread so far;
``newest_ids``: the ids of the replies read at exactly that time, absent in older cursors; a
source may keep more keys, such as what it needs to ask for the thread again).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost
from ingest.normalize import Page, Watermark, cursor_snapshot

# Adds a watched thread's replies that the mark (``reply_mark``) calls new to the page and
# returns the thread's new mark (``since`` itself when nothing was read), or None when the
# thread is gone. A reader of large threads may be a generator that hands on Batches (without a
# cursor: the thread is not finished) and returns that.
ThreadMark = Watermark | None
ReadThread = Callable[
    [str, dict[str, Any], Watermark, Page], ThreadMark | Generator[Batch, None, ThreadMark]
]


def reply_mark(entry: Mapping[str, Any]) -> Watermark:
    """The replies a watched thread has read: its ``newest`` and ``newest_ids`` as a Watermark.

    A re-read skips the replies the mark says are not new: older than ``newest``, or at
    ``newest`` with an id read then. Whole-second times tie often on a busy thread, so a reply
    at ``newest`` that was not visible yet is still read. An entry without ``newest_ids`` (an
    older cursor) has no ids.
    """
    return Watermark({"t": entry.get("newest"), "ids": entry.get("newest_ids")})


def keep_reply_mark(entry: dict[str, Any], mark: Watermark) -> None:
    """Store ``mark`` as the entry's ``newest`` and ``newest_ids``."""
    state = mark.state()
    if state is None:
        entry["newest"] = None
        entry.pop("newest_ids", None)
        return
    t = state["t"]
    # Watermark keeps floats; sources with whole-second times keep ``newest`` an int.
    entry["newest"] = int(t) if float(t).is_integer() else t
    entry["newest_ids"] = state["ids"]


def take_oldest_first(
    replies: list[tuple[float, str, NormalizedPost]],
    page: Page,
    *,
    since: Watermark,
    room: int,
) -> Watermark:
    """Add the ``(time, id, post)`` replies that ``since`` calls new to ``page``, oldest first,
    until ``room`` were added; the mark to read on from.

    A thread with more new replies than ``room`` keeps its mark at the last reply taken, so the
    next read goes on from there. Taken in tree order, the mark jumped to the newest reply read
    and the older ones left past the limit were never read.
    """
    mark = Watermark(since.state())
    added = 0
    for t, item_id, post in sorted((r for r in replies if since.is_new(r[0], r[1])), key=_order):
        if added >= room:
            break
        if page.add(post) is not None:
            added += 1
        mark.advance(t, item_id)
    return mark


def _order(reply: tuple[float, str, NormalizedPost]) -> tuple[float, str]:
    return reply[0], reply[1]


def is_watch(entry: dict[str, Any], keys: tuple[str, ...] = ()) -> bool:
    """Whether a stored entry has the shape ``{"t": number, "newest": number | None}``.

    ``newest_ids`` may be absent (older cursors) and is not checked: ``reply_mark`` ignores a
    malformed one rather than dropping the thread. ``keys`` name the fields a source adds to its
    entries, each a non-empty string.
    """
    newest = entry.get("newest")
    return (
        isinstance(entry.get("t"), int | float)
        and (newest is None or isinstance(newest, int | float))
        and all(isinstance(entry.get(k), str) and entry[k] for k in keys)
    )


class WatchList:
    """Threads found in the last ``hours`` (at most ``limit`` of them, newest first)."""

    def __init__(self, *, hours: float, limit: int, keys: tuple[str, ...] = ()) -> None:
        self.hours = hours
        self.limit = limit
        self.keys = keys
        self.entries: dict[str, dict[str, Any]] = {}
        self._loaded: set[str] = set()
        self._state: dict[str, Any] | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, keys: tuple[str, ...] = ()) -> WatchList:
        """The ``watch_hours`` (default 24) and ``watch_threads`` (default 30) source options."""
        return cls(
            hours=float(options.get("watch_hours", 24)),
            limit=int(options.get("watch_threads", 30)),
            keys=keys,
        )

    def load(self, state: dict[str, Any]) -> None:
        """Start a run from a cursor's ``threads`` (absent or malformed entries are skipped)."""
        threads = state.get("threads")
        self.entries = {
            k: dict(v)
            for k, v in (threads.items() if isinstance(threads, dict) else ())
            if isinstance(v, dict) and is_watch(v, self.keys)
        }
        self._loaded = set(self.entries)
        self._state = state

    def add(self, thread_id: str, *, t: float, query: str | None, **extra: str) -> dict[str, Any]:
        """Watch a thread just found (an entry already there is kept); its entry.

        The thread goes into the cursor ``load`` was given at once (its ``newest`` follows at
        the next ``save``: until then a re-read starts from the thread's beginning, which the
        store deduplicates).

        ``extra`` keys are stored in the entry (the ``keys`` a source reads back).
        """
        entry = self.entries.get(thread_id)
        if entry is None:
            entry = self.entries[thread_id] = {"t": int(t), "newest": None, "query": query, **extra}
            # Into the run's cursor now: the batch that stores the thread's post carries it, so
            # a run that stops before its end still watches the threads it committed.
            if self._state is not None:
                self.save(self._state)
        return entry

    def found_this_run(self) -> set[str]:
        """Threads added since ``load``: their trees were read just now."""
        return set(self.entries) - self._loaded

    def drop(self, thread_id: str) -> None:
        """Stop watching a thread (deleted, or no longer readable)."""
        self.entries.pop(thread_id, None)

    def prune(self, state: dict[str, Any], *, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Keep the newest ``limit`` threads created after ``now - hours``; save them to ``state``.

        Returns the kept ``(thread_id, entry)`` pairs, newest first; the entries are the live
        ones, so a caller updating ``newest`` and calling ``save`` again keeps them in step.
        """
        horizon = now - self.hours * 3600
        keep = sorted(
            (
                (k, v)
                for k, v in self.entries.items()
                if is_watch(v, self.keys) and v["t"] >= horizon
            ),
            key=lambda kv: kv[1]["t"],
            reverse=True,
        )[: self.limit]
        self.entries = dict(keep)
        self.save(state)
        return keep

    def save(self, state: dict[str, Any]) -> None:
        """Write the watched threads to ``state["threads"]`` (removed when there are none)."""
        state.pop("threads", None)
        if self.entries:
            state["threads"] = copy.deepcopy(self.entries)

    def revisit(
        self,
        state: dict[str, Any],
        *,
        config: SourceConfig,
        seen: set[str],
        now: float,
        read: ReadThread,
    ) -> Iterator[Batch]:
        """Prune, then ``read`` each thread kept and not found in this run; a gone one is dropped.

        ``read`` gets the thread's mark and returns the new one, which the entry keeps. The
        cursor is saved after each thread; a thread with new posts is one batch (after any a
        generator ``read`` handed on). A source that reads no threads (``thread_depth`` or
        ``thread_size`` 0) only prunes.
        """
        found_now = self.found_this_run()
        keep = self.prune(state, now=now)
        if config.thread_depth <= 0 or config.thread_size <= 0:
            return
        for thread_id, entry in keep:
            if thread_id in found_now:
                continue
            page = Page(source=config.name, seen=seen)
            read_now = read(thread_id, entry, reply_mark(entry), page)
            mark = (yield from read_now) if isinstance(read_now, Generator) else read_now
            if mark is None:
                self.drop(thread_id)
            else:
                keep_reply_mark(entry, mark)
            self.save(state)
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
