"""Threads a source found recently, kept in its cursor and read again each run for new replies.

A thread keeps growing after its post was found, and most of its replies never match a search
query. Cursor: ``{"threads": {thread_id: {"t": created, "newest": reply time | None, "query":
q}}}`` (``newest``: the newest reply time read in that thread so far).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def is_watch(entry: dict[str, Any]) -> bool:
    """Whether a stored entry has the shape ``{"t": number, "newest": number | None}``."""
    newest = entry.get("newest")
    return isinstance(entry.get("t"), int | float) and (
        newest is None or isinstance(newest, int | float)
    )


class WatchList:
    """Threads found in the last ``hours`` (at most ``limit`` of them, newest first)."""

    def __init__(self, *, hours: float, limit: int) -> None:
        self.hours = hours
        self.limit = limit
        self.entries: dict[str, dict[str, Any]] = {}
        self._loaded: set[str] = set()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WatchList:
        """The ``watch_hours`` (default 24) and ``watch_threads`` (default 30) source options."""
        return cls(
            hours=float(options.get("watch_hours", 24)),
            limit=int(options.get("watch_threads", 30)),
        )

    def load(self, state: dict[str, Any]) -> None:
        """Start a run from a cursor's ``threads`` (absent or malformed entries are skipped)."""
        threads = state.get("threads")
        self.entries = {
            k: dict(v)
            for k, v in (threads.items() if isinstance(threads, dict) else ())
            if isinstance(v, dict) and is_watch(v)
        }
        self._loaded = set(self.entries)

    def add(self, thread_id: str, *, t: float, query: str | None) -> dict[str, Any]:
        """Watch a thread just found (an entry already there is kept); its entry."""
        return self.entries.setdefault(thread_id, {"t": int(t), "newest": None, "query": query})

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
            ((k, v) for k, v in self.entries.items() if is_watch(v) and v["t"] >= horizon),
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
