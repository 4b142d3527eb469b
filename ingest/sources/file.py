"""Import of JSON Lines and CSV files a team already has, through a column mapping.

Options: ``path`` (required), ``format`` ("jsonl" | "csv", else from the suffix), ``platform``
(default "file", or a ``platform`` column in the mapping), ``mapping`` {field: column} for
external_id, text, created_at, url, title, lang, author_handle, parent_external_id,
root_external_id, platform, deleted; ``engagement`` {name: column}; ``batch_size``.
Cursor: ``{"path", "offset": bytes consumed, "size"}``; a file that shrank is read again from
the start (upserts make that harmless). A row whose ``deleted`` column is true is yielded with
``deleted=True``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from core.settings import SourceConfig
from ingest.base import Batch, NormalizedPost, Quarantined
from ingest.http import SleepFn, SourceError
from ingest.normalize import ItemError, Page, get_int, parse_time, safely
from ingest.text import clean_text

FIELDS = (
    "external_id",
    "text",
    "created_at",
    "url",
    "title",
    "lang",
    "author_handle",
    "parent_external_id",
    "root_external_id",
    "platform",
    "deleted",
)
_TRUE = {"1", "true", "yes", "y", "t"}


def _cell(row: dict[str, Any], column: str | None) -> Any:
    if not column:
        return None
    value: Any = row
    # "a.b" reaches into nested JSON objects.
    for part in column.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _post_from_row(
    row: Any,
    *,
    source: str,
    mapping: dict[str, str],
    engagement_map: dict[str, str],
    platform: str,
) -> NormalizedPost:
    if not isinstance(row, dict):
        raise ItemError("row is not an object")

    def field(name: str) -> str | None:
        return _as_str(_cell(row, mapping.get(name, name)))

    external_id = field("external_id")
    if not external_id:
        raise ItemError("row without an external id")
    text_value = _cell(row, mapping.get("text", "text"))
    if not isinstance(text_value, str):
        raise ItemError("row without text")
    raw_time = _cell(row, mapping.get("created_at", "created_at"))
    created = parse_time(raw_time)
    counts: dict[str, int] = {}
    for name, column in engagement_map.items():
        number = get_int({"v": _cell(row, column)}, "v")
        if number is not None:
            counts[name] = number
    deleted = (field("deleted") or "").lower() in _TRUE
    return NormalizedPost(
        platform=field("platform") or platform,
        external_id=external_id,
        text=clean_text(text_value),
        created_at=created,
        url=field("url"),
        title=field("title"),
        lang=field("lang"),
        author_handle=field("author_handle"),
        parent_external_id=field("parent_external_id"),
        root_external_id=field("root_external_id"),
        engagement=counts,
        raw=row,
        source=source,
        query=None,
        deleted=deleted,
    )


def normalize_row(
    raw: Any,
    *,
    source: str,
    mapping: dict[str, str] | None = None,
    engagement_map: dict[str, str] | None = None,
    platform: str = "file",
    strict: bool = False,
) -> NormalizedPost | Quarantined:
    """One row (a dict) as a post, or a quarantine record."""
    return safely(
        lambda r: _post_from_row(
            r,
            source=source,
            mapping=mapping or {},
            engagement_map=engagement_map or {},
            platform=platform,
        ),
        raw,
        source=source,
        strict=strict,
    )


class FileSource:
    """Rows of a local JSON Lines or CSV file, resumed where the last run stopped."""

    kind = "file"

    def __init__(
        self,
        config: SourceConfig,
        *,
        client: httpx.Client | None = None,
        sleep: SleepFn | None = None,
    ):
        self.config = config
        self.name = config.name
        opts = config.options
        if not opts.get("path"):
            raise ValueError(f"source {config.name}: options.path is required for kind=file")
        self.path = Path(str(opts["path"]))
        fmt = str(opts.get("format") or self.path.suffix.lstrip(".")).lower()
        self.format = "jsonl" if fmt in ("jsonl", "ndjson", "json") else fmt
        if self.format not in ("jsonl", "csv"):
            raise ValueError(f"source {config.name}: unknown file format {fmt!r}")
        self.mapping = {str(k): str(v) for k, v in (opts.get("mapping") or {}).items()}
        unknown = set(self.mapping) - set(FIELDS)
        if unknown:
            raise ValueError(f"source {config.name}: unknown mapping fields {sorted(unknown)}")
        self.engagement = {str(k): str(v) for k, v in (opts.get("engagement") or {}).items()}
        self.platform = str(opts.get("platform", "file"))
        self.batch_size = int(opts.get("batch_size", 1000))

    def _normalize(self, row: Any) -> NormalizedPost | Quarantined:
        return normalize_row(
            row,
            source=self.name,
            mapping=self.mapping,
            engagement_map=self.engagement,
            platform=self.platform,
        )

    def fetch(self, *, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Batches of rows after the stored byte offset."""
        try:
            size = self.path.stat().st_size
        except OSError as e:
            raise SourceError(f"cannot read {self.path}: {e.strerror}") from e
        offset = cursor.get("offset") if isinstance(cursor, dict) else None
        if not isinstance(offset, int) or cursor.get("path") != str(self.path) or offset > size:
            offset = 0
        with self.path.open("rb") as fh:
            header: list[str] | None = None
            if self.format == "csv":
                header_line = fh.readline()
                header = next(csv.reader([header_line.decode("utf-8-sig", errors="replace")]), [])
            elif offset == 0 and fh.read(len(_BOM)) != _BOM:
                fh.seek(0)  # no byte-order mark: the first line starts at byte 0
            offset = max(offset, fh.tell())
            fh.seek(offset)
            seen: set[str] = set()
            page = Page(source=self.name, seen=seen)
            for raw_line, end in _lines(fh, csv_mode=header is not None):
                line = raw_line.decode("utf-8", errors="replace")
                if line.strip():
                    page.add(self._parse_line(line, header))
                offset = end
                if len(page.posts) + len(page.quarantined) >= self.batch_size:
                    yield self._batch(page, offset, size)
                    page = Page(source=self.name, seen=seen)
            yield self._batch(page, offset, size)

    def _batch(self, page: Page, offset: int, size: int) -> Batch:
        cursor = {"path": str(self.path), "offset": offset, "size": size}
        return Batch(posts=page.posts, quarantined=page.quarantined, cursor=cursor)

    def _parse_line(self, line: str, header: list[str] | None) -> NormalizedPost | Quarantined:
        if header is None:
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as e:  # RecursionError: "[[[[..." nested too deep
                return safely(_raise(f"malformed JSON line: {e}"), line, source=self.name)
            return self._normalize(row)
        try:
            values = next(csv.reader(io.StringIO(line.rstrip("\r\n"))))
        except (csv.Error, StopIteration) as e:
            return safely(_raise(f"malformed CSV line: {e}"), line, source=self.name)
        if len(values) != len(header):
            return safely(
                _raise(f"CSV row has {len(values)} fields, header has {len(header)}"),
                line,
                source=self.name,
            )
        return self._normalize(dict(zip(header, values, strict=True)))


# The UTF-8 byte-order mark Windows tools put before the first line (a CSV header drops it by
# decoding with utf-8-sig); in JSON Lines it would make the first row malformed JSON.
_BOM = b"\xef\xbb\xbf"


def _raise(reason: str) -> Any:
    def build(_raw: Any) -> NormalizedPost:
        raise ItemError(reason)

    return build


def _lines(fh: Any, *, csv_mode: bool) -> Iterator[tuple[bytes, int]]:
    """Complete records and the offset after each; a quoted CSV field may span lines."""
    while True:
        line = fh.readline()
        if not line:
            return
        while csv_mode and line.count(b'"') % 2 == 1:
            more = fh.readline()
            if not more:
                break
            line += more
        yield line, fh.tell()
