"""Score the spike detector on NAB's ten realTweets series with NAB's scoring rules.

The scorer follows NAB's documentation and sweeper: a window per labelled anomaly; inside a
window only the earliest detection counts, weighted by a scaled sigmoid of its position
(earliest = A_TP); a missed window costs A_FN; each detection outside windows costs A_FP
times a scaled sigmoid of its distance past the previous window (the full A_FP before any
window or more than three window widths after one); the first 15% of each file (at most 750
rows) is probationary and not scored. Raw scores are summed over the files and normalized to
0-100 between the null detector (no detections: -A_FN per window) and the perfect one (every
window at its first row: +A_TP per window).

The first row is what `undertow alerts backtest SERIES.csv -o OUT.csv` writes with its default
settings (granularity from the spacing, budget 4 with a hard cap), read back from OUT.csv; the
budget sweep after it is for context.

Run: .venv/bin/python -m bench.nab_eval [--budgets 1,2,4] [--cap soft|hard|none] [--nab-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trends.backtest import read_series, run_backtest  # noqa: E402
from trends.spikes import Detector, DetectorParams  # noqa: E402

PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
PUBLISHED = {  # design.md: NAB's committed results on these ten series
    "ARTime": (81.8, 70.1, 87.9),
    "HTM": (68.0, 61.1, 72.6),
    "Twitter ADVec": (59.6, 35.8, 69.0),
    "windowed Gaussian": (51.4, None, None),
}


def scaled_sigmoid(pos: np.ndarray) -> np.ndarray:
    """NAB's scaled sigmoid: 2*sigmoid(-5x) - 1, and -1 beyond x > 3."""
    val = 2.0 / (1.0 + np.exp(5.0 * pos)) - 1.0
    return np.where(pos > 3.0, -1.0, val)


@dataclass
class NabFile:
    name: str
    n: int
    windows: list[tuple[int, int]]  # inclusive row indices
    window_id: np.ndarray  # -1 outside windows
    tp_weight: np.ndarray  # unweighted scaled-sigmoid score inside windows
    fp_weight: np.ndarray  # unweighted (negative) score outside windows
    scorable: np.ndarray  # past the probationary period


def prepare(name: str, stamps: list[str], windows: list[list[str]]) -> NabFile:
    ts = np.array([s.replace(" ", "T") for s in stamps], dtype="datetime64[s]")
    n = ts.size
    idx = []
    for lo, hi in windows:
        a = int(np.searchsorted(ts, np.datetime64(lo.split(".")[0].replace(" ", "T"), "s")))
        b = (
            int(
                np.searchsorted(ts, np.datetime64(hi.split(".")[0].replace(" ", "T"), "s"), "right")
            )
            - 1
        )
        idx.append((a, min(b, n - 1)))
    window_id = np.full(n, -1)
    tp_w = np.zeros(n)
    fp_w = np.full(n, -1.0)
    max_tp = float(scaled_sigmoid(np.array([-1.0]))[0])
    i = np.arange(n)
    prev_right, prev_width = None, None
    for k, (a, b) in enumerate(idx):
        width = float(b - a + 1)
        seg = slice(a, b + 1)
        window_id[seg] = k
        tp_w[seg] = scaled_sigmoid(-(b - i[seg] + 1) / width) / max_tp
        nxt = idx[k + 1][0] if k + 1 < len(idx) else n
        after = slice(b + 1, nxt)
        fp_w[after] = scaled_sigmoid(np.abs(b - i[after]) / (width - 1.0))
        prev_right, prev_width = b, width
    del prev_right, prev_width
    probation = min(math.floor(0.15 * n), int(0.15 * 5000))
    return NabFile(name, n, idx, window_id, tp_w, fp_w, i >= probation)


def raw_score(f: NabFile, det: np.ndarray, prof: dict[str, float]) -> tuple[float, int, int, int]:
    """NAB raw score of boolean detections for one file: (score, tp, fp, fn)."""
    d = det & f.scorable
    score, tp, fn = 0.0, 0, 0
    for k in range(len(f.windows)):
        hits = np.flatnonzero(d & (f.window_id == k))
        if hits.size:
            score += prof["tp"] * float(f.tp_weight[hits].max())
            tp += 1
        else:
            score -= prof["fn"]
            fn += 1
    out = d & (f.window_id < 0)
    score += prof["fp"] * float(f.fp_weight[out].sum())
    return score, tp, int(out.sum()), fn


def normalized(raws: float, n_windows: int, prof: dict[str, float]) -> float:
    null, perfect = -prof["fn"] * n_windows, prof["tp"] * n_windows
    return 100.0 * (raws - null) / (perfect - null)


def sweep(cols: dict[str, np.ndarray], prepared: dict[str, NabFile]) -> dict[str, dict[str, float]]:
    """Best single threshold over all series, per profile, as NAB's optimizer picks it."""
    pooled = np.concatenate(list(cols.values()))
    cands = np.unique(np.quantile(pooled[pooled > 0], np.linspace(0.5, 1.0, 400)))
    n_windows = sum(len(f.windows) for f in prepared.values())
    best = {}
    for pname, prof in PROFILES.items():
        top = (-math.inf, 0.0)
        for thr in cands:
            tot = sum(raw_score(prepared[n], cols[n] >= thr, prof)[0] for n in cols)
            if tot > top[0]:
                top = (tot, float(thr))
        best[pname] = {
            "score": round(normalized(top[0], n_windows, prof), 1),
            "threshold": round(top[1], 3),
        }
    return best


def summarize(
    dets: dict[str, np.ndarray], series: dict, prepared: dict[str, NabFile]
) -> dict[str, Any]:
    """NAB scores of boolean detections per file, with alert and false-alarm rates."""
    n_windows = sum(len(f.windows) for f in prepared.values())
    totals = {p: 0.0 for p in PROFILES}
    counts = {"tp": 0, "fp": 0, "fn": 0, "alerts": 0}
    weeks, max28 = 0.0, 0
    per_series: dict[str, dict[str, int]] = {}
    for name, det in dets.items():
        f = prepared[name]
        for pname, prof in PROFILES.items():
            s, tp, fp, fn = raw_score(f, det, prof)
            totals[pname] += s
            if pname == "standard":
                counts["tp"] += tp
                counts["fp"] += fp
                counts["fn"] += fn
                per_series[name] = {"alerts": int(det.sum()), "tp": tp, "fp": fp, "fn": fn}
        counts["alerts"] += int(det.sum())
        hits = np.flatnonzero(det)
        max28 = max([max28, *(int(np.sum((hits > i - 28 * 288) & (hits <= i))) for i in hits)])
        stamps = series[name][0]
        span = np.datetime64(stamps[-1].replace(" ", "T")) - np.datetime64(
            stamps[0].replace(" ", "T")
        )
        weeks += float(span / np.timedelta64(1, "s")) / (7 * 86400)
    return {
        "deployed": {p: round(normalized(totals[p], n_windows, PROFILES[p]), 1) for p in PROFILES},
        "counts": counts,
        "alerts_per_series_week": round(counts["alerts"] / weeks, 3),
        "fp_per_series_week": round(counts["fp"] / weeks, 3),
        "max_alerts_any_28_days": max28,
        "per_series": per_series,
    }


def cli_defaults(files: list[Path], series: dict, prepared: dict[str, NabFile]) -> dict:
    """`undertow alerts backtest` with its default settings, scored from OUT.csv."""
    t0 = time.perf_counter()
    dets, cols = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            out = Path(tmp) / path.name
            summary = run_backtest(path, out)
            with open(out, newline="") as fh:
                rows = list(csv.DictReader(fh))
            dets[path.name] = np.array([r["alert"] == "1" for r in rows])
            cols[path.name] = np.array([float(r["score"]) for r in rows])
    res = summarize(dets, series, prepared)
    res["settings"] = {"granularity": summary["granularity"], "budget": summary["budget"]}
    res["best_threshold"] = sweep(cols, prepared)
    print(
        f"undertow alerts backtest defaults ({res['settings']}, hard cap): NAB {res['deployed']} | "
        f"windows hit {res['counts']['tp']}/{sum(len(f.windows) for f in prepared.values())}, "
        f"alerts {res['counts']['alerts']} ({res['alerts_per_series_week']}/series/week), "
        f"outside windows {res['counts']['fp']} ({res['fp_per_series_week']}/series/week), "
        f"most in any 28 days {res['max_alerts_any_28_days']} [{time.perf_counter() - t0:.0f}s]"
    )
    print(f"  score column, best single threshold: {res['best_threshold']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab-dir", default=str(ROOT.parent / "shared" / "data" / "nab"))
    ap.add_argument("--budgets", default="1,2,4")
    ap.add_argument("--json", default=None, help="write all numbers here")
    ap.add_argument("--cap", default="soft", choices=["none", "soft", "hard"])
    args = ap.parse_args()
    nab = Path(args.nab_dir)
    labels = json.loads((nab / "labels" / "combined_windows.json").read_text())
    files = sorted((nab / "data" / "realTweets").glob("*.csv"))
    series, prepared = {}, {}
    for path in files:
        stamps, values = read_series(path)
        series[path.name] = (stamps, values)
        prepared[path.name] = prepare(path.name, stamps, labels[f"realTweets/{path.name}"])
    n_windows = sum(len(f.windows) for f in prepared.values())
    results: dict[str, object] = {"n_series": len(files), "n_windows": n_windows}
    print(f"{len(files)} series, {n_windows} windows")
    results["cli_defaults"] = cli_defaults(files, series, prepared)

    for budget in [float(b) for b in args.budgets.split(",")]:
        t0 = time.perf_counter()
        dets: dict[str, np.ndarray] = {}
        score_cols: dict[str, np.ndarray] = {}
        ratio_cols: dict[str, np.ndarray] = {}
        for name, (stamps, values) in series.items():
            rows = Detector(DetectorParams(granularity="5min", budget=budget, cap=args.cap)).run(
                stamps, values
            )
            dets[name] = np.array([r.alert_flag == 1 for r in rows])
            score_cols[name] = np.nan_to_num(np.array([r.score for r in rows]), nan=0.0)
            # Per-series scale from the past only: the score over the threshold then in force.
            thr = np.array([r.threshold for r in rows])
            ratio_cols[name] = np.where(np.isfinite(thr) & (thr > 0), score_cols[name] / thr, 0.0)
        summary = summarize(dets, series, prepared)
        counts = summary["counts"]
        print(
            f"budget {budget:g} cap {args.cap}: deployed alerts NAB {summary['deployed']} | "
            f"windows hit {counts['tp']}/{n_windows}, alerts {counts['alerts']} "
            f"({summary['alerts_per_series_week']:.2f}/series/week), outside windows {counts['fp']} "
            f"({summary['fp_per_series_week']:.2f}/series/week), most in any 28 days "
            f"{summary['max_alerts_any_28_days']} [{time.perf_counter() - t0:.0f}s]"
        )
        # Score column at the best threshold per profile (NAB's sweep, one threshold for all
        # ten series), on the raw score and on score / threshold in force.
        best = {
            "score": sweep(score_cols, prepared),
            "score_over_threshold": sweep(ratio_cols, prepared),
        }
        print(f"budget {budget:g}: best threshold {best}")
        results[f"budget_{budget:g}"] = {**summary, "best_threshold": best}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
