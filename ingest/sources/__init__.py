"""Source adapters by kind, and ``build_source`` to make one from its config."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from core.settings import SourceConfig
from ingest.base import Source
from ingest.http import SleepFn
from ingest.sources.bluesky import BlueskySource
from ingest.sources.file import FileSource
from ingest.sources.hackernews import HackerNewsSource
from ingest.sources.mastodon import MastodonSource
from ingest.sources.reddit import RedditSource
from ingest.sources.rss import RssSource
from ingest.sources.x import XSource

SourceFactory = Callable[..., Source]

# kind -> factory(config, *, client, sleep); the lead registers "replay" here too.
REGISTRY: dict[str, SourceFactory] = {
    "hackernews": HackerNewsSource,
    "reddit": RedditSource,
    "bluesky": BlueskySource,
    "mastodon": MastodonSource,
    "x": XSource,
    "rss": RssSource,
    "file": FileSource,
}


def register(kind: str, factory: SourceFactory) -> None:
    """Add (or replace) the adapter for a kind."""
    REGISTRY[kind] = factory


def build_source(
    config: SourceConfig, *, client: httpx.Client, sleep: SleepFn | None = None
) -> Source:
    """The adapter for ``config.kind``, sharing ``client``; ``sleep`` is injectable for tests."""
    try:
        factory = REGISTRY[config.kind]
    except KeyError:
        raise ValueError(f"no adapter for source kind {config.kind!r}") from None
    return factory(config, client=client, sleep=sleep)


__all__ = ["REGISTRY", "build_source", "register"]
