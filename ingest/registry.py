"""Building a source adapter from its config, with the shared HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.settings import Settings, SourceConfig
from ingest.base import Source
from ingest.sources.replay import ReplaySource


@contextmanager
def open_source(config: SourceConfig, *, settings: Settings) -> Iterator[Source]:
    """The adapter for ``config``; its HTTP client (if any) is closed afterwards."""
    if config.kind == "replay":
        path = config.options.get("path")
        if not path:
            raise ValueError(f"source {config.name}: replay needs options.path")
        yield ReplaySource(name=config.name, path=Path(str(path)))
        return
    from ingest.http import make_client  # type: ignore[attr-defined]
    from ingest.sources import build_source  # type: ignore[attr-defined]

    with make_client(settings=settings) as client:
        yield build_source(config, client=client)
