"""Hacker News through Algolia: search_by_date for stories and comments, items/{id} for threads.

Cursor: ``{"since": {query: {"t": created_at_i, "ids": [...]}}, "backlog": {"tag:query":
{"from": t, "until": t}}}`` (``backlog``: time ranges a run had no pages left for). A deleted or dead item in a
thread is yielded with ``deleted=True`` and empty text, so a stored copy can be marked.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

import httpx

from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost, Quarantined
from ingest.http import Http, SleepFn, SourceError
from ingest.normalize import (
    Page,
    Watermark,
    as_dict,
    cursor_section,
    cursor_snapshot,
    engagement,
    get_int,
    get_list,
    get_str,
    parse_time,
    req_str,
    safely,
    utc_now,
)
from ingest.text import clean_text, html_to_text
from ingest.watch import WatchList, keep_reply_mark, take_oldest_first

PLATFORM = "hackernews"
DEFAULT_BASE_URL = "https://hn.algolia.com"
ITEM_URL = "https://news.ycombinator.com/item?id={}"


def _created(item: dict[str, Any]) -> float:
    ts = get_int(item, "created_at_i")
    if ts is not None:
        return parse_time(ts).timestamp()
    return parse_time(item.get("created_at")).timestamp()


def _post_from_hit(hit: Any, *, source: str, query: str | None) -> NormalizedPost:
    hit = as_dict(hit, "hit")
    object_id = req_str(hit, "objectID")
    tags = [t for t in get_list(hit, "_tags") if isinstance(t, str)]
    created = parse_time(_created(hit))
    title = get_str(hit, "title")
    is_comment = "comment" in tags or (hit.get("comment_text") is not None and not title)
    if is_comment:
        text = html_to_text(get_str(hit, "comment_text"))
        parent = get_str(hit, "parent_id")
        root = get_str(hit, "story_id")
    else:
        body = html_to_text(get_str(hit, "story_text"))
        text = "\n\n".join(p for p in (clean_text(title), body) if p)
        parent, root = None, object_id
    return NormalizedPost(
        platform=PLATFORM,
        external_id=str(object_id),
        text=text,
        created_at=created,
        url=ITEM_URL.format(object_id),
        title=clean_text(title) or None,
        lang=None,
        author_handle=get_str(hit, "author"),
        parent_external_id=parent,
        root_external_id=root or object_id,
        engagement=engagement(points=get_int(hit, "points"), comments=get_int(hit, "num_comments")),
        raw=hit,
        source=source,
        query=query,
    )


def _post_from_item(item: Any, *, source: str, query: str | None) -> NormalizedPost:
    """One node of /api/v1/items/{id} (without its children in ``raw``)."""
    item = as_dict(item, "item")
    item_id = req_str(item, "id")
    created = parse_time(_created(item))
    kind = get_str(item, "type") or "comment"
    title = clean_text(get_str(item, "title")) or None
    author = get_str(item, "author")
    raw_text = get_str(item, "text")
    deleted = author is None and raw_text is None and kind == "comment"
    body = html_to_text(raw_text)
    text = "\n\n".join(p for p in (title, body) if p) if kind != "comment" else body
    story = get_str(item, "story_id")
    parent = get_str(item, "parent_id") if kind in ("comment", "pollopt") else None
    raw = {k: v for k, v in item.items() if k != "children"}
    return NormalizedPost(
        platform=PLATFORM,
        external_id=item_id,
        text=text,
        created_at=created,
        url=ITEM_URL.format(item_id),
        title=title,
        author_handle=author,
        parent_external_id=parent,
        root_external_id=story or item_id,
        engagement=engagement(points=get_int(item, "points")),
        raw=raw,
        source=source,
        query=query,
        deleted=deleted,
    )


def normalize_hit(
    raw: Any, *, source: str, query: str | None = None, strict: bool = False
) -> NormalizedPost | Quarantined:
    """A search hit as a post, or a quarantine record."""
    return safely(
        lambda r: _post_from_hit(r, source=source, query=query), raw, source=source, strict=strict
    )


def _is_range(gap: dict[str, Any]) -> bool:
    return isinstance(gap.get("from"), int | float) and isinstance(gap.get("until"), int | float)


def normalize_item(
    raw: Any, *, source: str, query: str | None = None, strict: bool = False
) -> NormalizedPost | Quarantined:
    """An items/{id} node as a post, or a quarantine record."""
    return safely(
        lambda r: _post_from_item(r, source=source, query=query), raw, source=source, strict=strict
    )


class HackerNewsSource:
    """Stories and comments matching each query, with the replies under them."""

    kind = "hackernews"

    def __init__(self, config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None):
        self.config = config
        self.name = config.name
        self.base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.http = Http(client, source=config.name, sleep=sleep)
        self.hits_per_page = int(config.options.get("hits_per_page", 100))
        self.expand_comments = bool(config.options.get("expand_comments", True))
        # Stories seen in the last `watch_hours` have their trees read again each run for new
        # replies (at most `watch_threads` of them, newest first): a thread keeps growing after
        # its story was found, and most of its replies never match a search query.
        self._watch = WatchList.from_options(config.options)

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """One batch per result page, each with the replies its hits have.

        Results come newest first. When a run stops at ``max_pages`` before reaching its floor,
        the unread time range is kept in the cursor's ``backlog`` and read first by the next
        run, so a burst larger than one run's pages is delayed, never skipped.
        """
        state: dict[str, Any] = copy.deepcopy(cursor) if isinstance(cursor, dict) else {}
        since_all = cursor_section(state, "since")
        backlog = cursor_section(state, "backlog")
        seen: set[str] = set()
        self._watch.load(state)
        for query in self.config.queries or [""]:
            for tag in ("story", "comment"):
                key = f"{tag}:{query}"
                gap = backlog.get(key)
                if not (isinstance(gap, dict) and _is_range(gap)):
                    backlog.pop(key, None)
                    continue
                lo, hi = int(gap["from"]), int(gap["until"])
                oldest = yield from self._pages(
                    query, tag, f"created_at_i>={lo},created_at_i<={hi}", None, None, seen, state
                )
                if oldest is not None and oldest > lo:
                    backlog[key] = {"from": lo, "until": oldest}
                else:
                    backlog.pop(key, None)
                yield Batch(cursor=cursor_snapshot(state))

            mark = Watermark(since_all.get(query))
            floor = (
                int(mark.t)
                if mark.t is not None
                else int((utc_now() - timedelta(hours=self.config.backfill_hours)).timestamp())
            )
            new_mark = Watermark(since_all.get(query))
            for tag in ("story", "comment"):
                oldest = yield from self._pages(
                    query, tag, f"created_at_i>={floor}", mark, new_mark, seen, state
                )
                if oldest is not None and oldest > floor:
                    key = f"{tag}:{query}"
                    prev = backlog.get(key)
                    lo = int(prev["from"]) if isinstance(prev, dict) and _is_range(prev) else floor
                    backlog[key] = {"from": min(lo, floor), "until": oldest}
            if new_mark.state() is not None and new_mark.state() != since_all.get(query):
                since_all[query] = new_mark.state()
            yield Batch(cursor=cursor_snapshot(state))
        # Threads first found in this run were read just now; older ones are read again.
        yield from self._watch.revisit(
            state, config=self.config, seen=seen, now=utc_now().timestamp(), read=self._reread
        )
        yield Batch(cursor=cursor_snapshot(state))

    def _pages(
        self,
        query: str,
        tag: str,
        numeric: str,
        mark: Watermark | None,
        new_mark: Watermark | None,
        seen: set[str],
        state: dict[str, Any],
    ) -> Generator[Batch, None, int | None]:
        """Read result pages; return the oldest time read if ``max_pages`` cut the run short."""
        oldest: int | None = None
        for page_no in range(self.config.max_pages):
            body = self.http.get_json(
                f"{self.base_url}/api/v1/search_by_date",
                params={
                    "query": query,
                    "tags": f"({tag})",
                    "numericFilters": numeric,
                    "hitsPerPage": self.hits_per_page,
                    "page": page_no,
                },
            )
            if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
                raise SourceError("search response without a hits list")
            page = Page(source=self.name, seen=seen)
            for hit in body["hits"]:
                ts = get_int(hit, "created_at_i") if isinstance(hit, dict) else None
                if ts is not None:
                    oldest = ts if oldest is None else min(oldest, ts)
                item = normalize_hit(hit, source=self.name, query=query or None)
                if isinstance(item, NormalizedPost) and mark is not None and new_mark is not None:
                    t = item.created_at.timestamp()
                    if not mark.is_new(t, item.external_id):
                        continue
                    new_mark.advance(t, item.external_id)
                post = page.add(item)
                if post is not None:
                    self._expand(post, page, is_story=tag == "story")
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
            n_pages = get_int(body, "nbPages") or 0
            if not body["hits"] or page_no + 1 >= n_pages:
                return None
        return oldest

    def _expand(self, post: NormalizedPost, page: Page, *, is_story: bool) -> None:
        """Add the replies under a hit, breadth first, up to thread_depth and thread_size."""
        if self.config.thread_depth <= 0 or self.config.thread_size <= 0:
            return
        if is_story:
            watched = self._watch.add(
                post.external_id, t=post.created_at.timestamp(), query=post.query
            )
            if not post.engagement.get("comments"):
                return
            newest = self._replies(post.external_id, post.query, page, since=Watermark(None))
            keep_reply_mark(watched, newest)
            return
        if self.expand_comments:
            self._replies(post.external_id, post.query, page, since=Watermark(None))

    def _replies(
        self, item_id: str, query: str | None, page: Page, *, since: Watermark
    ) -> Watermark:
        """Add the replies under an item ``since`` calls new, oldest first and at most
        ``thread_size`` of them (`take_oldest_first`); the mark to read on from."""
        try:
            tree = self.http.get_json(f"{self.base_url}/api/v1/items/{item_id}")
        except SourceError as e:
            if e.status == 404:
                return since
            raise
        if not isinstance(tree, dict):
            raise SourceError("items response is not an object")
        replies: list[tuple[float, str, NormalizedPost]] = []
        level: list[Any] = get_list(tree, "children")
        for _depth in range(self.config.thread_depth):
            next_level: list[Any] = []
            for child in level:
                item = normalize_item(child, source=self.name, query=query)
                if isinstance(item, NormalizedPost):
                    replies.append((item.created_at.timestamp(), item.external_id, item))
                else:
                    page.add(item)  # quarantined: kept for inspection, whatever its time
                if isinstance(child, dict):
                    next_level.extend(get_list(child, "children"))
            level = next_level
            if not level:
                break
        return take_oldest_first(replies, page, since=since, room=self.config.thread_size)

    def _reread(
        self, story_id: str, watched: dict[str, Any], since: Watermark, page: Page
    ) -> Watermark:
        """Add a watched story's new replies to ``page``; its new mark.

        Never None: a story whose items answer is a 404 stays watched (``_replies`` returns
        ``since``), unlike the other sources' gone threads.
        """
        return self._replies(story_id, watched.get("query"), page, since=since)
