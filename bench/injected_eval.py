"""Recall of injected spikes with known truth, against a rolling z-score baseline.

Series: the ten NAB realTweets series summed to hours (read from ../shared, not copied), with
NAB's labelled anomaly windows blanked as coverage gaps so that the clean series is clean, and
generated low-count weekly-seasonal negative-binomial series (mean 0.5 to 20 per hour).
Injections, one per run: a burst of 3x, 5x or 9x the baseline lasting 3 or 6 hours (real
series: the observed counts multiplied; generated: (m - 1) x the true mean added as Poisson
extra posts), or a +100% step that persists. Each series gets several start times (after four
weeks of history, at random hours, away from NAB's labelled windows). A detection is an alert
opening within 24 hours of the start.

Budget: one false alarm per series per four weeks, measured on the clean series. "fixed" sets
each detector's threshold per series so that the clean series gets at most that (the issue's
protocol: every detector at the same false-alarm rate); "deployed" calibrates from the past
only, as production does (`open_alerts`: expanding-window calibration, cooldown, soft cap).
"truth" scores the generated series with their true mean and dispersion (the same 1/3/6/24 h
NB windows): a ceiling no detector that must estimate the baseline can pass.

Run: .venv/bin/python -m bench.injected_eval [--positions 4] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trends.backtest import read_series  # noqa: E402
from trends.spikes import (  # noqa: E402
    Detector,
    DetectorParams,
    alert_starts,
    calibrate_threshold,
    open_alerts,
)

BUDGET = 1.0  # alerts per series per 28 days
DETECT_HOURS = 24
# Bursts last 3 or 6 hours: "3x/3h" is three times the baseline for three hours.
KINDS = (
    "3x/3h",
    "5x/3h",
    "9x/3h",
    "3x/6h",
    "5x/6h",
    "9x/6h",
    "step+100%",
)
GEN_MEANS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
GEN_WEEKS = 10
GEN_ALPHA = 0.3  # hourly NB dispersion of the generated series
HOUR = np.timedelta64(3600, "s")
LN10 = math.log(10.0)


def nab_hourly(nab: Path) -> list[dict]:
    """NAB realTweets series summed to UTC hours, with labelled windows as hour indices."""
    labels = json.loads((nab / "labels" / "combined_windows.json").read_text())
    out = []
    for path in sorted((nab / "data" / "realTweets").glob("*.csv")):
        stamps, values = read_series(path)
        ts = np.array([s.replace(" ", "T") for s in stamps], dtype="datetime64[s]")
        hours = ts.astype("datetime64[h]")
        h0 = hours.min()
        idx = (hours - h0).astype(np.int64)
        y = np.bincount(idx, np.asarray(values), int(idx.max()) + 1)
        # Drop the partial first and last hours.
        y, start = y[1:-1], h0 + 1
        grid = start + np.arange(y.size).astype("timedelta64[h]")
        wins = []
        for lo, hi in labels[f"realTweets/{path.name}"]:
            a = np.datetime64(lo.split(".")[0].replace(" ", "T"), "h")
            b = np.datetime64(hi.split(".")[0].replace(" ", "T"), "h")
            wins.append((int((a - start) / HOUR), int((b - start) / HOUR)))
        # NAB's labelled anomalies are blanked (coverage gaps): the clean series must be clean,
        # or the real incidents would use up the budget that measures false alarms.
        y = y.astype(np.float64)
        for a_i, b_i in wins:
            y[max(0, a_i) : b_i + 1] = np.nan
        out.append(
            {
                "name": path.stem.replace("Twitter_volume_", "nab_"),
                "ts": grid,
                "y": y,
                "mu": None,
                "windows": wins,
            }
        )
    return out


def generated(rng: np.random.Generator) -> list[dict]:
    """Weekly-seasonal NB series: diurnal cycle, weekday/weekend levels, a Monday bump."""
    n = GEN_WEEKS * 7 * 24
    start = np.datetime64("2026-01-05T00", "h")  # a Monday
    t = np.arange(n)
    hod, dow = t % 24, (t // 24) % 7
    diurnal = 1.0 + 0.7 * np.sin(2 * np.pi * (hod - 9) / 24)
    weekly = np.array([1.4, 1.1, 1.0, 1.0, 1.0, 0.6, 0.6])[dow]
    shape = diurnal * weekly
    shape /= shape.mean()
    out = []
    for mean in GEN_MEANS:
        for rep in range(3):
            mu = mean * shape
            out.append(
                {
                    "name": f"gen_mean{mean:g}_{rep}",
                    "ts": start + t.astype("timedelta64[h]"),
                    "y": nb_draw(rng, mu),
                    "mu": mu,
                    "windows": [],
                }
            )
    return out


def nb_draw(rng: np.random.Generator, mu: np.ndarray, alpha: float = GEN_ALPHA) -> np.ndarray:
    """Negative-binomial counts of mean ``mu`` and dispersion ``alpha`` (a gamma-Poisson draw)."""
    lam = rng.gamma(1.0 / alpha, alpha * mu)
    return rng.poisson(lam).astype(np.float64)


def gen_mean(s: dict) -> float:
    return float(s["name"].split("mean")[1].split("_")[0])


def inject(s: dict, kind: str, at: int, rng: np.random.Generator) -> np.ndarray:
    y = s["y"].copy()
    if not kind.startswith("step"):
        mult, length = kind.split("/")
        m = float(mult[:-1])
        seg = slice(at, at + int(length[:-1]))
    else:
        m, seg = 2.0, slice(at, y.size)
    if s["mu"] is None:
        y[seg] = np.round(y[seg] * m)
    else:
        # (m - 1) x the baseline in extra posts on top of the ordinary ones.
        y[seg] = y[seg] + rng.poisson(s["mu"][seg] * (m - 1.0))
    return y


def zscore_scores(y: np.ndarray, window: int = 168) -> np.ndarray:
    """Plain rolling z-score of each hour against the previous week (past only)."""
    ok = np.isfinite(y)
    y0 = np.where(ok, y, 0.0)
    cs = np.concatenate([[0.0], np.cumsum(y0)])
    cs2 = np.concatenate([[0.0], np.cumsum(y0 * y0)])
    cn = np.concatenate([[0], np.cumsum(ok)])
    out = np.full(y.size, np.nan)
    for t in range(24, y.size):
        lo = max(0, t - window)
        k = cn[t] - cn[lo]  # gaps (blanked NAB windows) are left out
        if k < 24 or not ok[t]:
            continue
        mean = (cs[t] - cs[lo]) / k
        var = max((cs2[t] - cs2[lo]) / k - mean * mean, 0.0)
        out[t] = (y[t] - mean) / max(math.sqrt(var), 0.5)
    return out


PARAMS = DetectorParams(granularity="hour", budget=BUDGET)
Z_PARAMS = DetectorParams(granularity="hour", budget=BUDGET, min_score=3.0)


def configure(**overrides: object) -> None:
    """Apply the same alerting settings (calibration, cap) to both detectors."""
    global PARAMS, Z_PARAMS  # noqa: PLW0603
    PARAMS = replace(PARAMS, **overrides)  # type: ignore[arg-type]
    Z_PARAMS = replace(Z_PARAMS, **overrides)  # type: ignore[arg-type]


def run_ours(s: dict, y: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Deployed alerts (calibrated from the past) and the score column."""
    rows = Detector(PARAMS).run(s["ts"], y)
    return [i for i, r in enumerate(rows) if r.alert is not None], np.array([r.score for r in rows])


def run_z(s: dict, y: np.ndarray) -> tuple[list[int], np.ndarray]:
    scores = zscore_scores(y)
    return open_alerts(scores, params=Z_PARAMS)[0], scores


def truth_scores(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """-log10 NB tail of windows of 1, 3, 6 and 24 hours under the true mean and dispersion."""
    best = np.zeros(y.size)
    for w in (1, 3, 6, 24):
        s = _sums(y, w)
        m = _sums(mu, w)
        a = GEN_ALPHA * _sums(mu * mu, w) / np.where(m > 0, m * m, 1.0)
        ok = np.isfinite(s) & (s > m) & (m > 0)
        lp = np.zeros(y.size)
        lp[ok] = -stats.nbinom.logsf(s[ok] - 1, 1.0 / a[ok], 1.0 / (1.0 + a[ok] * m[ok])) / LN10
        best = np.maximum(best, lp)
    return best


def _sums(x: np.ndarray, w: int) -> np.ndarray:
    cs = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(x.size, np.nan)
    out[w - 1 :] = cs[w:] - cs[:-w]
    return out


def run_truth(s: dict, y: np.ndarray) -> tuple[list[int], np.ndarray]:
    """A reference that knows the generated series' true mean and dispersion (a ceiling)."""
    scores = truth_scores(y, s["mu"])
    return open_alerts(scores, params=PARAMS)[0], scores


DETECTORS = {"ours": run_ours, "zscore": run_z, "truth": run_truth}


def oracle_threshold(s: dict, scores: np.ndarray, cooldown: int) -> float:
    """Lowest threshold giving at most one false alarm per four weeks on the clean series."""
    sc = scores.copy()
    for a, b in s["windows"]:
        sc[max(0, a) : b + 1] = np.nan  # NAB's labelled anomalies (blanked anyway)
    # Candidates above zero: a threshold at 0 would make the whole quiet series one incident.
    return calibrate_threshold(
        sc,
        budget=BUDGET,
        bucket_seconds=3600,
        cooldown_buckets=cooldown,
        min_score=1e-6,
        method="rank",
    )


def in_windows(i: int, wins: list[tuple[int, int]]) -> bool:
    return any(a <= i <= b for a, b in wins)


def positions(s: dict, k: int, rng: np.random.Generator) -> list[int]:
    n = s["y"].size
    lo, hi = 28 * 24, n - 2 * 24
    out: list[int] = []
    for _ in range(2000):
        if len(out) == k:
            break
        at = int(rng.integers(lo, hi))
        if any(a - 48 <= at <= b + 24 for a, b in s["windows"]) or any(
            abs(at - o) < 72 for o in out
        ):
            continue
        out.append(at)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab-dir", default=str(ROOT.parent / "shared" / "data" / "nab"))
    ap.add_argument("--positions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    ap.add_argument("--calibration", default=None, choices=["tail", "rank"])
    ap.add_argument("--cap", default=None, choices=["none", "soft", "hard"])
    ap.add_argument("--cooldown-hours", type=float, default=None)
    args = ap.parse_args()
    overrides: dict[str, object] = {
        k: v for k, v in (("calibration", args.calibration), ("cap", args.cap)) if v
    }
    if args.cooldown_hours is not None:
        overrides["cooldown"] = timedelta(hours=args.cooldown_hours)
    configure(**overrides)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    series = nab_hourly(Path(args.nab_dir)) + generated(rng)
    # (family, kind, detector, mode) -> delay in hours, nan when missed within 24 h
    hits: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    fa: dict[tuple[str, str], list[float]] = defaultdict(list)  # (family, detector) -> FA / 4 weeks
    by_mean: dict[tuple[float, str, str, str], list[float]] = defaultdict(list)
    cooldown = PARAMS.resolved().cooldown_buckets
    for s in series:
        family = "nab" if s["mu"] is None else ("gen_low" if gen_mean(s) <= 2 else "gen_high")
        weeks4 = s["y"].size / (28 * 24)
        oracle = {}
        for det, fn in DETECTORS.items():
            if det == "truth" and s["mu"] is None:
                continue  # no known truth for the real series
            alerts, scores = fn(s, s["y"])
            fa[(family, det)].append(sum(not in_windows(a, s["windows"]) for a in alerts) / weeks4)
            oracle[det] = oracle_threshold(s, scores, cooldown)
        for kind in KINDS:
            for at in positions(s, args.positions, rng):
                y = inject(s, kind, at, rng)
                for det, fn in DETECTORS.items():
                    if det not in oracle:
                        continue
                    alerts, scores = fn(s, y)
                    fixed = alert_starts(scores, oracle[det], cooldown)
                    for mode, found_in in (("deployed", alerts), ("fixed", fixed)):
                        found = [a for a in found_in if at <= a < at + DETECT_HOURS]
                        delay = float(found[0] - at) if found else math.nan
                        hits[(family, kind, det, mode)].append(delay)
                        if s["mu"] is not None:
                            by_mean[(gen_mean(s), kind, det, mode)].append(delay)
    results: dict[str, dict] = {}
    print(
        f"{len(series)} series, {time.perf_counter() - t0:.0f}s; "
        f"budget {BUDGET:g} false alarm/series/28 days; {overrides}"
    )
    for mode, what in (
        (
            "fixed",
            "per series, the threshold giving <= 1 false alarm per 4 weeks on the clean series",
        ),
        ("deployed", "thresholds calibrated from the past (expanding window), as in production"),
    ):
        print(f"\n{mode}: {what}; recall within 24 h, median delay in hours")
        head = f"{'family':9} {'injection':10}"
        for det in DETECTORS:
            head += f" {det:>7} {'delay':>5}"
        print(head + f" {'n':>4}")
        for family in ("nab", "gen_low", "gen_high", "all"):
            for kind in KINDS:
                row = results.setdefault(f"{family}/{kind}", {})
                line = f"{family:9} {kind:10}"
                for det in DETECTORS:
                    vals = [
                        v
                        for (f, k, d, m), vs in hits.items()
                        if k == kind and d == det and m == mode and family in (f, "all")
                        for v in vs
                    ]
                    arr = np.array(vals)
                    found = arr[np.isfinite(arr)]
                    cell = {
                        "recall": round(float(found.size / arr.size), 3) if arr.size else math.nan,
                        "median_delay_h": float(np.median(found)) if found.size else math.nan,
                        "n": int(arr.size),
                    }
                    row[f"{det}/{mode}"] = cell
                    line += f" {cell['recall']:7.2f} {cell['median_delay_h']:5.1f}"
                print(line + f" {row[f'ours/{mode}']['n']:4d}")
    print("\ndeployed false alarms per series per 4 weeks (clean series):")
    for family in ("nab", "gen_low", "gen_high", "all"):
        cells = []
        for det in DETECTORS:
            vals = [v for (f, d), vs in fa.items() if d == det and family in (f, "all") for v in vs]
            rate = float(np.mean(vals)) if vals else math.nan
            results[f"{family}/false_alarms_per_4_weeks/{det}"] = {"mean": round(rate, 3)}
            cells.append(f"{det} {rate:.2f}")
        print(f"  {family:9} " + ", ".join(cells))
    # Recall on the generated series by mean level: ours against the known-truth ceiling.
    print("\ngenerated series by mean count per hour, 5x bursts (fixed / deployed):")
    for mean in GEN_MEANS:
        cells = []
        for kind in ("5x/3h", "5x/6h"):
            for det in DETECTORS:
                recs = []
                for mode in ("fixed", "deployed"):
                    arr = np.array(by_mean[(mean, kind, det, mode)])
                    rec = float(np.isfinite(arr).mean()) if arr.size else math.nan
                    results.setdefault(f"gen_mean{mean:g}/{kind}", {})[f"{det}/{mode}"] = round(
                        rec, 3
                    )
                    recs.append(f"{rec:.2f}")
                cells.append(f"{kind} {det} {'/'.join(recs)}")
        print(f"  mean {mean:g}: " + ", ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
