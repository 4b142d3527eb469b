"""X (Twitter) API v2: /2/tweets/search/recent with expansions, conversation_id search for threads.

Parent is the ``replied_to`` reference, root the ``conversation_id``. Tweets pulled in through
``includes.tweets`` (the parents and quoted tweets of hits) are yielded too. Cursor:
``{"since_id": {query: newest tweet id}}``. Deleted or withheld tweets come back only as
``errors`` entries and are skipped (logged).
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from core.logging import get_logger
from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost, Quarantined
from ingest.http import Http, SleepFn, SourceError
from ingest.normalize import (
    ItemError,
    Page,
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

log = get_logger(__name__)

PLATFORM = "x"
DEFAULT_BASE_URL = "https://api.twitter.com"
TWITTER_EPOCH_MS = 1288834974657
TWEET_FIELDS = (
    "created_at,lang,author_id,conversation_id,referenced_tweets,public_metrics,in_reply_to_user_id"
)


def _id_key(tweet_id: str) -> tuple[int, str]:
    return (len(tweet_id), tweet_id)


def snowflake_time(tweet_id: str) -> float:
    """Epoch seconds encoded in a tweet id (ids since late 2010 are snowflakes)."""
    if not tweet_id.isdigit() or len(tweet_id) > 20:
        raise ItemError(f"tweet id is not numeric: {tweet_id!r:.30}")
    return ((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000


def _post_from_tweet(
    tweet: Any, *, source: str, query: str | None, users: dict[str, str] | None = None
) -> NormalizedPost:
    tweet = as_dict(tweet, "tweet")
    tweet_id = get_str(tweet, "id", required=True)
    assert tweet_id is not None
    if not tweet_id.isdigit():
        raise ItemError(f"tweet id is not numeric: {tweet_id!r:.30}")
    text = tweet.get("text")
    if not isinstance(text, str):
        raise ItemError("tweet without text")
    raw_created = tweet.get("created_at")
    # The minimal search response has no created_at; the id carries the time to the millisecond.
    created = parse_time(raw_created if raw_created is not None else snowflake_time(tweet_id))
    parent = None
    for ref in get_list(tweet, "referenced_tweets"):
        if isinstance(ref, dict) and ref.get("type") == "replied_to":
            parent = get_str(ref, "id")
    author_id = get_str(tweet, "author_id")
    handle = (users or {}).get(author_id or "")
    metrics = get_dict(tweet, "public_metrics")
    url_user = handle or "i/web"
    return NormalizedPost(
        platform=PLATFORM,
        external_id=tweet_id,
        text=clean_text(text),
        created_at=created,
        url=f"https://x.com/{url_user}/status/{tweet_id}",
        lang=(get_str(tweet, "lang") if tweet.get("lang") not in ("und", "zxx", "qme") else None),
        author_handle=handle or (f"id:{author_id}" if author_id else None),
        parent_external_id=parent,
        root_external_id=get_str(tweet, "conversation_id") or (None if parent else tweet_id),
        engagement=engagement(
            replies=get_int(metrics, "reply_count"),
            reposts=get_int(metrics, "retweet_count"),
            likes=get_int(metrics, "like_count"),
            quotes=get_int(metrics, "quote_count"),
        ),
        raw=tweet,
        source=source,
        query=query,
    )


def normalize_tweet(
    raw: Any,
    *,
    source: str,
    query: str | None = None,
    users: dict[str, str] | None = None,
    strict: bool = False,
) -> NormalizedPost | Quarantined:
    """A v2 tweet object as a post (handles from ``users``: id -> username), or quarantine."""
    return safely(
        lambda r: _post_from_tweet(r, source=source, query=query, users=users),
        raw,
        source=source,
        strict=strict,
    )


def _users(body: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for user in get_list(get_dict(body, "includes"), "users"):
        if isinstance(user, dict):
            uid, name = get_str(user, "id"), get_str(user, "username")
            if uid and name:
                out[uid] = name
    return out


@dataclass
class _Walk:
    """The mark a search walks down to, and the newest id it saw."""

    since: str | None
    newest: str | None = None


class XSource:
    """Recent tweets matching each query, with the conversations they start or answer."""

    kind = "x"

    def __init__(self, config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None):
        self.config = config
        self.name = config.name
        self.base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.token = config.options.get("bearer_token")
        self.page_size = max(10, min(100, int(config.options.get("page_size", 100))))
        self.max_conversations = int(config.options.get("max_conversations", 10))
        self._conversations = 0  # threads expanded in the current run
        self.http = Http(client, source=config.name, sleep=sleep)

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = self.http.get_json(
            f"{self.base_url}/2/tweets/search/recent",
            params={
                **params,
                "max_results": self.page_size,
                "tweet.fields": TWEET_FIELDS,
                "expansions": "author_id,referenced_tweets.id",
                "user.fields": "username",
            },
            headers=headers,
        )
        if not isinstance(body, dict) or ("data" not in body and "meta" not in body):
            raise SourceError("search response without data or meta")
        if body.get("data") is not None and not isinstance(body["data"], list):
            raise SourceError("search data is not a list")
        for err in get_list(body, "errors"):
            if isinstance(err, dict):
                log.info(
                    "ingest.x.skipped",
                    source=self.name,
                    title=err.get("title"),
                    id=err.get("value"),
                )
        return body

    def _page(
        self, body: dict[str, Any], page: Page, query: str, *, since: str | None
    ) -> tuple[list[NormalizedPost], str | None]:
        users = _users(body)
        newest: str | None = None
        hits: list[NormalizedPost] = []
        for tweet in body.get("data") or []:
            item = normalize_tweet(tweet, source=self.name, query=query, users=users)
            if isinstance(item, NormalizedPost):
                if since and _id_key(item.external_id) <= _id_key(since):
                    continue
                if newest is None or _id_key(item.external_id) > _id_key(newest):
                    newest = item.external_id
            post = page.add(item)
            if post is not None:
                hits.append(post)
        # Included tweets are context (parents, quotes) of hits; only new hits bring theirs.
        wanted = {
            get_str(ref, "id")
            for post in hits
            for ref in get_list(post.raw, "referenced_tweets")
            if isinstance(ref, dict)
        }
        for tweet in get_list(get_dict(body, "includes"), "tweets"):
            if isinstance(tweet, dict) and get_str(tweet, "id") in wanted:
                page.add(normalize_tweet(tweet, source=self.name, query=query, users=users))
        return hits, newest

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Search pages through next_token, from since_id or the backfill window.

        A search that runs out of pages (``max_pages``) keeps its parameters and next_token in
        the cursor's ``backlog``; the next run finishes it first, so nothing is skipped.
        """
        state: dict[str, Any] = copy.deepcopy(cursor) if isinstance(cursor, dict) else {}
        marks = cursor_section(state, "since_id")
        backlog = cursor_section(state, "backlog")
        seen: set[str] = set()
        self._conversations = 0
        for query in self.config.queries:
            gap = backlog.pop(query, None)
            if (
                isinstance(gap, dict)
                and isinstance(gap.get("params"), dict)
                and isinstance(gap.get("next_token"), str)
            ):
                old = gap["params"].get("since_id")
                walk = _Walk(since=old if isinstance(old, str) else None)
                left = yield from self._walk(
                    query, gap["params"], gap["next_token"], walk, seen, state
                )
                if left is not None:
                    backlog[query] = {"params": gap["params"], "next_token": left}
                yield Batch(cursor=cursor_snapshot(state))

            since = marks.get(query) if isinstance(marks.get(query), str) else None
            params: dict[str, Any] = {"query": query}
            if since:
                params["since_id"] = since
            else:
                # Recent search reaches seven days back at most.
                hours = min(self.config.backfill_hours, 7 * 24 - 1)
                start = utc_now() - timedelta(hours=hours)
                params["start_time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
            walk = _Walk(since=since, newest=since)
            left = yield from self._walk(query, params, None, walk, seen, state)
            if left is not None and query not in backlog:
                backlog[query] = {"params": params, "next_token": left}
            if walk.newest and walk.newest != since:
                marks[query] = walk.newest
            yield Batch(cursor=cursor_snapshot(state))

    def _walk(
        self,
        query: str,
        params: dict[str, Any],
        token: str | None,
        walk: _Walk,
        seen: set[str],
        state: dict[str, Any],
    ) -> Generator[Batch, None, str | None]:
        """Read up to ``max_pages`` pages; return the next_token left unread, if any."""
        for _ in range(self.config.max_pages):
            body = self._search({**params, "next_token": token})
            page = Page(source=self.name, seen=seen)
            hits, page_newest = self._page(body, page, query, since=walk.since)
            if page_newest and (walk.newest is None or _id_key(page_newest) > _id_key(walk.newest)):
                walk.newest = page_newest
            for post in hits:
                if self._conversations < self.max_conversations and self._wants_thread(post):
                    self._conversations += 1
                    self._expand(post, page)
            if page:
                yield Batch(
                    posts=page.posts, quarantined=page.quarantined, cursor=cursor_snapshot(state)
                )
            token = get_str(get_dict(body, "meta"), "next_token")
            if not token:
                return None
        return token

    def _wants_thread(self, post: NormalizedPost) -> bool:
        if self.config.thread_depth <= 0 or self.config.thread_size <= 0:
            return False
        return bool(post.engagement.get("replies")) and post.root_external_id is not None

    def _expand(self, post: NormalizedPost, page: Page) -> None:
        """Add tweets of the post's conversation (one search, up to thread_size)."""
        conversation = post.root_external_id
        query = f"conversation_id:{conversation}"
        token: str | None = None
        added = 0
        while added < self.config.thread_size:
            try:
                body = self._search({"query": query, "next_token": token})
            except SourceError as e:
                if e.status not in (400, 404):
                    raise
                log.info("ingest.x.thread_skipped", source=self.name, status=e.status)
                return
            before = len(page.posts)
            self._page(body, page, post.query or query, since=None)
            added += len(page.posts) - before
            token = get_str(get_dict(body, "meta"), "next_token")
            if not token:
                break
        if len(page.posts) > 0 and added > self.config.thread_size:
            excess = added - self.config.thread_size
            for dropped in page.posts[-excess:]:
                page.seen.discard(dropped.external_id)
            del page.posts[-excess:]
