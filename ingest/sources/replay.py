"""Replay: normalized posts from a JSON Lines file (the demo corpus, or a saved capture)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.base import Batch, NormalizedPost, Quarantined

FIELDS = (
    "url",
    "title",
    "lang",
    "author_handle",
    "author_key",
    "parent_external_id",
    "root_external_id",
    "query",
)


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("created_at must be an ISO 8601 string")
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError("created_at needs a time zone")
    return ts.astimezone(UTC)


def parse_line(obj: Any, *, source: str) -> NormalizedPost:
    """One replay record to a NormalizedPost; raises ValueError with the reason when malformed."""
    if not isinstance(obj, dict):
        raise ValueError("a record must be a JSON object")
    missing = [k for k in ("platform", "external_id", "text", "created_at") if not obj.get(k)]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    extra = {k: str(obj[k]) for k in FIELDS if obj.get(k) is not None}
    engagement = obj.get("engagement") or {}
    if not isinstance(engagement, dict):
        raise ValueError("engagement must be an object")
    return NormalizedPost(
        platform=str(obj["platform"]),
        external_id=str(obj["external_id"]),
        text=str(obj["text"]),
        created_at=_parse_time(obj["created_at"]),
        engagement={
            str(k): int(v)
            for k, v in engagement.items()
            if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))
        },
        raw={k: v for k, v in obj.items() if k != "labels"},
        source=str(obj.get("source") or source),
        **extra,  # type: ignore[arg-type]
    )


class ReplaySource:
    """Reads a JSON Lines file in batches; the cursor is the number of lines already committed."""

    kind = "replay"

    def __init__(self, *, name: str, path: Path, batch_size: int = 500) -> None:
        self.name = name
        self.path = path
        self.batch_size = batch_size

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        start = int(cursor.get("line", 0)) if cursor.get("path") == str(self.path) else 0
        batch = Batch()
        n = 0
        with self.path.open(encoding="utf-8-sig") as fh:  # -sig: a leading BOM is no text
            for n, line in enumerate(fh, start=1):
                if n <= start or not line.strip():
                    continue
                try:
                    batch.posts.append(parse_line(json.loads(line), source=self.name))
                # OverflowError: an Infinity count; RecursionError: a line nested too deep.
                except (ValueError, TypeError, OverflowError, RecursionError) as e:
                    batch.quarantined.append(
                        Quarantined(
                            source=self.name, reason=f"line {n}: {e}", payload=line[:100_000]
                        )
                    )
                if len(batch.posts) + len(batch.quarantined) >= self.batch_size:
                    batch.cursor = {"path": str(self.path), "line": n}
                    yield batch
                    batch = Batch()
        batch.cursor = {"path": str(self.path), "line": max(n, start)}
        yield batch
