"""Spike detector: baseline, tail test, calibration and the backtest contract on built series."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from trends.backtest import OUT_HEADER, run_backtest
from trends.spikes import (
    Detector,
    DetectorParams,
    RowResult,
    calibrate_threshold,
    score_latest,
)

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def hours(n: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]


def seasonal_mean(n: int, level: float) -> np.ndarray:
    """Diurnal cycle and quieter weekends, averaging `level` per hour."""
    t = np.arange(n)
    shape = (1.0 + 0.6 * np.sin(2 * np.pi * (t % 24 - 9) / 24)) * np.where(
        (t // 24) % 7 >= 5, 0.6, 1.1
    )
    return level * shape / shape.mean()


def nb_counts(rng: np.random.Generator, mu: np.ndarray, alpha: float = 0.2) -> np.ndarray:
    return rng.poisson(rng.gamma(1.0 / alpha, alpha * mu)).astype(float)


def same(a: RowResult, b: RowResult) -> bool:
    """Equal rows, nan matching nan."""
    return (
        a.timestamp == b.timestamp
        and a.alert == b.alert
        and a.window_buckets == b.window_buckets
        and all(
            x == y or (math.isnan(x) and math.isnan(y))
            for x, y in (
                (a.expected, b.expected),
                (a.score, b.score),
                (a.threshold, b.threshold),
                (a.tail_p, b.tail_p),
            )
        )
    )


def alert_rows(rows: list[RowResult]) -> list[int]:
    return [i for i, r in enumerate(rows) if r.alert is not None]


def test_constant_series_never_alerts():
    rows = Detector(DetectorParams()).run(hours(24 * 56), np.full(24 * 56, 10.0))
    assert alert_rows(rows) == []
    assert rows[-1].expected == pytest.approx(10.0, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.3, 1.0, 4.0])
def test_flat_poisson_series_never_alerts(seed, lam):
    rng = np.random.default_rng(seed)
    y = rng.poisson(lam, 24 * 56).astype(float)
    assert alert_rows(Detector(DetectorParams()).run(hours(y.size), y)) == []


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", [1.0, 3.0, 15.0])
def test_nine_x_burst_always_alerts(seed, level):
    rng = np.random.default_rng(100 + seed)
    n = 24 * 49
    mu = seasonal_mean(n, level)
    y = nb_counts(rng, mu)
    at = 24 * 36 + int(rng.integers(0, 24))
    y[at : at + 3] += rng.poisson(8.0 * mu[at : at + 3])
    rows = Detector(DetectorParams(budget=1.0)).run(hours(n), y)
    hits = [i for i in alert_rows(rows) if at <= i < at + 24]
    assert hits, f"no alert for a 9x burst at row {at}"
    alert = rows[hits[0]].alert
    assert alert is not None
    assert alert.observed > alert.expected
    assert 0.0 < alert.tail_p < 1e-3
    assert alert.window_buckets in (1, 3, 6, 24)


@pytest.mark.parametrize("seed", range(4))
def test_persistence_arm_lifts_a_sustained_burst_and_not_a_single_spike(seed):
    # Real volumes wander (autocorrelated level noise), so a 3-hour sum is barely less
    # dispersed than one hour and a 4x rise for 3 hours scores below one 12x hour; three
    # consecutive high hours are what the persistence arm scores, one huge hour gains nothing.
    rng = np.random.default_rng(seed)
    n = 24 * 42
    wander = np.zeros(n)
    steps = rng.normal(0.0, 0.1, n)
    for t in range(1, n):
        wander[t] = 0.9 * wander[t - 1] + steps[t]
    y = rng.poisson(seasonal_mean(n, 200.0) * np.exp(wander)).astype(float)
    spikes = [24 * 30 + 13, 24 * 33 + 2, 24 * 36 + 20]
    y[spikes] *= 12
    burst = 24 * 39 + 10
    y[burst : burst + 3] *= 4
    on = Detector(DetectorParams()).run(hours(n), y)
    off = Detector(DetectorParams(persist_windows=())).run(hours(n), y)
    assert [on[i].score for i in spikes] == [off[i].score for i in spikes]
    best = max(range(burst, burst + 3), key=lambda i: on[i].score)
    assert on[best].window_buckets == 3
    assert on[best].score > 1.5 * max(off[i].score for i in range(burst, burst + 3))


def test_huge_spikes_keep_distinct_finite_scores():
    # Tail probabilities below 1e-308 used to underflow and tie at the score cap, so the
    # budget could not rank the largest incidents of a series.
    rng = np.random.default_rng(3)
    n = 24 * 28
    scores = []
    for size in (4000.0, 8000.0):
        y = rng.poisson(25.0, n).astype(float)
        y[n - 1] = size
        scores.append(Detector(DetectorParams()).run(hours(n), y)[-1].score)
    assert all(math.isfinite(s) and 300.0 < s < 1e4 for s in scores), scores
    assert scores[1] > scores[0]


def test_weekly_pattern_does_not_alert_every_monday():
    rng = np.random.default_rng(7)
    n = 24 * 7 * 10
    day = np.arange(n) // 24
    mu = np.where(day % 7 == 0, 9.0, 3.0)  # Mondays three times as busy
    y = rng.poisson(mu).astype(float)
    rows = Detector(DetectorParams()).run(hours(n), y)
    monday_alerts = {i // 24 // 7 for i in alert_rows(rows) if (i // 24) % 7 == 0}
    assert len(monday_alerts) <= 1, monday_alerts
    assert not any(week >= 2 for week in monday_alerts)
    # The seasonal baseline has learned Mondays: expected tracks the weekly shape.
    last_monday = [r.expected for r in rows[-24 * 7 : -24 * 6]]
    last_tuesday = [r.expected for r in rows[-24 * 6 : -24 * 5]]
    assert np.mean(last_monday) > 2.0 * np.mean(last_tuesday)


def test_no_look_ahead():
    rng = np.random.default_rng(3)
    n = 24 * 42
    y = nb_counts(rng, seasonal_mean(n, 4.0))
    y[24 * 20 : 24 * 20 + 3] *= 8
    ts = hours(n)
    cut = 24 * 30
    full = Detector(DetectorParams()).run(ts, y)
    changed = y.copy()
    changed[cut:] = rng.poisson(50.0, n - cut)  # a very different future
    other = Detector(DetectorParams()).run(ts, changed)
    truncated = Detector(DetectorParams()).run(ts[:cut], y[:cut])
    for a, b, c in zip(full[:cut], other[:cut], truncated, strict=True):
        assert same(a, b) and same(a, c)


def test_budget_respected_on_null_series():
    rng = np.random.default_rng(11)
    weeks = 12
    n = 24 * 7 * weeks
    for budget in (0.5, 4.0):
        for level in (0.5, 5.0):
            y = nb_counts(rng, seasonal_mean(n, level), alpha=0.4)
            rows = Detector(DetectorParams(budget=budget)).run(hours(n), y)
            assert len(alert_rows(rows)) <= budget * weeks / 4


def test_hard_cap_holds_in_every_28_days_even_on_a_spiky_series():
    rng = np.random.default_rng(5)
    n = 24 * 7 * 12
    y = nb_counts(rng, seasonal_mean(n, 3.0))
    for at in range(24 * 5, n - 24, 24 * 3):  # a large burst every three days
        y[at : at + 2] += 60
    rows = Detector(DetectorParams(budget=2.0, cap="hard")).run(hours(n), y)
    alerts = np.array(alert_rows(rows))
    assert alerts.size > 0
    for i in alerts:
        assert np.sum((alerts > i - 24 * 28) & (alerts <= i)) <= 2


def test_one_alert_per_incident_with_cooldown():
    rng = np.random.default_rng(9)
    n = 24 * 42
    y = nb_counts(rng, seasonal_mean(n, 5.0))
    at = 24 * 35
    y[at : at + 12] += 80  # a half-day incident
    y[at + 15] += 80  # and a relapse inside the cooldown
    rows = Detector(DetectorParams()).run(hours(n), y)
    assert [i for i in alert_rows(rows) if at <= i < at + 24] == [at]


def test_calibrate_threshold_keeps_to_the_budget():
    scores = np.zeros(24 * 56)
    peaks = [5.0, 9.0, 7.0, 12.0, 6.0, 8.0]  # six incidents over eight weeks
    for k, p in enumerate(peaks):
        scores[24 * 8 * (k + 1)] = p
    kwargs = {"bucket_seconds": 3600, "cooldown_buckets": 24, "min_score": 4.0, "method": "rank"}
    # Two per 28 days over 56 days allows four: the threshold drops to the fourth largest.
    assert calibrate_threshold(scores, budget=2.0, **kwargs) == 7.0
    assert calibrate_threshold(scores, budget=6.0, **kwargs) == 4.0
    assert calibrate_threshold(scores, budget=0.4, **kwargs) > 12.0
    tail = {
        b: calibrate_threshold(scores, budget=b, **{**kwargs, "method": "tail"})
        for b in (0.2, 0.4, 2.0)
    }
    assert tail[0.2] > 12.0  # extrapolates beyond the largest peak
    assert tail[0.2] > tail[0.4] > tail[2.0] >= 4.0


def test_five_minute_granularity_alerts_on_a_burst():
    rng = np.random.default_rng(2)
    n = 288 * 21
    t = np.arange(n)
    mu = 2.0 * (1.0 + 0.5 * np.sin(2 * np.pi * (t % 288) / 288))
    y = rng.poisson(mu).astype(float)
    at = 288 * 15 + 100
    y[at : at + 6] += rng.poisson(8 * mu[at : at + 6])
    ts = [START + timedelta(minutes=5 * i) for i in range(n)]
    rows = Detector(DetectorParams(granularity="5min")).run(ts, y)
    assert [i for i in alert_rows(rows) if at <= i < at + 288]
    assert not [i for i in alert_rows(rows) if i < at]


def test_daily_granularity_runs_and_alerts():
    rng = np.random.default_rng(4)
    n = 200
    dow = np.arange(n) % 7
    y = rng.poisson(np.where(dow >= 5, 20.0, 40.0)).astype(float)
    y[150] = 200
    ts = [START + timedelta(days=i) for i in range(n)]
    rows = Detector(DetectorParams(granularity="day")).run(ts, y)
    assert 150 in alert_rows(rows)


def test_score_latest_matches_the_backtest_row():
    rng = np.random.default_rng(8)
    n = 24 * 30
    y = nb_counts(rng, seasonal_mean(n, 6.0))
    y[-1] = 90
    ts = hours(n)
    params = DetectorParams()
    last = Detector(params).run(ts, y)[-1]
    live = score_latest(ts, y, params=params)
    assert live.score == pytest.approx(last.score)
    assert live.expected == pytest.approx(last.expected)
    assert live.alert is not None
    # Still inside the cooldown of an earlier alert: scored, but no new alert.
    quiet = score_latest(ts, y, params=params, last_alert_at=ts[-1] - timedelta(hours=2))
    assert quiet.alert is None and quiet.score == pytest.approx(last.score)


def test_missing_buckets_are_gaps_not_drops():
    rng = np.random.default_rng(6)
    n = 24 * 35
    y = rng.poisson(5.0, n).astype(float)
    keep = np.ones(n, dtype=bool)
    keep[24 * 20 : 24 * 22] = False  # two days without data
    ts = [t for t, k in zip(hours(n), keep, strict=True) if k]
    rows = Detector(DetectorParams()).run(ts, y[keep])
    assert len(rows) == int(keep.sum())
    assert alert_rows(rows) == []


def test_backtest_csv_matches_the_contract(tmp_path):
    rng = np.random.default_rng(1)
    n = 24 * 28
    y = nb_counts(rng, seasonal_mean(n, 4.0))
    y[24 * 21 : 24 * 21 + 3] += 60
    src = tmp_path / "series.csv"
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t, v in zip(hours(n), y, strict=True):
            w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), int(v)])
    out = tmp_path / "out.csv"
    summary = run_backtest(src, out, granularity="hour", budget=2.0)
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == OUT_HEADER
    body = rows[1:]
    with open(src, newline="") as fh:
        source = list(csv.reader(fh))[1:]
    assert len(body) == len(source) == n
    assert [r[0] for r in body] == [s[0] for s in source]
    assert [r[1] for r in body] == [s[1] for s in source]
    assert {r[4] for r in body} <= {"0", "1"}
    assert all(math.isfinite(float(r[3])) for r in body)
    assert all(r[2] == "" or float(r[2]) >= 0 for r in body)
    flagged = [i for i, r in enumerate(body) if r[4] == "1"]
    assert summary["alerts"] == len(flagged) >= 1
    assert any(24 * 21 <= i < 24 * 22 for i in flagged)


def test_backtest_reads_a_spreadsheet_csv_and_names_a_bad_row(tmp_path):
    """Excel's "CSV UTF-8" puts a byte-order mark before the header and ends lines in CRLF; a
    value that is no number is named with its line, not a bare float() message."""
    src, out = tmp_path / "excel.csv", tmp_path / "out.csv"
    body = "".join(f"2024-01-01 {h:02d}:00:00,{h % 3}\r\n" for h in range(24))
    src.write_bytes(b"\xef\xbb\xbf" + ("Timestamp,Value\r\n" + body).encode())
    assert run_backtest(src, out)["rows"] == 24
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == OUT_HEADER and rows[3][:2] == ["2024-01-01 02:00:00", "2"]
    src.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,n/a\n")
    with pytest.raises(ValueError, match=r"excel\.csv:3: value 'n/a' is not a number"):
        run_backtest(src, out)


def test_backtest_takes_iso_or_epoch_times_alike_and_names_a_bad_one(tmp_path):
    """The same series written with "T...Z", a "+02:00" offset or Unix epoch seconds gives the
    same expected, score and alert columns; a time that is none of these names its row."""
    n = 24 * 14
    y = [(i * 7) % 5 + (40 if i == 24 * 12 else 0) for i in range(n)]
    formats = {
        "iso": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offset": lambda t: t.astimezone(timezone(timedelta(hours=2))).isoformat(),
        "epoch": lambda t: str(int(t.timestamp())),
    }
    columns = {}
    for name, fmt in formats.items():
        src, out = tmp_path / f"{name}.csv", tmp_path / f"{name}.out.csv"
        src.write_text(
            "timestamp,value\n" + "".join(f"{fmt(t)},{v}\n" for t, v in zip(hours(n), y))
        )
        assert run_backtest(src, out)["granularity"] == "hour"
        with open(out, newline="") as fh:
            columns[name] = [r[1:] for r in csv.reader(fh)]
    assert columns["iso"] == columns["offset"] == columns["epoch"]
    assert sum(int(r[3]) for r in columns["iso"][1:]) >= 1  # the 40-post hour alerts
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: row 2: timestamp 'yesterday'"):
        run_backtest(bad, tmp_path / "bad.out.csv")


def test_a_low_count_rise_does_not_raise_its_own_baseline():
    rng = np.random.default_rng(12)
    n = 24 * 35
    mu = seasonal_mean(n, 0.1)  # a theme seen twice or three times a day
    y = rng.poisson(mu).astype(float)
    at = 24 * 28 + 12
    y[at : at + 36] += rng.poisson(0.6, 36)  # a day and a half at several times the baseline
    rows = Detector(DetectorParams(budget=2.0)).run(hours(n), y)
    assert [i for i in alert_rows(rows) if at <= i < at + 36]
    # The open incident stays out of the baseline: expected barely moves while it lasts.
    before = np.mean([r.expected for r in rows[at - 24 : at]])
    during = np.mean([r.expected for r in rows[at + 12 : at + 36]])
    assert during < 1.5 * before, (before, during)
    plain = Detector(DetectorParams(budget=2.0, exclude_z=math.inf)).run(hours(n), y)
    assert np.mean([r.expected for r in plain[at + 12 : at + 36]]) > during


def test_backtest_defaults_infer_granularity_and_hold_the_budget(tmp_path):
    rng = np.random.default_rng(13)
    n = 288 * 21
    t = np.arange(n)
    y = rng.poisson(3.0 * (1.0 + 0.5 * np.sin(2 * np.pi * (t % 288) / 288))).astype(int)
    for k in range(6):  # six bursts in three weeks: more than the budget allows
        y[288 * (8 + 2 * k) + 50 : 288 * (8 + 2 * k) + 56] += 60
    src = tmp_path / "five_minutes.csv"
    stamps = [START + timedelta(minutes=5 * i) for i in range(n)]
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        w.writerows([s.strftime("%Y-%m-%d %H:%M:%S"), v] for s, v in zip(stamps, y, strict=True))
    summary = run_backtest(src, tmp_path / "out.csv")
    assert summary["granularity"] == "5min" and summary["budget"] == 4.0
    assert 1 <= summary["alerts"] <= 4 and summary["max_alerts_any_28_days"] <= 4


def test_alert_opens_on_the_last_row_of_a_coarser_bucket():
    rng = np.random.default_rng(14)
    n = 288 * 14
    y = rng.poisson(2.0, n).astype(float)
    at = 288 * 10 + 12 * 7  # 07:00 on day ten
    y[at : at + 12] += 40
    stamps = [START + timedelta(minutes=5 * i) for i in range(n)]
    rows = Detector(DetectorParams(granularity="hour")).run(stamps, y)
    flagged = alert_rows(rows)
    assert flagged, "no alert for the burst"
    # The hour's count is known at its last 5-minute row, not at its first.
    assert all(rows[i].timestamp.minute == 55 for i in flagged)
