"""Bluesky: app.bsky.feed.searchPosts (cursor paging) and app.bsky.feed.getPostThread.

External ids are ``at://`` URIs; parent and root come from the record's ``reply`` refs.
Cursor: ``{"since": {query: {"t": indexedAt epoch, "ids": [...]}}, "backlog": {...}, "threads":
{...}}`` (``threads``: posts whose replies are read again, see ingest.watch; reply times there
are indexedAt too, since a record's createdAt is client-chosen).
A ``notFoundPost`` in a thread is yielded with ``deleted=True`` (time from the record key, a TID);
a ``blockedPost`` is skipped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost, Quarantined
from ingest.http import Http, SleepFn, SourceError
from ingest.normalize import (
    ItemError,
    Page,
    Watermark,
    as_dict,
    cursor_section,
    cursor_snapshot,
    engagement,
    get_dict,
    get_int,
    get_list,
    get_str,
    parse_time,
    safely,
    utc_now,
)
from ingest.text import normalize_whitespace
from ingest.watch import ThreadMark, WatchList, keep_reply_mark, take_oldest_first

PLATFORM = "bluesky"
# Unauthenticated reads go to the public AppView; with a session, the PDS proxies them.
PUBLIC_BASE_URL = "https://public.api.bsky.app"
PDS_BASE_URL = "https://bsky.social"
_NOT_FOUND = "app.bsky.feed.defs#notFoundPost"
_BLOCKED = "app.bsky.feed.defs#blockedPost"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid_time(rkey: str) -> datetime:
    """The creation time encoded in a TID record key (microseconds since the epoch)."""
    if len(rkey) != 13 or any(c not in _TID_ALPHABET for c in rkey):
        raise ItemError(f"record key is not a TID: {rkey!r:.20}")
    value = 0
    for c in rkey:
        value = value * 32 + _TID_ALPHABET.index(c)
    micros = (value >> 10) & ((1 << 53) - 1)
    return parse_time(micros / 1_000_000)


def _split_uri(uri: str) -> tuple[str, str]:
    """(did, rkey) of an ``at://did/app.bsky.feed.post/rkey`` URI."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not parts[0] or not parts[2]:
        raise ItemError(f"not an at:// post URI: {uri!r:.80}")
    return parts[0], parts[2]


def _post_from_view(view: Any, *, source: str, query: str | None) -> NormalizedPost:
    """A ``postView`` (search hit or thread node's ``post``) as a post."""
    view = as_dict(view, "post")
    uri = get_str(view, "uri", required=True)
    assert uri is not None
    did, rkey = _split_uri(uri)
    record = as_dict(view.get("record"), "record")
    author = get_dict(view, "author")
    handle = get_str(author, "handle")
    text = record.get("text")
    if not isinstance(text, str):
        raise ItemError("record without text")
    try:
        created = parse_time(record.get("createdAt"))
    except ItemError:
        # createdAt is client-chosen; the AppView's indexedAt is the fallback.
        created = parse_time(view.get("indexedAt"))
    reply = get_dict(record, "reply")
    parent = get_str(get_dict(reply, "parent"), "uri")
    root = get_str(get_dict(reply, "root"), "uri")
    langs = [x for x in get_list(record, "langs") if isinstance(x, str) and x]
    profile = handle if handle and handle != "handle.invalid" else did
    return NormalizedPost(
        platform=PLATFORM,
        external_id=uri,
        text=normalize_whitespace(text),
        created_at=created,
        url=f"https://bsky.app/profile/{profile}/post/{rkey}",
        lang=langs[0] if langs else None,
        author_handle=handle or did,
        parent_external_id=parent,
        root_external_id=root or (None if parent else uri),
        engagement=engagement(
            replies=get_int(view, "replyCount"),
            reposts=get_int(view, "repostCount"),
            likes=get_int(view, "likeCount"),
            quotes=get_int(view, "quoteCount"),
        ),
        raw=view,
        source=source,
        query=query,
    )


def _deleted_post(node: dict[str, Any], *, source: str, query: str | None) -> NormalizedPost:
    uri = get_str(node, "uri", required=True)
    assert uri is not None
    _did, rkey = _split_uri(uri)
    return NormalizedPost(
        platform=PLATFORM,
        external_id=uri,
        text="",
        created_at=tid_time(rkey),
        raw=node,
        source=source,
        query=query,
        deleted=True,
    )


def normalize_post_view(
    raw: Any, *, source: str, query: str | None = None, strict: bool = False
) -> NormalizedPost | Quarantined:
    """A postView as a post, or a quarantine record."""
    return safely(
        lambda r: _post_from_view(r, source=source, query=query), raw, source=source, strict=strict
    )


def normalize_thread_node(
    raw: Any, *, source: str, query: str | None = None, strict: bool = False
) -> NormalizedPost | Quarantined | None:
    """A thread node: its post, a deleted marker for notFoundPost, None for a blocked post."""
    if isinstance(raw, dict):
        kind = raw.get("$type")
        if kind == _BLOCKED:
            return None
        if kind == _NOT_FOUND or raw.get("notFound") is True:
            return safely(
                lambda r: _deleted_post(r, source=source, query=query),
                raw,
                source=source,
                strict=strict,
            )
        if "post" in raw:
            raw = raw["post"]
    return normalize_post_view(raw, source=source, query=query, strict=strict)


class BlueskySource:
    """Posts matching each query, with the thread around the ones that have replies or parents."""

    kind = "bluesky"

    def __init__(self, config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None):
        self.config = config
        self.name = config.name
        opts = config.options
        self.identifier = opts.get("identifier") or opts.get("handle")
        self.password = opts.get("app_password") or opts.get("password")
        self.authenticated = bool(self.identifier and self.password)
        default = PDS_BASE_URL if self.authenticated else PUBLIC_BASE_URL
        self.base_url = (config.base_url or default).rstrip("/")
        self.page_size = min(100, int(opts.get("page_size", 100)))
        # Posts found in the last `watch_hours` have their replies read again each run (at most
        # `watch_threads` of them, newest first), as Hacker News stories do.
        self._watch = WatchList.from_options(opts)
        self.http = Http(client, source=config.name, sleep=sleep)
        self._access: str | None = None
        self._refresh: str | None = None
        self._access_until = 0.0

    # --- session --------------------------------------------------------------------------

    def _xrpc(self, method: str) -> str:
        return f"{self.base_url}/xrpc/{method}"

    def _create_session(self) -> None:
        body = self.http.request(
            "POST",
            self._xrpc("com.atproto.server.createSession"),
            json_body={"identifier": self.identifier, "password": self.password},
        ).json()
        self._store_session(body)

    def _refresh_session(self) -> None:
        try:
            body = self.http.request(
                "POST",
                self._xrpc("com.atproto.server.refreshSession"),
                headers={"Authorization": f"Bearer {self._refresh}"},
            ).json()
        except SourceError as e:
            if e.status not in (400, 401):
                raise
            self._create_session()
            return
        self._store_session(body)

    def _store_session(self, body: Any) -> None:
        access = body.get("accessJwt") if isinstance(body, dict) else None
        refresh = body.get("refreshJwt") if isinstance(body, dict) else None
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise SourceError("session response without tokens", status=401)
        self._access, self._refresh = access, refresh
        # Access tokens live about two hours; refresh well before that.
        self._access_until = time.time() + 90 * 60

    def _headers(self) -> dict[str, str]:
        if not self.authenticated:
            return {}
        if self._access is None:
            self._create_session()
        elif time.time() > self._access_until:
            self._refresh_session()
        return {"Authorization": f"Bearer {self._access}"}

    def _get(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return self.http.get_json(self._xrpc(method), params=params, headers=self._headers())
        except SourceError as e:
            if not self.authenticated or e.status not in (400, 401) or "xpired" not in str(e):
                raise
            self._refresh_session()
            return self.http.get_json(self._xrpc(method), params=params, headers=self._headers())

    # --- fetching -------------------------------------------------------------------------

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Search pages newest first, down to the stored mark or the backfill window.

        A search that runs out of pages (``max_pages``) keeps its ``since``, page cursor and old
        mark in the cursor's ``backlog``; the next run finishes it first, so nothing is skipped.
        """
        state: dict[str, Any] = copy.deepcopy(cursor) if isinstance(cursor, dict) else {}
        marks = cursor_section(state, "since")
        backlog = cursor_section(state, "backlog")
        seen: set[str] = set()
        self._watch.load(state)
        for query in self.config.queries:
            gap = backlog.pop(query, None)
            if (
                isinstance(gap, dict)
                and isinstance(gap.get("since"), str)
                and isinstance(gap.get("cursor"), str)
            ):
                old = Watermark(gap.get("mark"))
                left = yield from self._walk(
                    query, gap["since"], gap["cursor"], old, Watermark(None), seen, state
                )
                if left is not None:
                    backlog[query] = {**gap, "cursor": left}
                yield Batch(cursor=cursor_snapshot(state))

            mark = Watermark(marks.get(query))
            new_mark = Watermark(marks.get(query))
            since = (
                datetime.fromtimestamp(mark.t, tz=UTC)
                if mark.t is not None
                else utc_now() - timedelta(hours=self.config.backfill_hours)
            ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            left = yield from self._walk(query, since, None, mark, new_mark, seen, state)
            if left is not None and query not in backlog:
                backlog[query] = {"since": since, "cursor": left, "mark": mark.state()}
            if new_mark.state() is not None and new_mark.state() != marks.get(query):
                marks[query] = new_mark.state()
            yield Batch(cursor=cursor_snapshot(state))
        # Watched threads not found in this run are read again for new replies.
        yield from self._watch.revisit(
            state, config=self.config, seen=seen, now=utc_now().timestamp(), read=self._reread
        )
        yield Batch(cursor=cursor_snapshot(state))

    def _walk(
        self,
        query: str,
        since: str,
        page_cursor: str | None,
        mark: Watermark,
        new_mark: Watermark,
        seen: set[str],
        state: dict[str, Any],
    ) -> Generator[Batch, None, str | None]:
        """Read up to ``max_pages`` pages; return the page cursor left unread, if any."""
        for _ in range(self.config.max_pages):
            body = self._get(
                "app.bsky.feed.searchPosts",
                {
                    "q": query,
                    "sort": "latest",
                    "limit": self.page_size,
                    "since": since,
                    "cursor": page_cursor,
                },
            )
            if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
                raise SourceError("searchPosts response without posts")
            page = Page(source=self.name, seen=seen)
            reached_old = False  # results come newest first: an old one ends the walk
            for view in body["posts"]:
                item = normalize_post_view(view, source=self.name, query=query)
                if isinstance(item, NormalizedPost):
                    t = _indexed_t(view, item)
                    if not mark.is_new(t, item.external_id):
                        reached_old = True
                        continue
                    new_mark.advance(t, item.external_id)
                post = page.add(item)
                if post is not None:
                    self._expand(post, page)
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
            page_cursor = get_str(body, "cursor")
            if reached_old or not page_cursor or not body["posts"]:
                return None
        return page_cursor

    def _expand(self, post: NormalizedPost, page: Page) -> None:
        """Add the parents and replies of a post from getPostThread."""
        depth, size = self.config.thread_depth, self.config.thread_size
        if depth <= 0 or size <= 0:
            return
        watched = self._watch.add(post.external_id, t=post.created_at.timestamp(), query=post.query)
        if not post.engagement.get("replies") and not post.parent_external_id:
            return
        thread = self._thread(post.external_id)
        if thread is None:
            self._watch.drop(post.external_id)
            return
        added = 0
        parent = thread.get("parent")
        hops = 0
        while isinstance(parent, dict) and hops < depth and added < size:
            item = normalize_thread_node(parent, source=self.name, query=post.query)
            if item is not None and page.add(item) is not None:
                added += 1
            parent, hops = parent.get("parent"), hops + 1
        newest = self._replies(thread, page, query=post.query, since=Watermark(None), added=added)
        keep_reply_mark(watched, newest)

    def _thread(self, uri: str) -> dict[str, Any] | None:
        """The getPostThread view of a post, or None when it is gone (NotFound, or not readable)."""
        try:
            body = self._get(
                "app.bsky.feed.getPostThread",
                {
                    "uri": uri,
                    "depth": self.config.thread_depth,
                    "parentHeight": self.config.thread_depth,
                },
            )
        except SourceError as e:
            if e.status in (400, 404):  # NotFound: deleted since it was found
                return None
            raise
        thread = get_dict(body, "thread") if isinstance(body, dict) else {}
        if not thread:
            raise SourceError("getPostThread response without thread")
        if thread.get("$type") in (_NOT_FOUND, _BLOCKED) or thread.get("notFound") is True:
            return None
        return thread

    def _replies(
        self,
        thread: dict[str, Any],
        page: Page,
        *,
        query: str | None,
        since: Watermark,
        added: int,
    ) -> Watermark:
        """Add the replies in a thread ``since`` calls new, oldest first (`take_oldest_first`);
        the mark to read on from.

        Replies are read level by level down to ``thread_depth``; ``added`` posts of
        ``thread_size`` are already taken (the parents). Times are indexedAt, as for search marks.
        """
        depth, size = self.config.thread_depth, self.config.thread_size
        replies: list[tuple[float, str, NormalizedPost]] = []
        level = [r for r in get_list(thread, "replies")]
        for _ in range(depth):
            next_level: list[Any] = []
            for node in level:
                item = normalize_thread_node(node, source=self.name, query=query)
                if isinstance(node, dict):
                    next_level.extend(get_list(node, "replies"))
                if isinstance(item, NormalizedPost):
                    t = _indexed_t(get_dict(node, "post"), item)
                    replies.append((t, item.external_id, item))
                elif item is not None:
                    page.add(item)  # quarantined: kept for inspection
            level = next_level
        return take_oldest_first(replies, page, since=since, room=size - added)

    def _reread(
        self, uri: str, watched: dict[str, Any], since: Watermark, page: Page
    ) -> ThreadMark:
        """Add a watched post's new replies to ``page``; its new mark, None when gone (NotFound)."""
        thread = self._thread(uri)
        if thread is None:
            return None
        return self._replies(thread, page, query=watched.get("query"), since=since, added=0)


def _indexed_t(view: Any, post: NormalizedPost) -> float:
    try:
        return parse_time(view.get("indexedAt")).timestamp()
    except ItemError:
        return post.created_at.timestamp()
