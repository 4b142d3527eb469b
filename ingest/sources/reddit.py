"""Reddit: search and subreddit listings, comment trees with ``more`` stubs expanded.

External ids are fullnames (``t3_…`` submissions, ``t1_…`` comments), so parent and root links
are Reddit's own ``parent_id`` and ``link_id``. Cursor:
``{"listings": {"search:QUERY" | "r/SUB": {"t": created_utc, "ids": [...]}}, "backlog": {...},
"threads": {...}}`` (``threads``: submissions whose comments are read again, see ingest.watch).
A ``[deleted]``/``[removed]`` body or a removed submission is yielded with ``deleted=True``
(empty text for comments, the title only for submissions).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
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
from ingest.text import clean_text
from ingest.watch import ThreadMark, WatchList, keep_reply_mark

PLATFORM = "reddit"
PUBLIC_BASE_URL = "https://www.reddit.com"
OAUTH_BASE_URL = "https://oauth.reddit.com"
SITE = "https://www.reddit.com"
_GONE = {"[deleted]", "[removed]"}
_MORE_BATCH = 100
_FLUSH_POSTS = 1000


def _permalink(data: dict[str, Any], fallback: str) -> str:
    link = get_str(data, "permalink")
    if link:
        return link if link.startswith("http") else SITE + link
    return fallback


def _post_from_thing(thing: Any, *, source: str, query: str | None) -> NormalizedPost:
    thing = as_dict(thing, "thing")
    kind = get_str(thing, "kind")
    data = as_dict(thing.get("data"), "data")
    if kind not in ("t1", "t3"):
        raise ItemError(f"not a post or comment: kind={kind!r:.20}")
    item_id = get_str(data, "id", required=True)
    name = get_str(data, "name") or f"{kind}_{item_id}"
    if name != f"{kind}_{item_id}":
        raise ItemError("name and id disagree")
    created = parse_time(data.get("created_utc"))
    author = get_str(data, "author")
    if author in _GONE:
        author = None
    if kind == "t3":
        title = clean_text(get_str(data, "title"))
        selftext = get_str(data, "selftext") or ""
        deleted = selftext in _GONE or data.get("removed_by_category") not in (None, "")
        body = "" if selftext in _GONE else clean_text(selftext)
        text = "\n\n".join(p for p in (title, body) if p)
        url = _permalink(data, f"{SITE}/comments/{item_id}/")
        return NormalizedPost(
            platform=PLATFORM,
            external_id=name,
            text=text,
            created_at=created,
            url=url,
            title=title or None,
            author_handle=author,
            parent_external_id=None,
            root_external_id=name,
            engagement=engagement(
                score=get_int(data, "score"), comments=get_int(data, "num_comments")
            ),
            raw=data,
            source=source,
            query=query,
            deleted=deleted,
        )
    body_raw = get_str(data, "body") or ""
    parent = get_str(data, "parent_id")
    link = get_str(data, "link_id")
    if not parent or not link:
        raise ItemError("comment without parent_id or link_id")
    deleted = body_raw in _GONE
    raw = {k: v for k, v in data.items() if k != "replies"}
    return NormalizedPost(
        platform=PLATFORM,
        external_id=name,
        text="" if deleted else clean_text(body_raw),
        created_at=created,
        url=_permalink(data, f"{SITE}/comments/{link[3:]}/_/{item_id}/"),
        author_handle=author,
        parent_external_id=parent,
        root_external_id=link,
        engagement=engagement(score=get_int(data, "score")),
        raw=raw,
        source=source,
        query=query,
        deleted=deleted,
    )


def normalize_thing(
    raw: Any, *, source: str, query: str | None = None, strict: bool = False
) -> NormalizedPost | Quarantined:
    """A listing child (``{"kind": "t1"|"t3", "data": {...}}``) as a post, or quarantine."""
    return safely(
        lambda r: _post_from_thing(r, source=source, query=query), raw, source=source, strict=strict
    )


def _listing_children(body: Any) -> tuple[list[Any], str | None]:
    if not isinstance(body, dict) or body.get("kind") != "Listing":
        raise SourceError("response is not a Listing")
    data = get_dict(body, "data")
    children = data.get("children")
    if not isinstance(children, list):
        raise SourceError("Listing without children")
    return children, get_str(data, "after")


@dataclass
class _Tree:
    """A comment tree being read: each comment's depth, ``more`` ids still to ask for, posts added.

    Comments ``since`` says are not new were read by an earlier run and are passed over, unless
    they are ``owed``: ids an earlier visit left unread (behind a ``more`` link it had no calls
    left for, or past ``thread_size``). ``newest`` is the newest comment time read so far, with
    the ids read at that time; ``known`` the largest comment id read before this visit (base36
    ids grow with time, so a larger one is a comment no visit has read); ``top`` the largest
    read by the end of it.
    """

    depth_of: dict[str, int]
    stubs: list[str] = field(default_factory=list)
    added: int = 0
    since: Watermark = field(default_factory=Watermark)
    newest: Watermark = field(default_factory=Watermark)
    owed: set[str] = field(default_factory=set)
    known: int | None = None
    top: str | None = None

    def unread(self, comment_id: str) -> bool:
        """Whether no visit has read this comment: newer than any read, or owed."""
        n = _b36(comment_id)
        return n is not None and (self.known is None or n > self.known or comment_id in self.owed)

    def read(self, comment_id: str) -> None:
        n = _b36(comment_id)
        if n is not None and (self.top is None or n > (_b36(self.top) or 0)):
            self.top = comment_id


# Ids a thread keeps owed between visits, oldest first (a viral thread's rest waits for more).
_PENDING_MAX = 500


def _b36(comment_id: str) -> int | None:
    try:
        return int(comment_id, 36)
    except ValueError:
        return None


def _ids_below(children: list[Any]) -> tuple[list[str], list[str]]:
    """The comment ids, and the ids behind ``more`` links, in these children and their replies."""
    comments: list[str] = []
    more: list[str] = []
    stack = list(children)
    while stack:
        child = stack.pop()
        data = get_dict(child, "data") if isinstance(child, dict) else {}
        if isinstance(child, dict) and child.get("kind") == "more":
            more.extend(c for c in get_list(data, "children") if isinstance(c, str))
            continue
        if isinstance(data.get("id"), str):
            comments.append(data["id"])
        replies = data.get("replies")
        if isinstance(replies, dict):
            stack.extend(get_list(get_dict(replies, "data"), "children"))
    return comments, more


def _owed_state(entry: dict[str, Any]) -> tuple[set[str], int | None]:
    """A watched entry's owed ids and largest id read (absent in older cursors: none, unknown)."""
    pending = entry.get("pending")
    owed = {i for i in pending if isinstance(i, str)} if isinstance(pending, list) else set()
    top = entry.get("max_id")
    return owed, _b36(top) if isinstance(top, str) else None


def _keep_owed(entry: dict[str, Any], tree: _Tree, left: list[str]) -> None:
    """Store what a visit left unread and the largest id read into the watched entry."""
    entry.pop("pending", None)
    if left:
        entry["pending"] = left[:_PENDING_MAX]
    if tree.top is not None:
        entry["max_id"] = tree.top


def _flush(page: Page) -> Iterator[Batch]:
    """Hand on a page grown past ``_FLUSH_POSTS`` (no cursor: the page is not finished)."""
    if len(page.posts) >= _FLUSH_POSTS:
        yield Batch(posts=page.posts, quarantined=page.quarantined)
        page.posts, page.quarantined = [], []


class RedditSource:
    """Submissions from searches and subreddits, with their comment trees."""

    kind = "reddit"

    def __init__(self, config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None):
        self.config = config
        self.name = config.name
        opts = config.options
        self.client_id = opts.get("client_id")
        self.client_secret = opts.get("client_secret")
        self.oauth = bool(self.client_id and self.client_secret)
        default = OAUTH_BASE_URL if self.oauth else PUBLIC_BASE_URL
        self.base_url = (config.base_url or default).rstrip("/")
        self.auth_url = str(opts.get("auth_url", PUBLIC_BASE_URL)).rstrip("/")
        self.subreddits = [str(s).removeprefix("r/") for s in opts.get("subreddits", [])]
        self.more_limit = int(opts.get("more_limit", 3))
        self.page_size = int(opts.get("page_size", 100))
        # Submissions found in the last `watch_hours` have their comments read again each run
        # (at most `watch_threads` of them, newest first), as Hacker News stories do.
        self._watch = WatchList.from_options(opts)
        self.http = Http(client, source=config.name, sleep=sleep)
        self._token: str | None = None
        self._token_expires = 0.0

    # --- requests -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if not self.oauth:
            return {}
        if self._token is None or time.time() > self._token_expires - 60:
            self._authenticate()
        return {"Authorization": f"bearer {self._token}"}

    def _authenticate(self) -> None:
        body = self.http.request(
            "POST",
            f"{self.auth_url}/api/v1/access_token",
            data={"grant_type": "client_credentials"},
            auth=(str(self.client_id), str(self.client_secret)),
        ).json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise SourceError("reddit token response without access_token", status=401)
        self._token = token
        self._token_expires = time.time() + float(get_int(body, "expires_in") or 3600)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        params = {**params, "raw_json": 1}
        try:
            return self.http.get_json(url, params=params, headers=self._headers())
        except SourceError as e:
            if e.status != 401 or not self.oauth:
                raise
            self._token = None  # expired early: one fresh token, one more try
            return self.http.get_json(url, params=params, headers=self._headers())

    # --- fetching -------------------------------------------------------------------------

    def _listings(self) -> list[tuple[str, str, dict[str, Any], str | None]]:
        out: list[tuple[str, str, dict[str, Any], str | None]] = []
        for q in self.config.queries:
            params = {"q": q, "sort": "new", "t": "all", "type": "link", "limit": self.page_size}
            out.append((f"search:{q}", "/search.json", params, q))
        for sub in self.subreddits:
            out.append((f"r/{sub}", f"/r/{sub}/new.json", {"limit": self.page_size}, None))
        return out

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Pages of each listing, newest first, down to the stored mark or the backfill window.

        A listing that runs out of pages (``max_pages``) before reaching its old mark keeps its
        ``after`` token and that mark in the cursor's ``backlog``; the next run finishes it first,
        so a burst larger than one run is delayed, never skipped.
        """
        state: dict[str, Any] = copy.deepcopy(cursor) if isinstance(cursor, dict) else {}
        marks = cursor_section(state, "listings")
        backlog = cursor_section(state, "backlog")
        cutoff = (utc_now() - timedelta(hours=self.config.backfill_hours)).timestamp()
        seen: set[str] = set()
        self._watch.load(state)
        for key, path, params, query in self._listings():
            gap = backlog.pop(key, None)
            if isinstance(gap, dict) and isinstance(gap.get("after"), str):
                old = Watermark(gap.get("mark"))
                left = yield from self._walk(
                    path, params, gap["after"], old, Watermark(None), cutoff, query, seen, state
                )
                if left is not None:
                    backlog[key] = {"after": left, "mark": old.state()}
                yield Batch(cursor=cursor_snapshot(state))

            mark = Watermark(marks.get(key))
            new_mark = Watermark(marks.get(key))
            left = yield from self._walk(
                path, params, None, mark, new_mark, cutoff, query, seen, state
            )
            if left is not None and key not in backlog:
                backlog[key] = {"after": left, "mark": mark.state()}
            if new_mark.state() is not None and new_mark.state() != marks.get(key):
                marks[key] = new_mark.state()
            yield Batch(cursor=cursor_snapshot(state))
        # Watched submissions not found in this run are read again for new comments.
        yield from self._watch.revisit(
            state, config=self.config, seen=seen, now=utc_now().timestamp(), read=self._reread
        )
        yield Batch(cursor=cursor_snapshot(state))

    def _walk(
        self,
        path: str,
        params: dict[str, Any],
        after: str | None,
        mark: Watermark,
        new_mark: Watermark,
        cutoff: float,
        query: str | None,
        seen: set[str],
        state: dict[str, Any],
    ) -> Generator[Batch, None, str | None]:
        """Read up to ``max_pages`` pages; return the ``after`` token left unread, if any."""
        for _ in range(self.config.max_pages):
            children, after = _listing_children(
                self._get(path, {**params, "after": after} if after else params)
            )
            page = Page(source=self.name, seen=seen)
            reached_old = False
            for child in children:
                item = normalize_thing(child, source=self.name, query=query)
                if isinstance(item, NormalizedPost):
                    t = item.created_at.timestamp()
                    if not mark.is_new(t, item.external_id):
                        reached_old = True
                        continue
                    if mark.t is None and t < cutoff:
                        reached_old = True
                    new_mark.advance(t, item.external_id)
                post = page.add(item)
                if post is not None and not post.parent_external_id:
                    yield from self._expand(post, page)
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
            if reached_old or not after or not children:
                return None
        return after

    def _expand(self, post: NormalizedPost, page: Page) -> Iterator[Batch]:
        """Add the comment tree of a submission, expanding ``more`` stubs up to ``more_limit``.

        A viral thread (tens of thousands of replies) is handed on in batches of ``_FLUSH_POSTS``
        without a cursor, so memory stays bounded and classification starts before the thread
        is read to its end; the listing's cursor moves only with the batch that ends its page.
        """
        if self.config.thread_depth <= 0 or self.config.thread_size <= 0:
            return
        watched = self._watch.add(post.external_id, t=post.created_at.timestamp(), query=post.query)
        if not post.engagement.get("comments"):
            return
        comments = self._comments(post.external_id)
        if comments is None:
            self._watch.drop(post.external_id)
            return
        tree = _Tree(depth_of={post.external_id: 0})
        left = yield from self._tree(post.external_id, comments, page, query=post.query, tree=tree)
        keep_reply_mark(watched, tree.newest)
        _keep_owed(watched, tree, left)

    def _comments(self, link_id: str) -> list[Any] | None:
        """The top-level comments of a submission, or None when it is gone (403/404)."""
        try:
            body = self._get(
                f"/comments/{link_id.removeprefix('t3_')}.json",
                {
                    "limit": min(self.config.thread_size, 500),
                    "depth": self.config.thread_depth,
                    "sort": "new",
                },
            )
        except SourceError as e:
            if e.status in (403, 404):  # removed, private or quarantined subreddit
                return None
            raise
        if not isinstance(body, list) or len(body) < 2:
            raise SourceError("comments response is not [post, comments]")
        comments, _ = _listing_children(body[1])
        return comments

    def _tree(
        self,
        link_id: str,
        comments: list[Any],
        page: Page,
        *,
        query: str | None,
        tree: _Tree,
    ) -> Generator[Batch, None, list[str]]:
        """Add the comments of a tree that no visit has read; return the ids left unread.

        The ``more`` links are asked for oldest first (base36 ids grow with time), only for ids
        no visit has read, up to ``more_limit`` calls; whatever is left (ids behind links not
        asked for, comments past ``thread_size``) is owed to the next visit, which reads it
        whatever its time. Skipped before, those comments were never read: the thread's mark
        had moved past them.
        """
        size_limit = self.config.thread_size
        stack: list[Any] = list(reversed(comments))
        while stack and tree.added < size_limit:
            data = self._take(stack.pop(), tree, page, query=query)
            if data is None:
                continue
            yield from _flush(page)
            replies = data.get("replies")
            if isinstance(replies, dict):
                kids = get_list(get_dict(replies, "data"), "children")
                stack.extend(reversed(kids))
        left = self._left(stack, tree)  # past thread_size
        wanted = sorted({i for i in tree.stubs if tree.unread(i)}, key=lambda i: _b36(i) or 0)
        calls = 0
        while wanted and tree.added < size_limit and calls < self.more_limit:
            chunk, wanted = wanted[:_MORE_BATCH], wanted[_MORE_BATCH:]
            calls += 1
            body = self._get(
                "/api/morechildren",
                {
                    "api_type": "json",
                    "link_id": link_id,
                    "children": ",".join(chunk),
                    "sort": "new",
                    "limit_children": "false",
                },
            )
            things = get_list(
                get_dict(get_dict(body, "json") if isinstance(body, dict) else {}, "data"), "things"
            )
            if not isinstance(body, dict) or "json" not in body:
                raise SourceError("morechildren response without json.data.things")
            for n, thing in enumerate(things):
                if tree.added >= size_limit:
                    left.extend(self._left(things[n:], tree))
                    break
                if self._take(thing, tree, page, query=query) is not None:
                    yield from _flush(page)
        if self.more_limit > 0:  # with no calls at all, "more" links are never read: owe none
            left.extend(wanted)
        return sorted(set(left), key=lambda i: _b36(i) or 0)

    def _left(self, children: list[Any], tree: _Tree) -> list[str]:
        """The ids in ``children`` no visit has read: their comments, and the ids behind their
        ``more`` links where there are calls to ask for them."""
        comments, more = _ids_below(children)
        ids = comments + more if self.more_limit > 0 else comments
        return [i for i in ids if tree.unread(i)]

    def _reread(
        self, link_id: str, watched: dict[str, Any], since: Watermark, page: Page
    ) -> Generator[Batch, None, ThreadMark]:
        """Add a watched submission's comments no visit has read to ``page`` (new ones, and the
        ones an earlier visit owes); None when it is gone (403/404)."""
        comments = self._comments(link_id)
        if comments is None:
            return None
        owed, known = _owed_state(watched)
        tree = _Tree(
            depth_of={link_id: 0},
            since=since,
            newest=Watermark(since.state()),
            owed=owed,
            known=known,
        )
        left = yield from self._tree(link_id, comments, page, query=watched.get("query"), tree=tree)
        _keep_owed(watched, tree, left)
        return tree.newest

    def _take(
        self, child: Any, tree: _Tree, page: Page, *, query: str | None
    ) -> dict[str, Any] | None:
        """Add one child of a comment tree to ``page``; its data, or None when it was passed over.

        A child below ``thread_depth`` is passed over; a ``more`` stub's ids go to ``tree.stubs``.
        A comment read by an earlier run is not added, but its data is returned: its replies
        may be new.
        """
        data = get_dict(child, "data") if isinstance(child, dict) else {}
        parent = get_str(data, "parent_id") or ""
        depth = tree.depth_of.get(parent, 0) + 1
        if depth > self.config.thread_depth:
            return None
        if isinstance(child, dict) and child.get("kind") == "more":
            tree.stubs.extend(c for c in get_list(data, "children") if isinstance(c, str))
            return None
        item = normalize_thing(child, source=self.name, query=query)
        if isinstance(item, NormalizedPost):
            tree.depth_of[item.external_id] = depth
            t = int(item.created_at.timestamp())
            tree.newest.advance(t, item.external_id)
            comment_id = item.external_id.partition("_")[2]
            tree.read(comment_id)
            if not tree.since.is_new(t, item.external_id) and comment_id not in tree.owed:
                return data
        if page.add(item) is not None:
            tree.added += 1
        return data
