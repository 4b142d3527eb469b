"""Day and week series summed by the database equal the hour rollups summed in Python."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core.db import is_postgres
from core.models import Rollup
from core.taxonomy import load_taxonomy
from trends.rollups import ALL
from trends.series import floor_bucket, series

TAX = load_taxonomy()
ROLLUP = Rollup.__table__
THEMES = ["refusal_complaint", "switching_intent"]
# Thursday 2026-12-17 to Wednesday 2027-01-20: five Sunday->Monday turns, Dec->Jan, 2026->2027.
FIRST = datetime(2026, 12, 17, tzinfo=UTC)
HOURS = 35 * 24
# Far from UTC, so a day or week cut at local time moves hours between buckets.
LOCAL_ZONE = "Pacific/Auckland"
NEW_YORK_MIDNIGHT = datetime(2026, 12, 20, tzinfo=ZoneInfo("America/New_York"))


def _write_rollups(session) -> None:
    """Hour rows whose counts differ from hour to hour, on two platforms and two products."""
    rows = []
    for h in range(HOURS):
        bucket = FIRST + timedelta(hours=h)
        for i, platform in enumerate(("reddit", "bluesky")):
            for product in (ALL, "claude"):
                counts = {ALL: 40 + (h * 37 + i) % 29, THEMES[0]: (h * 13 + i) % 11}
                counts[THEMES[1]] = (h * 7) % 5 if product == ALL else 0
                rows += [
                    {
                        "bucket": bucket,
                        "platform": platform,
                        "product": product,
                        "theme": t,
                        "count": n,
                    }
                    for t, n in counts.items()
                ]
    session.execute(sa.insert(ROLLUP), rows)
    session.commit()


def _hours_summed_in_python(session, out, *, product, platform):
    """The points of ``out`` as the old read computed them: every hour row of the range, each
    added to ``floor_bucket`` of its hour."""
    start, end = datetime.fromisoformat(out["from"]), datetime.fromisoformat(out["to"])
    c = ROLLUP.c
    stmt = sa.select(c.bucket, c.theme, c.count).where(
        c.bucket >= start, c.bucket < end, c.product == (product or ALL)
    )
    if platform:
        stmt = stmt.where(c.platform == platform)
    sums: dict[datetime, Counter[str]] = defaultdict(Counter)
    for bucket, theme, n in session.execute(stmt):
        sums[floor_bucket(bucket, out["granularity"])][theme] += n
    return [
        (
            p["start"],
            sums[datetime.fromisoformat(p["start"])][ALL],
            {k: sums[datetime.fromisoformat(p["start"])][k] for k in out["themes"]},
        )
        for p in out["points"]
    ]


def _counts(out):
    return [
        (p["start"], p["total"], {k: v["count"] for k, v in p["themes"].items()})
        for p in out["points"]
    ]


@contextmanager
def _local_time_far_from_utc(session, monkeypatch) -> Iterator[None]:
    """The database session (PostgreSQL) and the process (SQLite's 'localtime') in a zone far
    from UTC, so that buckets cut at local time would differ from UTC ones."""
    if is_postgres(session):
        session.execute(sa.text(f"SET LOCAL TIME ZONE '{LOCAL_ZONE}'"))
    with monkeypatch.context() as m:
        m.setenv("TZ", LOCAL_ZONE)
        time.tzset()
        try:
            yield
        finally:
            m.undo()
            time.tzset()


CASES = [
    # (granularity, start, end, product, platform, themes)
    ("week", FIRST - timedelta(days=3), FIRST + timedelta(weeks=5), None, None, None),
    ("week", FIRST + timedelta(hours=15), FIRST + timedelta(days=33, hours=5), None, None, THEMES),
    ("week", FIRST, FIRST + timedelta(days=35), "claude", "reddit", None),
    ("day", FIRST, FIRST + timedelta(days=35), None, None, None),
    ("day", FIRST + timedelta(days=9, hours=7), FIRST + timedelta(days=20), None, "bluesky", None),
    ("day", FIRST, FIRST + timedelta(days=35), "claude", None, [THEMES[0]]),
    # A caller's zone other than UTC: its bounds are moved to UTC, the points are UTC days.
    ("day", NEW_YORK_MIDNIGHT, FIRST + timedelta(days=9), None, None, None),
    ("hour", FIRST + timedelta(days=13, hours=20), FIRST + timedelta(days=15), None, None, None),
]


@pytest.mark.parametrize(("granularity", "start", "end", "product", "platform", "themes"), CASES)
def test_series_buckets_equal_the_hours_summed_in_python(
    session, monkeypatch, granularity, start, end, product, platform, themes
):
    _write_rollups(session)
    with _local_time_far_from_utc(session, monkeypatch):
        out = series(
            session=session,
            taxonomy=TAX,
            themes=themes,
            product=product,
            platform=platform,
            granularity=granularity,
            start=start,
            end=end,
        )
    want = _hours_summed_in_python(session, out, product=product, platform=platform)
    assert _counts(out) == want
    assert all(total > 0 for _, total, _ in want)  # every bucket holds hours: not vacuous
    assert all(
        datetime.fromisoformat(p["start"]).utcoffset() == timedelta(0) for p in out["points"]
    )


def test_weeks_start_on_monday_and_days_at_utc_midnight(session, monkeypatch):
    _write_rollups(session)
    sunday = datetime(2026, 12, 27, tzinfo=UTC)
    with _local_time_far_from_utc(session, monkeypatch):
        week = series(
            session=session,
            taxonomy=TAX,
            granularity="week",
            start=FIRST,
            end=datetime(2027, 1, 4, tzinfo=UTC),
        )
        day = series(
            session=session,
            taxonomy=TAX,
            granularity="day",
            start=sunday,
            end=sunday + timedelta(days=2),
        )
    # Week 2026-W53 runs Monday 2026-12-28 to Sunday 2027-01-03: 168 hours, over the new year.
    assert [p["start"] for p in week["points"]] == [
        "2026-12-14T00:00:00+00:00",
        "2026-12-21T00:00:00+00:00",
        "2026-12-28T00:00:00+00:00",
    ]
    # Hour totals as _write_rollups wrote them, both platforms.
    hour = {
        FIRST + timedelta(hours=h): 80 + (h * 37) % 29 + (h * 37 + 1) % 29 for h in range(HOURS)
    }
    w53 = datetime(2026, 12, 28, tzinfo=UTC)
    assert week["points"][2]["total"] == sum(
        n for b, n in hour.items() if w53 <= b < w53 + timedelta(days=7)
    )
    assert [p["total"] for p in day["points"]] == [
        sum(n for b, n in hour.items() if d <= b < d + timedelta(days=1))
        for d in (sunday, sunday + timedelta(days=1))
    ]
