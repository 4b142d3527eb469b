"""Streamed exports of labeled posts (CSV, JSON Lines, Parquet), page by page, never all in memory.

Rows are read in keyset pages (newest first) and written out as each page arrives; Parquet row
groups go through a sink that hands the bytes on as soon as they are written. On PostgreSQL each
page is one COPY whose rows the database formats (see ``pg_batches``); on SQLite rows are read
and encoded in Python.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from queue import Full, Queue
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.errors import InvalidInput, Unavailable
from core.models import Classification, Label, Post, utcnow
from core.taxonomy import Taxonomy
from trends.posts import after_cursor, filtered_query, validate_filters

POST = Post.__table__  # type: ignore[attr-defined]
CLS = Classification.__table__  # type: ignore[attr-defined]
LABEL = Label.__table__  # type: ignore[attr-defined]

T = TypeVar("T")
Key = tuple[datetime, int]  # a keyset position: (created_at, id)
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
    """(themes JSON, products JSON, human) with the human label over the model.

    A label's products are JSON null (text "null") when the reviewer kept the model's products.
    """
    human = r[_LTHEMES] is not None
    themes = r[_LTHEMES] if human else (r[_THEMES] or "[]")
    keep_model = r[_LPRODUCTS] is None or r[_LPRODUCTS] == "null"
    products = r[_LPRODUCTS] if human and not keep_model else (r[_PRODUCTS] or "[]")
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


def _put_unless_stopped(queue: Queue[tuple[str, Any]], stop: threading.Event, item: Any) -> bool:
    """Hand an item to a bounded queue, waiting for room; False once the consumer has stopped."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.5)
            return True
        except Full:
            continue
    return False


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Read the next pages in a thread while the caller encodes this one (at most ``depth`` ahead).

    The database works while Python encodes; memory stays bounded by ``depth`` pages. If the
    consumer stops early (a client hung up), the reader stops at its next page.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()
    put = functools.partial(_put_unless_stopped, queue, stop)

    def reader() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except Exception as e:  # handed to the consumer, which re-raises it
            put(("error", e))
        finally:
            # A consumer that stopped early: end the read here (its connection goes back now).
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=reader, name="export-reader", daemon=True)
    thread.start()
    try:
        yield from _drain(queue)
    finally:
        stop.set()


def _drain(queue: Queue[tuple[str, Any]]) -> Iterator[Any]:
    """The items a reader thread hands over, up to its ("end", None); its error is raised here."""
    while True:
        kind, item = queue.get()
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item


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
    # Records end in LF, as PostgreSQL's COPY writes them (RFC 4180 readers accept both).
    writer = csv.writer(buf, lineterminator="\n")
    # With an LF terminator Python's writer leaves a lone CR unquoted, where readers start a new
    # record (whose first cell would escape neutralization); such rows go through a CRLF writer,
    # which quotes it, and get their LF back.
    crlf = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns(with_handle=with_handle))
    for page in pages:
        rows = [csv_cells(r, with_handle=with_handle) for r in page]
        if any("\r" in c for row in rows for c in row):
            for row in rows:
                if any("\r" in c for c in row):
                    crlf.writerow(row)
                    buf.seek(buf.tell() - 2)
                    buf.write("\n")
                    buf.truncate()
                else:
                    writer.writerow(row)
        else:
            writer.writerows(rows)
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


# Dictionary pages only where values repeat, and statistics only where a reader filters on them:
# hashing every text and URL for a dictionary it then abandons costs more than the encoding.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": [
        "platform", "source", "query", "lang", "model_version", "themes", "products",
        "model_themes", "scores",
    ],
    "write_statistics": [
        "id", "created_at", "platform", "source", "lang", "model_version", "human_label",
    ],
}  # fmt: skip


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
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, **PARQUET_OPTIONS)
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


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the database formats the rows. Each keyset page is one COPY (SELECT ...) TO STDOUT
# in its own short transaction, two pages at a time. CSV and JSON Lines come out of PostgreSQL
# ready to send, byte for byte what the Python path writes (no Python object per cell); for
# Parquet, Arrow's C++ CSV and JSON readers parse a COPY of raw cells, one row group per batch.
# SQLite (the embedded default) takes the Python path above.

# Rows per COPY: one transaction of well under a second.
PG_PAGE_SIZE = 50_000
# Pages read at once, each on its own connection: PostgreSQL formats rows on one core per page.
PG_PARALLEL_PAGES = 2
# The most a page that runs ahead of the one being sent may hold before it waits.
LOOKAHEAD_BYTES = 16 * 1024 * 1024
# Bytes handed on at once (CSV, JSON Lines), and the COPY output parsed into one Parquet row group.
CHUNK_BYTES = 256 * 1024
ROW_GROUP_BYTES = 4 * 1024 * 1024

# The page's rows with each JSON column converted to text once; the outer query formats them.
_INNER = (
    "SELECT p.id, p.created_at, p.platform, p.external_id, p.url, p.author_key, p.author_handle, "
    "p.parent_external_id, p.root_external_id, p.source, p.query, p.lang, p.title, p.text, "
    "c.model_version, c.themes::text AS m_themes, c.products::text AS m_products, "
    "c.scores::text AS scores, l.themes::text AS l_themes, "
    # A label's products are JSON null when the reviewer kept the model's products.
    "CASE WHEN jsonb_typeof(l.products) = 'array' THEN l.products::text END AS l_products "
    "FROM post p LEFT JOIN classification c ON c.id = p.classification_id "
    "LEFT JOIN label l ON l.id = p.label_id"
)
_PG_COMMON = {
    "id": "q.id::text",
    # The labels in force: a human label over the model.
    "themes": "coalesce(q.l_themes, q.m_themes, '[]')",
    "products": "CASE WHEN q.l_themes IS NOT NULL AND q.l_products IS NOT NULL "
    "THEN q.l_products ELSE coalesce(q.m_products, '[]') END",
    "scores": "coalesce(q.scores, '{}')",
    "human_label": "CASE WHEN q.l_themes IS NOT NULL THEN 'true' ELSE 'false' END",
    "model_themes": "coalesce(q.m_themes, '[]')",
}
# ISO 8601 as Python writes it (microseconds only when there are some); the page runs in UTC.
_PG_ISO = (
    "to_char(q.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
    "mod(extract(microseconds FROM q.created_at)::int8, 1000000) = 0 THEN '' "
    "ELSE to_char(q.created_at, '.US') END || '+00:00'"
)
# The first characters a spreadsheet runs as a formula: = + - @ tab CR (see _FORMULA_START).
_PG_FORMULA = "(61, 43, 45, 64, 9, 13)"
# One JSON object per row, sent as it is: a CSV COPY whose quote and delimiter are control
# characters that JSON never holds raw (PostgreSQL escapes every character below 0x20).
_LINES = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"


def _pg_csv_select(with_handle: bool) -> str:
    def cell(name: str) -> str:
        # ascii() of the first character, 0 for ''. NULL and '' both give an empty cell (as
        # Python's csv writer writes them); a formula start gets a leading quote.
        e = f"q.{name}"
        return (
            f"CASE WHEN ascii({e}) IN {_PG_FORMULA} THEN '''' || {e} "
            f"WHEN ascii({e}) = 0 THEN NULL ELSE {e} END"
        )

    exprs = {**_PG_COMMON, "created_at": _PG_ISO}
    return ", ".join(exprs[c] if c in exprs else cell(c) for c in columns(with_handle=with_handle))


def _pg_json_select(with_handle: bool) -> str:
    """One JSON Lines record per row, as ``jsonl_line`` writes it."""
    exprs = {**_PG_COMMON, "created_at": f"'\"' || {_PG_ISO} || '\"'"}
    parts = []
    for i, c in enumerate(columns(with_handle=with_handle)):
        value = exprs.get(c) or f"coalesce(to_json(q.{c})::text, 'null')"
        parts.append(f"'{'{' if i == 0 else ','}\"{c}\":' || {value}")
    line = " || ".join(parts) + " || '}'"
    # No line can open an HTML tag: < > & only occur inside JSON strings, so escape them there.
    return f"replace(replace(replace({line}, '<', '\\u003c'), '>', '\\u003e'), '&', '\\u0026')"


def _arrow_columns(with_handle: bool) -> list[str]:
    """The columns of an "arrow" page: the export's, with its JSON columns in one, "lists"."""
    out = [c for c in columns(with_handle=with_handle) if c not in _LIST_COLUMNS]
    return [*out, "lists"]


_LIST_COLUMNS = ("themes", "products", "model_themes", "scores")


def _pg_arrow_select(with_handle: bool) -> str:
    """Raw cells for Arrow's CSV reader; the JSON columns as one NDJSON line in "lists"."""
    exprs = {
        "id": "q.id",
        "created_at": "(extract(epoch FROM q.created_at) * 1000000)::int8",
        "human_label": _PG_COMMON["human_label"],
        "lists": "'{' || "
        + " || ',' || ".join(f"'\"{c}\":' || {_PG_COMMON[c]}" for c in _LIST_COLUMNS)
        + " || E'}\\n'",
    }
    return ", ".join(exprs.get(c, f"q.{c}") for c in _arrow_columns(with_handle))


def _pg_where(
    filters: ExportFilters, key: Key | None, through: Key | None = None
) -> tuple[str, dict[str, Any]]:
    """The filters, the rows older than ``key`` and, with ``through``, down to it (inclusive)."""
    where = ["p.deleted_at IS NULL"]
    params: dict[str, Any] = {}
    for kind in ("theme", "product"):
        value = getattr(filters, kind)
        if value:
            where.append(
                "EXISTS (SELECT 1 FROM post_tag t WHERE t.post_id = p.id "
                f"AND t.kind = '{kind}' AND t.value = %({kind})s)"
            )
            params[kind] = value
    if filters.platform:
        where.append("p.platform = %(platform)s")
        params["platform"] = filters.platform
    if filters.since:
        where.append("p.created_at >= %(since)s")
        params["since"] = filters.since
    if filters.until:
        where.append("p.created_at < %(until)s")
        params["until"] = filters.until
    if key is not None:
        # The plain bound lets the created_at index start at the cursor (see after_cursor).
        where.append(
            "p.created_at <= %(k_ts)s AND (p.created_at < %(k_ts)s "
            "OR (p.created_at = %(k_ts)s AND p.id < %(k_id)s))"
        )
        params["k_ts"], params["k_id"] = key
    if through is not None:
        where.append("p.created_at >= %(t_ts)s AND (p.created_at > %(t_ts)s OR p.id >= %(t_id)s)")
        params["t_ts"], params["t_id"] = through
    return " AND ".join(where), params


class _Stopped(Exception):
    """The consumer went away: end this page's COPY (psycopg cancels it on an exception)."""


def _page_settings(conn: Any) -> None:
    conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
    conn.exec_driver_sql("SET LOCAL client_encoding = 'UTF8'")
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    # A page's plan is planned once and run once: compiling it costs more than it saves.
    conn.exec_driver_sql("SET LOCAL jit = off")


def pg_page_bounds(
    *, engine: Engine, filters: ExportFilters, page_size: int
) -> Iterator[tuple[Key | None, Key | None]]:
    """Keyset pages as (after, through): the rows older than ``after`` down to and including
    ``through`` (None: no bound), newest first; one index walk of ``page_size`` keys each."""
    after: Key | None = None
    while True:
        where, params = _pg_where(filters, after)
        params["skip"] = page_size - 1
        sql = (
            f"SELECT p.created_at, p.id FROM post p WHERE {where} "
            "ORDER BY p.created_at DESC, p.id DESC OFFSET %(skip)s LIMIT 1"
        )
        with engine.connect() as conn:
            _page_settings(conn)
            row = conn.exec_driver_sql(sql, params).first()
        through = (row[0], row[1]) if row else None
        yield after, through
        if through is None:
            return
        after = through


def _copy_page(
    *,
    engine: Engine,
    sql: str,
    params: dict[str, Any],
    batch_bytes: int,
    put: Callable[[tuple[str, Any]], bool],
    convert: Callable[[bytes], Any] | None = None,
) -> None:
    """Run one page's COPY in its own transaction, handing on (batch, rows): the bytes, or what
    ``convert`` makes of them (in this thread, so conversions of pages run side by side)."""
    try:
        with engine.connect() as conn:
            _page_settings(conn)
            raw = conn.connection.driver_connection
            # One growing buffer per batch, not an object per row: a row is freed as soon as it
            # is copied in. A COPY sends one message per row, so rows are counted as they come.
            buf = bytearray()
            n = 0
            with raw.cursor() as cur, cur.copy(sql, params) as copy:  # type: ignore[union-attr]
                for data in copy:
                    buf += data
                    n += 1
                    if len(buf) >= batch_bytes:
                        batch = convert(bytes(buf)) if convert else bytes(buf)
                        if not put(("batch", (batch, n))):
                            raise _Stopped
                        buf.clear()
                        n = 0
            if n and not put(("batch", (convert(bytes(buf)) if convert else bytes(buf), n))):
                return
        put(("end", None))
    except _Stopped:
        return
    except Exception as e:  # handed to the consumer, which re-raises it
        put(("error", e))


def pg_batches(
    *,
    engine: Engine,
    filters: ExportFilters,
    with_handle: bool,
    mode: str,
    page_size: int = PG_PAGE_SIZE,
    batch_bytes: int = CHUNK_BYTES,
    parallel: int = PG_PARALLEL_PAGES,
    lookahead_bytes: int = LOOKAHEAD_BYTES,
    convert: Callable[[bytes], Any] | None = None,
) -> Iterator[tuple[Any, int]]:
    """(bytes, rows) of an export as PostgreSQL writes it, newest first, in keyset pages.

    ``mode``: "csv" (records without the header), "jsonl" (escaped lines) or "arrow" (CSV for
    Arrow, see ``_pg_arrow_select``). Up to ``parallel`` pages are read at once, each by its own
    COPY on its own connection (the database formats rows on as many cores); batches come out in
    page order, and a page that runs ahead holds at most ``lookahead_bytes`` before it waits.
    ``convert`` turns each batch's bytes into something else in the page's thread.
    """
    select = {
        "csv": lambda: _pg_csv_select(with_handle),
        "jsonl": lambda: _pg_json_select(with_handle),
        "arrow": lambda: _pg_arrow_select(with_handle),
    }[mode]()
    options = _LINES if mode == "jsonl" else "FORMAT csv"
    stop = threading.Event()
    depth = max(2, lookahead_bytes // batch_bytes)

    def start(after: Key | None, through: Key | None) -> Queue[tuple[str, Any]]:
        where, params = _pg_where(filters, after, through)
        sql = (
            # OFFSET 0 keeps the subquery a subquery, so each JSON column is converted once.
            f"COPY (SELECT {select} FROM ({_INNER} WHERE {where} "
            "ORDER BY p.created_at DESC, p.id DESC OFFSET 0) q "
            f"ORDER BY q.created_at DESC, q.id DESC) TO STDOUT WITH ({options})"
        )
        queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
        put = functools.partial(_put_unless_stopped, queue, stop)
        threading.Thread(
            target=_copy_page,
            kwargs={
                "engine": engine,
                "sql": sql,
                "params": params,
                "batch_bytes": batch_bytes,
                "put": put,
                "convert": convert,
            },
            name="export-page",
            daemon=True,
        ).start()
        return queue

    bounds = pg_page_bounds(engine=engine, filters=filters, page_size=page_size)
    running: deque[Queue[tuple[str, Any]]] = deque()
    try:
        for after, through in itertools.islice(bounds, max(1, parallel)):
            running.append(start(after, through))
        while running:
            yield from _drain(running[0])
            running.popleft()
            nxt = next(bounds, None)
            if nxt is not None:
                running.append(start(*nxt))
    finally:
        stop.set()


def _arrow_table(page: bytes, schema: Any, with_handle: bool) -> Any:
    """A batch of ``pg_batches(mode="arrow")`` (CSV) as an Arrow table in ``schema``.

    Arrow's C++ readers do the parsing: CSV for the cells, JSON for the "lists" column, whose
    values are NDJSON lines back to back in the string column's data buffer.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.json as pj

    names = _arrow_columns(with_handle)
    types = {f.name: f.type for f in schema}
    types.update(created_at=pa.int64(), lists=pa.string())
    table = pacsv.read_csv(
        pa.BufferReader(page),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: types[c] for c in names},
            # PostgreSQL writes NULL as an empty cell and '' as "".
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )
    n = table.num_rows
    lists = table.column("lists").combine_chunks()
    if lists.null_count:
        raise RuntimeError("export page: a row without its lists")
    _, offsets_buf, data_buf = lists.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[lists.offset : lists.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    ndjson = data_buf.slice(start, end - start)
    parsed = pj.read_json(
        pa.BufferReader(ndjson),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(end - start, 1 << 16) + 1),
        parse_options=pj.ParseOptions(
            explicit_schema=pa.schema([(c, types[c]) for c in _LIST_COLUMNS if c != "scores"]),
            unexpected_field_behavior="infer",
        ),
    )
    if parsed.num_rows != n:
        raise RuntimeError(f"export page: {parsed.num_rows} JSON lines for {n} rows")
    scores = parsed.column("scores").combine_chunks()
    map_offsets = np.zeros(n + 1, dtype=np.int32)
    if pa.types.is_struct(scores.type) and scores.type.num_fields:
        # The inferred struct has a field per key seen in the batch; a row's map holds the keys
        # it has, in jsonb's order (shorter keys first, then bytewise).
        keys_seen = [scores.type.field(i).name for i in range(scores.type.num_fields)]
        order = sorted(
            range(len(keys_seen)), key=lambda i: (len(keys_seen[i].encode()), keys_seen[i])
        )
        fields = [scores.field(i) for i in order]
        valid = np.column_stack([f.is_valid().to_numpy(zero_copy_only=False) for f in fields])
        values = np.column_stack(
            [pc.cast(f, pa.float64()).fill_null(0.0).to_numpy() for f in fields]
        )
        mask = valid.ravel()
        map_offsets[1:] = np.cumsum(valid.sum(axis=1))
        keys = pa.array([keys_seen[i] for i in order], pa.string()).take(
            pa.array(np.tile(np.arange(len(order)), n)[mask])
        )
        items = pa.array(values.ravel()[mask], pa.float64())
    else:
        keys, items = pa.array([], pa.string()), pa.array([], pa.float64())
    arrays = []
    for f in schema:
        if f.name == "scores":
            arrays.append(pa.MapArray.from_arrays(pa.array(map_offsets), keys, items))
        elif f.name in _LIST_COLUMNS:
            arrays.append(parsed.column(f.name))
        elif f.name == "created_at":
            arrays.append(table.column("created_at").cast(f.type))
        else:
            arrays.append(table.column(f.name))
    out = pa.Table.from_arrays(arrays, schema=schema)
    del table, parsed, lists, ndjson
    # Hand the readers' scratch memory back now (this thread's part of the pool).
    pa.default_memory_pool().release_unused()
    return out


def _pg_stream(
    *,
    engine: Engine,
    fmt: str,
    filters: ExportFilters,
    with_handle: bool,
    on_rows: Callable[[int], None] | None,
    page_size: int,
) -> Iterator[bytes]:
    mode = "arrow" if fmt == "parquet" else fmt
    schema = parquet_schema(with_handle=with_handle) if fmt == "parquet" else None
    batches = pg_batches(
        engine=engine,
        filters=filters,
        with_handle=with_handle,
        mode=mode,
        page_size=page_size,
        batch_bytes=ROW_GROUP_BYTES if fmt == "parquet" else CHUNK_BYTES,
        # Arrow parses each page's batches in that page's thread (it releases the GIL).
        convert=(lambda data: _arrow_table(data, schema, with_handle)) if schema else None,
        # Arrow tables are larger than the bytes they come from: one batch ahead per page.
        lookahead_bytes=2 * ROW_GROUP_BYTES if schema else LOOKAHEAD_BYTES,
    )
    if fmt == "csv":
        yield (",".join(columns(with_handle=with_handle)) + "\n").encode()
    if fmt != "parquet":
        for data, n in batches:
            yield data
            if on_rows:
                on_rows(n)
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, **PARQUET_OPTIONS)
    pool = pa.default_memory_pool()
    try:
        for table, n in batches:
            writer.write_table(table)
            del table
            # Give the readers' scratch memory back now, not at the allocator's leisure.
            pool.release_unused()
            if on_rows:
                on_rows(n)
            chunk = sink.drain()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.drain()


class ExportSlots:
    """At most ``n`` exports streaming at once; a slot is held until its stream ends or closes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._sem = threading.BoundedSemaphore(n)

    def guard(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Take a slot for ``chunks`` now, or raise ``Unavailable`` (503, Retry-After)."""
        if not self._sem.acquire(blocking=False):
            raise Unavailable(
                f"{self.n} exports are already running; try again shortly", retry_after=10
            )
        return _SlotStream(chunks, self._sem)


class _SlotStream:
    """An export's chunks that give their slot back when exhausted, failed, closed or dropped
    (a generator that never started would not run a ``finally``)."""

    def __init__(self, chunks: Iterator[bytes], sem: threading.BoundedSemaphore) -> None:
        self._chunks = chunks
        self._sem: threading.BoundedSemaphore | None = sem

    def __iter__(self) -> _SlotStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        sem, self._sem = self._sem, None
        if sem is not None:
            close = getattr(self._chunks, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                sem.release()

    def __del__(self) -> None:
        self.close()


def stream_export(
    *,
    engine: Engine,
    taxonomy: Taxonomy,
    fmt: str,
    filters: ExportFilters,
    with_handle: bool = False,
    on_rows: Callable[[int], None] | None = None,
    page_size: int | None = None,
) -> Iterator[bytes]:
    """Validate now, then return an iterator of the export's bytes in ``fmt``.

    ``page_size``: rows per keyset page (default ``PG_PAGE_SIZE`` on PostgreSQL, ``PAGE_SIZE``
    elsewhere).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {list(FORMATS)}, not {fmt!r}", param="format")
    validate_filters(
        taxonomy,
        theme=filters.theme,
        product=filters.product,
        since=filters.since,
        until=filters.until,
    )

    if engine.dialect.name == "postgresql":
        return _pg_stream(
            engine=engine,
            fmt=fmt,
            filters=filters,
            with_handle=with_handle,
            on_rows=on_rows,
            page_size=page_size or PG_PAGE_SIZE,
        )

    def pages() -> Iterator[list[Any]]:
        source = iter_pages(
            engine=engine,
            filters=filters,
            with_handle=with_handle,
            page_size=page_size or PAGE_SIZE,
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
