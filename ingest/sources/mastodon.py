"""Mastodon: hashtag timelines on each configured instance, threads from statuses/{id}/context.

Status ids are per instance, so the external id is the status ``uri`` (the same post seen on
two instances is one post). Parent and root ids are resolved to URIs inside a context response;
a reply whose parent was not fetched keeps ``parent_external_id=None`` (its ``in_reply_to_id``
stays in ``raw``). Cursor: ``{"since_id": {"INSTANCE|TAG": status id}, "backlog": {...},
"threads": {...}}`` (``threads``: statuses whose replies are read again, see ingest.watch; each
entry keeps the ``instance`` and the status ``id`` there, as context is asked per instance).
Deleted statuses just disappear from the API, so nothing is yielded for them.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from core.logging import get_logger
from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost, Quarantined
from ingest.http import Http, SleepFn, SourceError, decode_json
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
    get_str,
    parse_time,
    safely,
    utc_now,
)
from ingest.text import clean_text, html_to_text
from ingest.watch import ThreadMark, WatchList, keep_reply_mark, take_oldest_first

log = get_logger(__name__)

PLATFORM = "mastodon"
# A status this client may not see now (token, instance rules): not the same as deleted.
HIDDEN = (401, 403)
DEFAULT_INSTANCE = "https://mastodon.social"


def _id_key(status_id: str) -> tuple[int, str]:
    """Sort key for Mastodon's numeric string ids (longer is newer)."""
    return (len(status_id), status_id)


def _post_from_status(
    status: Any,
    *,
    source: str,
    query: str | None,
    uri_of: dict[str, str] | None = None,
    root: str | None = None,
) -> NormalizedPost:
    status = as_dict(status, "status")
    reblog = status.get("reblog")
    if isinstance(reblog, dict):
        status = reblog  # a boost carries no text of its own
    uri = get_str(status, "uri", required=True)
    assert uri is not None
    get_str(status, "id", required=True)
    created = parse_time(status.get("created_at"))
    content = status.get("content")
    if not isinstance(content, str):
        raise ItemError("status without content")
    account = get_dict(status, "account")
    reply_to = get_str(status, "in_reply_to_id")
    parent = (uri_of or {}).get(reply_to) if reply_to else None
    warning = clean_text(get_str(status, "spoiler_text")) or None
    return NormalizedPost(
        platform=PLATFORM,
        external_id=uri,
        text=html_to_text(content),
        created_at=created,
        url=get_str(status, "url") or uri,
        title=warning,
        lang=get_str(status, "language"),
        author_handle=get_str(account, "acct"),
        parent_external_id=parent,
        root_external_id=root if reply_to else uri,
        engagement=engagement(
            replies=get_int(status, "replies_count"),
            reposts=get_int(status, "reblogs_count"),
            likes=get_int(status, "favourites_count"),
        ),
        raw=status,
        source=source,
        query=query,
    )


def normalize_status(
    raw: Any,
    *,
    source: str,
    query: str | None = None,
    uri_of: dict[str, str] | None = None,
    root: str | None = None,
    strict: bool = False,
) -> NormalizedPost | Quarantined:
    """A status as a post (links resolved through ``uri_of``: local id -> uri), or quarantine."""
    return safely(
        lambda r: _post_from_status(r, source=source, query=query, uri_of=uri_of, root=root),
        raw,
        source=source,
        strict=strict,
    )


@dataclass
class _Walk:
    """Where a walk down a timeline stops, and the newest id it saw."""

    since: str | None
    cutoff: datetime
    newest: str | None


def _since_params(since: str | None, link: str | None) -> dict[str, Any] | None:
    return {"since_id": since} if since and link and "since_id=" not in link else None


@dataclass
class _Context:
    """A statuses/{id}/context answer around the focal status, links resolved to URIs."""

    focal_id: str
    ancestors: list[dict[str, Any]]
    descendants: list[dict[str, Any]]
    uri_of: dict[str, str]
    reply_to: dict[str, str | None]
    root: str | None

    @classmethod
    def read(cls, body: dict[str, Any], *, focal_id: str, focal_uri: str) -> _Context:
        """The statuses of a context answer, with each one's URI and parent id."""
        ancestors = [s for s in body.get("ancestors") or [] if isinstance(s, dict)]
        descendants = [s for s in body.get("descendants") or [] if isinstance(s, dict)]
        uri_of: dict[str, str] = {focal_id: focal_uri}
        reply_to: dict[str, str | None] = {}
        for s in (*ancestors, *descendants):
            sid, suri = get_str(s, "id"), get_str(s, "uri")
            if sid and suri:
                uri_of[sid] = suri
                reply_to[sid] = get_str(s, "in_reply_to_id")
        # Ancestors come oldest first; the first is the root when the chain is complete.
        root = get_str(ancestors[0], "uri") if ancestors else focal_uri
        return cls(focal_id, ancestors, descendants, uri_of, reply_to, root)

    def depth_below(self, sid: str, limit: int) -> int:
        """Hops from a status up to the focal one (``limit + 1`` when more, or not under it)."""
        hops, cur = 0, sid
        while cur != self.focal_id and hops <= limit:
            nxt = self.reply_to.get(cur)
            if nxt is None:
                return limit + 1
            cur, hops = nxt, hops + 1
        return hops


class MastodonSource:
    """Statuses under each tag on each instance, with their conversations."""

    kind = "mastodon"

    def __init__(self, config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None):
        self.config = config
        self.name = config.name
        opts = config.options
        instances = opts.get("instances") or [config.base_url or DEFAULT_INSTANCE]
        self.instances = [str(i).rstrip("/") for i in instances]
        tags = opts.get("tags") or config.queries
        self.tags = [str(t).lstrip("#").replace(" ", "") for t in tags if str(t).strip("# ")]
        self.page_size = min(40, int(opts.get("page_size", 40)))
        self.token = opts.get("access_token")
        # Statuses found in the last `watch_hours` have their replies read again each run (at
        # most `watch_threads` of them, newest first), as Hacker News stories do.
        self._watch = WatchList.from_options(opts, keys=("instance", "id"))
        self.http = Http(client, source=config.name, sleep=sleep)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Timeline pages newest first through the Link header, down to since_id or the window.

        A walk that runs out of pages (``max_pages``) before reaching the old mark keeps its next
        link in the cursor's ``backlog``; the next run finishes that walk first, so a burst
        larger than one run is delayed, never skipped.
        """
        state: dict[str, Any] = copy.deepcopy(cursor) if isinstance(cursor, dict) else {}
        marks = cursor_section(state, "since_id")
        backlog = cursor_section(state, "backlog")
        cutoff = utc_now() - timedelta(hours=self.config.backfill_hours)
        seen: set[str] = set()
        self._watch.load(state)
        for instance in self.instances:
            for tag in self.tags:
                key = f"{instance}|{tag}"
                gap = backlog.pop(key, None)
                if isinstance(gap, dict) and isinstance(gap.get("next"), str):
                    old = gap.get("since") if isinstance(gap.get("since"), str) else None
                    walk = _Walk(since=old, cutoff=cutoff, newest=None)
                    left = yield from self._walk(
                        instance,
                        tag,
                        gap["next"],
                        _since_params(old, gap["next"]),
                        walk,
                        seen,
                        state,
                    )
                    if left is not None:
                        backlog[key] = {"next": left, "since": old}
                    yield Batch(cursor=cursor_snapshot(state))

                since = marks.get(key) if isinstance(marks.get(key), str) else None
                url = f"{instance}/api/v1/timelines/tag/{quote(tag, safe='')}"
                walk = _Walk(since=since, cutoff=cutoff, newest=since)
                left = yield from self._walk(
                    instance,
                    tag,
                    url,
                    {"limit": self.page_size, "since_id": since},
                    walk,
                    seen,
                    state,
                )
                if left is not None and key not in backlog:
                    backlog[key] = {"next": left, "since": since}
                if walk.newest and walk.newest != since:
                    marks[key] = walk.newest
                yield Batch(cursor=cursor_snapshot(state))
        # Watched threads not found in this run are read again for new replies.
        yield from self._watch.revisit(
            state, config=self.config, seen=seen, now=utc_now().timestamp(), read=self._reread
        )
        yield Batch(cursor=cursor_snapshot(state))

    def _walk(
        self,
        instance: str,
        tag: str,
        url: str,
        params: dict[str, Any] | None,
        walk: _Walk,
        seen: set[str],
        state: dict[str, Any],
    ) -> Generator[Batch, None, str | None]:
        """Follow next links for up to ``max_pages``; return the link left unread, if any."""
        next_url: str | None = url
        for _ in range(self.config.max_pages):
            if next_url is None:
                return None
            response = self.http.get(next_url, params=params, headers=self._headers())
            body = decode_json(response)
            if not isinstance(body, list):
                raise SourceError("tag timeline is not a list of statuses")
            page = Page(source=self.name, seen=seen)
            reached_old = not body
            for status in body:
                sid = get_str(status, "id") if isinstance(status, dict) else None
                if sid and walk.since and _id_key(sid) <= _id_key(walk.since):
                    reached_old = True
                    continue
                item = normalize_status(status, source=self.name, query=f"#{tag}")
                if isinstance(item, NormalizedPost):
                    assert sid is not None
                    if walk.newest is None or _id_key(sid) > _id_key(walk.newest):
                        walk.newest = sid
                    if walk.since is None and item.created_at < walk.cutoff:
                        reached_old = True
                post = page.add(item)
                if post is not None:
                    self._expand(instance, status, post, page)
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
            if reached_old:
                return None
            next_link = response.links.get("next", {}).get("url")
            # The next link carries max_id; since_id is ours to keep.
            next_url, params = next_link, _since_params(walk.since, next_link)
        return next_url

    def _expand(self, instance: str, status: Any, post: NormalizedPost, page: Page) -> None:
        """Add ancestors and descendants from statuses/{id}/context, links resolved to URIs."""
        depth, size = self.config.thread_depth, self.config.thread_size
        if depth <= 0 or size <= 0 or not isinstance(status, dict):
            return
        if isinstance(status.get("reblog"), dict):
            status = status["reblog"]
        focal_id = get_str(status, "id")
        if not focal_id:
            return
        watched = self._watch.add(
            post.external_id,
            t=post.created_at.timestamp(),
            query=post.query,
            instance=instance,
            id=focal_id,
        )
        parent_id = get_str(status, "in_reply_to_id")
        if not post.engagement.get("replies") and not parent_id:
            return
        try:
            context = self._context(instance, focal_id, focal_uri=post.external_id)
        except SourceError as e:
            if e.status not in HIDDEN:
                raise
            context = None  # not visible to us: the status alone is stored
        if context is None:
            self._watch.drop(post.external_id)
            return
        post.root_external_id = context.root
        if parent_id:
            post.parent_external_id = context.uri_of.get(parent_id)
        added = 0
        for s in context.ancestors[-depth:]:
            if added >= size:
                break
            item = normalize_status(
                s, source=self.name, query=post.query, uri_of=context.uri_of, root=context.root
            )
            if page.add(item) is not None:
                added += 1
        newest = self._replies(context, page, query=post.query, since=Watermark(None), added=added)
        keep_reply_mark(watched, newest)

    def _context(self, instance: str, focal_id: str, *, focal_uri: str) -> _Context | None:
        """The context of a status on an instance, or None when it is gone (404/410).

        401/403 (not visible to this client: its token, the instance's rules) raise SourceError,
        so each caller decides what a status hidden for now means.
        """
        try:
            body = self.http.get_json(
                f"{instance}/api/v1/statuses/{focal_id}/context", headers=self._headers()
            )
        except SourceError as e:
            if e.status in (404, 410):  # deleted
                return None
            raise
        if not isinstance(body, dict):
            raise SourceError("context response is not an object")
        return _Context.read(body, focal_id=focal_id, focal_uri=focal_uri)

    def _replies(
        self, context: _Context, page: Page, *, query: str | None, since: Watermark, added: int
    ) -> Watermark:
        """Add the descendants ``since`` calls new, oldest first (`take_oldest_first`); the mark
        to read on from.

        ``added`` posts of ``thread_size`` are already taken (the ancestors).
        """
        depth, size = self.config.thread_depth, self.config.thread_size
        replies: list[tuple[float, str, NormalizedPost]] = []
        for s in context.descendants:
            if context.depth_below(get_str(s, "id") or "", depth) > depth:
                continue
            item = normalize_status(
                s, source=self.name, query=query, uri_of=context.uri_of, root=context.root
            )
            if isinstance(item, NormalizedPost):
                replies.append((item.created_at.timestamp(), item.external_id, item))
            else:
                page.add(item)  # quarantined: kept for inspection
        return take_oldest_first(replies, page, since=since, room=size - added)

    def _reread(
        self, uri: str, watched: dict[str, Any], since: Watermark, page: Page
    ) -> ThreadMark:
        """Add a watched status's new replies to ``page``; its new mark, None when it is gone.

        An instance no longer configured counts as gone: the token goes to configured ones only.
        A status hidden from us for now (401/403) stays watched.
        """
        if watched["instance"] not in self.instances:
            return None
        try:
            context = self._context(watched["instance"], watched["id"], focal_uri=uri)
        except SourceError as e:
            if e.status not in HIDDEN:
                raise
            # An expired token or a changed instance rule hides every thread at once: keep them
            # watched and ask again next run (they still age out).
            log.warning("ingest.watched_thread_hidden", source=self.name, status=e.status)
            return since
        if context is None:
            return None
        return self._replies(context, page, query=watched.get("query"), since=since, added=0)
