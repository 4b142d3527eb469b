"""Streamed exports of labeled posts (CSV, JSON Lines, Parquet), page by page, never all in memory.

Rows are read in keyset pages (newest first) and written out as each page arrives; Parquet gets
one row group per page through a sink that hands the bytes on as soon as they are written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from queue import Full, Queue
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.errors import InvalidInput
from core.models import Classification, Label, Post, utcnow
from core.taxonomy import Taxonomy
from trends.posts import after_cursor, filtered_query, validate_filters

POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]

FORMATS = ("csv", "jsonl", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
PAGE_SIZE = 5000
COLUMNS = [
    "id", "platform", "external_id", "url", "created_at", "author_key", "parent_external_id",
    "root_external_id", "source", "query", "lang", "themes", "products", "scores",
    "model_version", "human_label", "model_themes", "title", "text",
]  # fmt: skip
# Spreadsheets run a cell that starts with one of these as a formula (CWE-1236).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(_FORMULA_START)


@dataclass(frozen=True)
class ExportFilters:
    """The same filters as GET /v1/posts."""

    theme: str | None = None
    product: str | None = None
    platform: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def neutralize(value: str) -> str:
    """Stop spreadsheets from running a cell as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def columns(*, with_handle: bool) -> list[str]:
    """The export's columns, with ``author_handle`` after ``author_key`` when asked for."""
    if not with_handle:
        return list(COLUMNS)
    cols = list(COLUMNS)
    cols.insert(cols.index("author_key") + 1, "author_handle")
    return cols


# The query's columns, read by position on the hot path. JSON columns come as JSON text so CSV
# and JSON Lines copy them through without a parse and re-encode.
_ID, _PLATFORM, _EXT, _URL, _CREATED, _AKEY, _PARENT, _ROOT, _SOURCE, _QUERY, _LANG = range(11)
_TITLE, _TEXT, _THEMES, _PRODUCTS, _SCORES, _VERSION, _LTHEMES, _LPRODUCTS, _HANDLE = range(11, 20)


def _json_text(col: Any) -> Any:
    return sa.cast(col, sa.Text)


def _query(*, with_handle: bool) -> sa.Select[Any]:
    # created_at without the UTC decorator: the page's transaction runs in UTC (PostgreSQL) and
    # SQLite stores UTC, so the raw value is already the UTC instant (naive on SQLite).
    cols = [
        POST.c.id,
        POST.c.platform,
        POST.c.external_id,
        POST.c.url,
        sa.type_coerce(POST.c.created_at, sa.DateTime()).label("created_at"),
        POST.c.author_key,
        POST.c.parent_external_id,
        POST.c.root_external_id,
        POST.c.source,
        POST.c.query,
        POST.c.lang,
        POST.c.title,
        POST.c.text,
        _json_text(CLS.c.themes),
        _json_text(CLS.c.products),
        _json_text(CLS.c.scores),
        CLS.c.model_version,
        _json_text(LABEL.c.themes),
        _json_text(LABEL.c.products),
    ]
    if with_handle:
        cols.append(POST.c.author_handle)
    return (
        sa.select(*cols)
        .select_from(POST)
        .outerjoin(CLS, CLS.c.id == POST.c.classification_id)
        .outerjoin(LABEL, LABEL.c.id == POST.c.label_id)
    )


def _iso(ts: datetime) -> str:
    # Aware values come from a UTC session (PostgreSQL); naive ones are UTC already (SQLite).
    return ts.isoformat() if ts.tzinfo is not None else ts.isoformat() + "+00:00"


def _in_force(r: Any) -> tuple[str, str, bool]:
    """(themes JSON, products JSON, human) with the human label over the model."""
    human = r[_LTHEMES] is not None
    themes = r[_LTHEMES] if human else (r[_THEMES] or "[]")
    products = r[_LPRODUCTS] if human and r[_LPRODUCTS] is not None else (r[_PRODUCTS] or "[]")
    return themes, products, human


def iter_pages(
    *, engine: Engine, filters: ExportFilters, with_handle: bool, page_size: int = PAGE_SIZE
) -> Iterator[list[Any]]:
    """Pages of raw export rows, newest first; each page is one short read on its own connection."""
    base = filtered_query(
        base=_query(with_handle=with_handle),
        theme=filters.theme,
        product=filters.product,
        platform=filters.platform,
        since=filters.since,
        until=filters.until,
    )
    stmt = base.order_by(POST.c.created_at.desc(), POST.c.id.desc())
    while True:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            rows = list(conn.execute(stmt.limit(page_size)).all())
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        last = rows[-1]
        stmt = after_cursor(base, last[_CREATED].replace(tzinfo=UTC), last[_ID])


def count_rows(*, engine: Engine, filters: ExportFilters) -> int:
    """How many rows an export with ``filters`` holds (for a progress bar)."""
    base = filtered_query(
        base=sa.select(sa.func.count()).select_from(POST),
        theme=filters.theme,
        product=filters.product,
        platform=filters.platform,
        since=filters.since,
        until=filters.until,
    )
    with engine.connect() as conn:
        return int(conn.execute(base).scalar_one())


def prefetched(pages: Iterator[list[Any]], depth: int = 2) -> Iterator[list[Any]]:
    """Read the next pages in a thread while the caller encodes this one (at most ``depth`` ahead).

    The database works while Python encodes; memory stays bounded by ``depth`` pages. If the
    consumer stops early (a client hung up), the reader stops at its next page.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.5)
                return True
            except Full:
                continue
        return False

    def reader() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except Exception as e:  # handed to the consumer, which re-raises it
            put(("error", e))

    thread = threading.Thread(target=reader, name="export-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()


def _s(v: str | None) -> str:
    if not v:
        return ""
    return "'" + v if v[0] in _FORMULA_CHARS else v


def csv_cells(r: Any, *, with_handle: bool) -> list[str]:
    """One CSV record: lists and dicts as JSON, every text cell neutralized for spreadsheets."""
    themes, products, human = _in_force(r)
    out = [
        str(r[_ID]), _s(r[_PLATFORM]), _s(r[_EXT]), _s(r[_URL]), _iso(r[_CREATED]), _s(r[_AKEY]),
        _s(r[_PARENT]), _s(r[_ROOT]), _s(r[_SOURCE]), _s(r[_QUERY]), _s(r[_LANG]), themes,
        products, r[_SCORES] or "{}", _s(r[_VERSION]), "true" if human else "false",
        r[_THEMES] or "[]", _s(r[_TITLE]), _s(r[_TEXT]),
    ]  # fmt: skip
    if with_handle:
        out.insert(6, _s(r[_HANDLE]))
    return out


def _j(v: str | None) -> str:
    return "null" if v is None else _encode_str(v)


def jsonl_line(r: Any, *, with_handle: bool) -> str:
    """One JSON Lines record, with <, > and & escaped so no line can open an HTML tag."""
    themes, products, human = _in_force(r)
    handle = f',"author_handle":{_j(r[_HANDLE])}' if with_handle else ""
    line = (
        f'{{"id":{r[_ID]},"platform":{_j(r[_PLATFORM])},"external_id":{_j(r[_EXT])},'
        f'"url":{_j(r[_URL])},"created_at":"{_iso(r[_CREATED])}","author_key":{_j(r[_AKEY])}'
        f'{handle},"parent_external_id":{_j(r[_PARENT])},"root_external_id":{_j(r[_ROOT])},'
        f'"source":{_j(r[_SOURCE])},"query":{_j(r[_QUERY])},"lang":{_j(r[_LANG])},'
        f'"themes":{themes},"products":{products},"scores":{r[_SCORES] or "{}"},'
        f'"model_version":{_j(r[_VERSION])},"human_label":{"true" if human else "false"},'
        f'"model_themes":{r[_THEMES] or "[]"},"title":{_j(r[_TITLE])},"text":{_j(r[_TEXT])}}}\n'
    )
    if "<" in line or ">" in line or "&" in line:
        line = line.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return line


def _csv_chunks(pages: Iterator[list[Any]], with_handle: bool) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns(with_handle=with_handle))
    for page in pages:
        writer.writerows([csv_cells(r, with_handle=with_handle) for r in page])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _jsonl_chunks(pages: Iterator[list[Any]], with_handle: bool) -> Iterator[bytes]:
    for page in pages:
        yield "".join([jsonl_line(r, with_handle=with_handle) for r in page]).encode("utf-8")


class _Sink:
    """A write-only file for pyarrow that keeps only what has not been handed on yet."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        b = bytes(data)
        self._parts.append(b)
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def parquet_schema(*, with_handle: bool) -> Any:
    """The Arrow schema of a Parquet export."""
    import pyarrow as pa

    types = {
        "id": pa.int64(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "themes": pa.list_(pa.string()),
        "products": pa.list_(pa.string()),
        "model_themes": pa.list_(pa.string()),
        "scores": pa.map_(pa.string(), pa.float64()),
        "human_label": pa.bool_(),
    }
    return pa.schema([(c, types.get(c, pa.string())) for c in columns(with_handle=with_handle)])


def _parquet_chunks(pages: Iterator[list[Any]], with_handle: bool) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(with_handle=with_handle)
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    # Theme and product lists repeat a few combinations: parse each distinct JSON text once.
    parsed: dict[str, Any] = {}

    def loads(text: str) -> Any:
        v = parsed.get(text)
        if v is None:
            v = json.loads(text)
            if len(parsed) < 10_000:
                parsed[text] = v
        return v

    try:
        for page in pages:
            forced = [_in_force(r) for r in page]
            cols = list(zip(*page, strict=True))
            data: dict[str, Any] = {
                "id": cols[_ID],
                "platform": cols[_PLATFORM],
                "external_id": cols[_EXT],
                "url": cols[_URL],
                "created_at": cols[_CREATED],
                "author_key": cols[_AKEY],
                "parent_external_id": cols[_PARENT],
                "root_external_id": cols[_ROOT],
                "source": cols[_SOURCE],
                "query": cols[_QUERY],
                "lang": cols[_LANG],
                "themes": [loads(f[0]) for f in forced],
                "products": [loads(f[1]) for f in forced],
                "scores": [list(json.loads(v or "{}").items()) for v in cols[_SCORES]],
                "model_version": cols[_VERSION],
                "human_label": [f[2] for f in forced],
                "model_themes": [loads(v or "[]") for v in cols[_THEMES]],
                "title": cols[_TITLE],
                "text": cols[_TEXT],
            }
            if with_handle:
                data["author_handle"] = cols[_HANDLE]
            writer.write_table(pa.Table.from_pydict(data, schema=schema))
            chunk = sink.drain()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.drain()


def stream_export(
    *,
    engine: Engine,
    taxonomy: Taxonomy,
    fmt: str,
    filters: ExportFilters,
    with_handle: bool = False,
    on_rows: Callable[[int], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[bytes]:
    """Validate now, then return an iterator of the export's bytes in ``fmt``."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {list(FORMATS)}, not {fmt!r}", param="format")
    validate_filters(
        taxonomy,
        theme=filters.theme,
        product=filters.product,
        since=filters.since,
        until=filters.until,
    )

    def pages() -> Iterator[list[Any]]:
        source = iter_pages(
            engine=engine, filters=filters, with_handle=with_handle, page_size=page_size
        )
        for page in prefetched(source):
            yield page
            if on_rows:
                on_rows(len(page))

    if fmt == "csv":
        return _csv_chunks(pages(), with_handle)
    if fmt == "jsonl":
        return _jsonl_chunks(pages(), with_handle)
    return _parquet_chunks(pages(), with_handle)


def export_filename(fmt: str, filters: ExportFilters) -> str:
    """A filename safe in a Content-Disposition header: ASCII letters, digits, dot, dash."""
    parts = ["undertow-posts", filters.theme, filters.product, filters.platform]
    stem = "-".join(p for p in parts if p)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:80]
    return f"{stem}-{utcnow():%Y%m%dT%H%M%SZ}.{fmt}"
