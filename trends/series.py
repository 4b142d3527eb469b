"""Time series of theme counts and shares; day and week buckets are sums of UTC hours."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.errors import InvalidInput
from core.models import Rollup, utcnow
from core.taxonomy import Taxonomy
from trends.rollups import ALL, CLS, POST, VERSION, decode_timestamp
from trends.weekly import wilson

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
GRANULARITIES = ("hour", "day", "week")
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
DEFAULT_SPAN = {"hour": timedelta(days=7), "day": timedelta(days=30), "week": timedelta(weeks=26)}
MAX_POINTS = 5000


def floor_bucket(ts: datetime, granularity: str) -> datetime:
    """The start of the UTC hour, day or ISO week (Monday) holding ``ts``."""
    hour = ts.replace(minute=0, second=0, microsecond=0)
    if granularity == "hour":
        return hour
    day = hour.replace(hour=0)
    if granularity == "day":
        return day
    return day - timedelta(days=day.weekday())


def bucket_start(dialect: str, granularity: str) -> sa.ColumnElement[datetime]:
    """SQL for ``floor_bucket`` of a rollup's hour: the start of its UTC hour, day or ISO week."""
    bucket = ROLLUP.c.bucket
    if granularity == "hour":
        return bucket
    if dialect == "postgresql":
        # Truncated in UTC whatever the session's TimeZone; PostgreSQL weeks start on Monday.
        start = sa.func.date_trunc(granularity, bucket, "UTC")
    else:
        # SQLite keeps naive UTC text: 'weekday 0' moves to the week's Sunday, six days back is
        # its Monday (a Sunday stays put, so it falls in the week that began the Monday before).
        week = ("weekday 0", "-6 days") if granularity == "week" else ()
        start = sa.func.datetime(bucket, *week, "start of day")
    return sa.type_coerce(start, bucket.type)


def _utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive time is taken to be UTC already."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC)


def validate_series(
    taxonomy: Taxonomy,
    *,
    themes: list[str] | None,
    product: str | None,
    granularity: str,
    start: datetime | None,
    end: datetime | None,
) -> tuple[list[str], datetime, datetime]:
    """The themes and the [start, end) range to read, or InvalidInput naming the parameter."""
    if granularity not in GRANULARITIES:
        raise InvalidInput(
            f"granularity must be one of {list(GRANULARITIES)}, not {granularity!r}",
            param="granularity",
        )
    keys = list(themes or taxonomy.theme_keys)
    unknown = [t for t in keys if t not in taxonomy.theme_keys]
    if unknown:
        raise InvalidInput(
            f"unknown theme(s) {unknown}; one of {list(taxonomy.theme_keys)}", param="themes"
        )
    if product and product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    try:
        end = end or floor_bucket(utcnow(), granularity) + STEP[granularity]
        start = start or end - DEFAULT_SPAN[granularity]
        if start >= end:
            raise InvalidInput("from must be before to", param="from")
        # Buckets are UTC hours, days and weeks: a bound given in another zone is moved to UTC
        # first, or its local midnights would match no bucket.
        start = floor_bucket(_utc(start), granularity)
        end = _utc(end)
        if end + STEP[granularity] > datetime.max.replace(tzinfo=end.tzinfo):
            raise OverflowError
    except OverflowError as e:
        raise InvalidInput("from or to is out of range", param="from") from e
    if (end - start) / STEP[granularity] > MAX_POINTS:
        raise InvalidInput(
            f"from..to holds more than {MAX_POINTS} {granularity} buckets; narrow it or use a "
            "coarser granularity",
            param="from",
        )
    return list(dict.fromkeys(keys)), start, end


def model_versions(
    *, session: Session, start: datetime, end: datetime, platform: str | None
) -> list[dict[str, Any]]:
    """Each model version in force for posts of the hours in [start, end): first post time and
    first scoring, from the rollups' per-hour version rows (a few rows per hour, not the posts)."""
    v = VERSION.c
    stmt = (
        sa.select(
            v.model_version,
            sa.func.min(v.first_post_at),
            sa.func.min(v.first_classified_at),
            sa.func.sum(v.posts),
        )
        .where(v.bucket >= start, v.bucket < end)
        .group_by(v.model_version)
    )
    if platform:
        stmt = stmt.where(v.platform == platform)
    return _version_list(session, session.execute(stmt))


def model_versions_scan(
    *, session: Session, start: datetime, end: datetime, platform: str | None
) -> list[dict[str, Any]]:
    """The same list computed from every post of [start, end) (one join over the range): the
    reference ``model_versions`` must equal, for the tests and the API benchmark's baseline."""
    stmt = (
        sa.select(
            CLS.c.model_version,
            sa.func.min(POST.c.created_at),
            sa.func.min(CLS.c.created_at),
            sa.func.count(),
        )
        .select_from(POST)
        .join(CLS, CLS.c.id == POST.c.classification_id)
        .where(POST.c.created_at >= start, POST.c.created_at < end, POST.c.deleted_at.is_(None))
        .group_by(CLS.c.model_version)
    )
    if platform:
        stmt = stmt.where(POST.c.platform == platform)
    return _version_list(session, session.execute(stmt))


def _version_list(session: Session, rows: Any) -> list[dict[str, Any]]:
    decoded = sorted(
        (
            (mv, decode_timestamp(session, first), decode_timestamp(session, scored), n)
            for mv, first, scored, n in rows
        ),
        key=lambda r: (r[1], r[0]),
    )
    return [
        {
            "version": mv,
            "first_post_at": first.isoformat(),
            "first_classified_at": scored.isoformat(),
            "posts": int(n),
        }
        for mv, first, scored, n in decoded
    ]


def series(
    *,
    session: Session,
    taxonomy: Taxonomy,
    themes: list[str] | None = None,
    product: str | None = None,
    platform: str | None = None,
    granularity: str = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Counts and shares per bucket for the chosen themes, with the model-version changes marked."""
    keys, start, end = validate_series(
        taxonomy,
        themes=themes,
        product=product,
        granularity=granularity,
        start=start,
        end=end,
    )
    bucket = bucket_start(session.get_bind().dialect.name, granularity)
    stmt = (
        sa.select(bucket, ROLLUP.c.theme, sa.func.sum(ROLLUP.c.count))
        .where(
            ROLLUP.c.bucket >= start,
            ROLLUP.c.bucket < end,
            ROLLUP.c.product == (product or ALL),
            ROLLUP.c.theme.in_([ALL, *keys]),
        )
        .group_by(bucket, ROLLUP.c.theme)
    )
    if platform:
        stmt = stmt.where(ROLLUP.c.platform == platform)
    sums: dict[datetime, dict[str, int]] = defaultdict(dict)
    for b, theme, n in session.execute(stmt):
        sums[b][theme] = int(n or 0)
    versions = model_versions(session=session, start=start, end=end, platform=platform)
    changes = {
        floor_bucket(datetime.fromisoformat(v["first_post_at"]), granularity): v["version"]
        for v in versions[1:]
    }
    points = []
    b = start
    while b < end:
        counts = sums.get(b, {})
        total = counts.get(ALL, 0)
        point: dict[str, Any] = {"start": b.isoformat(), "total": total, "themes": {}}
        for k in keys:
            n = counts.get(k, 0)
            lo, hi = wilson(n, total)
            point["themes"][k] = {
                "count": n,
                "share": round(n / total, 6) if total else 0.0,
                "share_ci": [round(lo, 6), round(hi, 6)],
            }
        if b in changes:
            point["model_version_changed_to"] = changes[b]
        points.append(point)
        b += STEP[granularity]
    return {
        "granularity": granularity,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "product": product,
        "platform": platform,
        "themes": keys,
        "points": points,
        "model_versions": versions,
    }
