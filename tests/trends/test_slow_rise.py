"""The slow-rise arm: a capped CUSUM on daily residuals, and its section of the weekly report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from core.models import Rollup
from core.taxonomy import load_taxonomy
from trends.alerts import RuleSpec, create_rule, list_rules
from trends.report import analyse_week, build_weekly_report
from trends.spikes import SLOW_H, Detector, DetectorParams, SlowRise, slow_rise

START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday; eight weeks before the end of 2026-W44
DAYS = 56
RAMP = 21  # the last three weeks


def days(n: int = DAYS) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


def nb(rng: np.random.Generator, mu: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Negative-binomial counts (var = mu + alpha mu^2) around ``mu``."""
    return rng.poisson(rng.gamma(1.0 / alpha, alpha * mu)).astype(float)


def ramp_mean(level: float = 20.0) -> np.ndarray:
    """Flat at ``level``, then +8% a day over the last RAMP days."""
    k = np.arange(DAYS) - (DAYS - RAMP) + 1
    return level * np.where(k >= 1, 1.08 ** np.maximum(k, 0), 1.0)


def cusum(values: np.ndarray) -> SlowRise:
    return slow_rise(Detector(DetectorParams(granularity="day")).run(days(values.size), values))


@pytest.mark.parametrize("seed", range(8))
def test_flat_series_never_trips(seed):
    y = nb(np.random.default_rng(seed), np.full(DAYS, 20.0))
    assert not cusum(y).tripped


def test_steady_rise_trips_and_the_run_begins_inside_the_ramp():
    # Around 20 a day (an under-dispersed, deterministic wobble), then round(20 x 1.08^k).
    wobble = np.resize([18.0, 22.0, 20.0, 17.0, 23.0, 21.0, 19.0], DAYS - RAMP)
    y = np.concatenate([wobble, np.round(ramp_mean()[DAYS - RAMP :])])
    rise = cusum(y)
    ramp_start = START + timedelta(days=DAYS - RAMP)
    assert rise.tripped and rise.statistic >= SLOW_H
    assert rise.since is not None and ramp_start <= rise.since <= START + timedelta(days=DAYS - 1)
    assert rise.observed > 1.5 * rise.expected > 0


@pytest.mark.parametrize("seed", range(8))
def test_steady_rise_trips_on_noisy_counts(seed):
    rise = cusum(nb(np.random.default_rng(seed), ramp_mean()))
    assert rise.tripped and rise.since is not None
    # A noise day just before may open the run; it does not begin in the flat weeks.
    assert rise.since >= START + timedelta(days=DAYS - RAMP - 10)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("back", [0, 2])
def test_a_single_nine_x_day_does_not_trip(seed, back):
    mu = np.full(DAYS, 20.0)
    mu[DAYS - 1 - back] *= 9.0
    rise = cusum(nb(np.random.default_rng(seed), mu))
    assert not rise.tripped and rise.statistic < SLOW_H
    if back == 0:  # the spike day counted (the sum is positive) but, capped, cannot reach H
        assert rise.statistic > 0.0


@pytest.mark.parametrize("seed", range(8))
def test_weekly_pattern_does_not_trip(seed):
    weekend = (np.arange(DAYS) + START.weekday()) % 7 >= 5
    y = nb(np.random.default_rng(seed), np.where(weekend, 12.0, 24.0))
    assert not cusum(y).tripped


def test_short_history_and_no_rows_do_not_trip():
    assert not slow_rise([]).tripped
    short = cusum(np.full(10, 20.0))  # all warm-up: no expected count yet
    assert not short.tripped and short.since is None and short.statistic == 0.0


# --- the weekly report ------------------------------------------------------------------------

RISING, FLAT = "refusal_complaint", "lost_work_claim"


def write_days(session, *, rising: np.ndarray, flat: np.ndarray) -> None:
    """One hour a day of rollups: totals, the rising theme about Claude, a flat theme."""
    rows = []
    for i, (r, f) in enumerate(zip(rising.tolist(), flat.tolist(), strict=True)):
        b = START + timedelta(days=i, hours=12)
        for product, theme, n in (
            ("*", "*", r + f + 40),
            ("claude", "*", r + 20),
            ("*", RISING, r),
            ("claude", RISING, r),
            ("*", FLAT, f),
        ):
            rows.append(dict(bucket=b, platform="reddit", product=product, theme=theme, count=n))
    session.execute(sa.insert(Rollup.__table__), rows)
    session.commit()


def make_rules(session, settings) -> None:
    tax = load_taxonomy()
    for spec in (
        RuleSpec(name="claude refusals", theme=RISING, product="claude", platform="reddit"),
        RuleSpec(name="lost work", theme=FLAT),
    ):
        create_rule(session=session, spec=spec, taxonomy=tax, settings=settings)
    session.commit()


def test_weekly_report_lists_a_slow_rise_for_its_rule_only(settings, session):
    rng = np.random.default_rng(3)
    write_days(session, rising=nb(rng, ramp_mean()), flat=nb(rng, np.full(DAYS, 20.0)))
    make_rules(session, settings)
    report = build_weekly_report(
        session=session, settings=settings, taxonomy=load_taxonomy(), week="2026-W44"
    )
    rises = report.summary["slow_rises"]
    assert [(r["theme"], r["product"], r["platform"]) for r in rises] == [
        (RISING, "claude", "reddit")
    ]
    since = date.fromisoformat(rises[0]["since"])
    assert date(2026, 10, 2) <= since <= date(2026, 11, 1)  # at most 10 days before the ramp
    assert rises[0]["rise"] > 0.5
    md = report.files["report.md"].decode()
    assert "## Slow rises" in md
    section = md.split("## Slow rises", 1)[1].split("## ", 1)[0]
    assert "Refusal" in section and "claude" in section and f"since {since}" in section
    assert "Lost-work" not in section
    assert "Slow rises" in report.files["report.html"].decode()
    for rule in list_rules(session=session):
        rule.enabled = False  # a disabled rule is not watched, slowly either
    session.commit()
    assert (
        analyse_week(session=session, taxonomy=load_taxonomy(), week="2026-W44")["slow_rises"] == []
    )


def test_no_slow_rises_section_without_history(settings, session):
    rng = np.random.default_rng(4)
    write_days(session, rising=nb(rng, np.full(10, 20.0)), flat=nb(rng, np.full(10, 20.0)))
    make_rules(session, settings)
    data = analyse_week(session=session, taxonomy=load_taxonomy(), week="2026-W37")
    assert data["slow_rises"] == []
    report = build_weekly_report(
        session=session, settings=settings, taxonomy=load_taxonomy(), week="2026-W37"
    )
    assert report.summary["slow_rises"] == []
    assert "Slow rises" not in report.files["report.md"].decode()
    empty = analyse_week(session=session, taxonomy=load_taxonomy(), week="2026-W30")
    assert empty["slow_rises"] == []
