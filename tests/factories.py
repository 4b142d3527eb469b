"""Helpers that make rows for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from ingest.base import NormalizedPost

_ids = count(1)


def make_post(**overrides: Any) -> NormalizedPost:
    """A NormalizedPost with sensible defaults; override any field."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "platform": "reddit",
        "external_id": f"t{n}",
        "text": f"post number {n} about Claude",
        "created_at": datetime(2026, 10, 21, 12, 30, tzinfo=UTC),
        "author_handle": f"user{n}",
        "source": "test",
    }
    fields.update(overrides)
    return NormalizedPost(**fields)
