"""Backtest the spike detector over a `timestamp,value` CSV (the `alerts backtest` contract)."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.timeparse import read_time
from trends.spikes import (
    BUCKET_SECONDS,
    BUDGET_DAYS,
    Detector,
    DetectorParams,
    Granularity,
    RowResult,
)

OUT_HEADER = ("timestamp", "value", "expected", "score", "alert")
# One alert a week per series at most (hard cap): the setting that beats Twitter ADVec on NAB's
# realTweets (bench/results/spikes.md). Live rules default to 2 with a soft cap.
BACKTEST_BUDGET = 4.0


def parse_times(stamps: list[str], where: str | Path = "") -> list[datetime]:
    """Every row's time; a ValueError names the first row (1 = the first after the header)."""
    out = []
    for n, stamp in enumerate(stamps, start=1):
        try:
            out.append(read_time(stamp))
        except ValueError:
            raise ValueError(
                f"{where}: row {n}: timestamp {stamp!r} is not ISO 8601 "
                "(2015-02-26 21:42:53, 2015-02-26T21:42:53Z) nor Unix epoch seconds"
            ) from None
    return out


def infer_granularity(times: list[datetime]) -> Granularity:
    """The finest granularity that holds the series' usual spacing (median step)."""
    ts = np.array([int(t.timestamp()) for t in times], dtype=np.int64)
    if ts.size < 2:
        return "hour"
    step = float(np.median(np.diff(np.sort(ts))))
    for g in ("5min", "hour", "day"):
        if step <= BUCKET_SECONDS[g]:
            return g  # type: ignore[return-value]
    return "day"


def read_series(path: str | Path) -> tuple[list[str], list[float]]:
    """Timestamps (as written) and values of a CSV with a `timestamp,value` header."""
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark before the header.
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if not {"timestamp", "value"} <= set(header):
            raise ValueError(f"{path}: header must be timestamp,value")
        at, av = header.index("timestamp"), header.index("value")
        stamps, values = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line (a trailing one, say) is no row
            if len(row) <= max(at, av):
                raise ValueError(f"{path}:{reader.line_num}: expected timestamp,value, got {row}")
            stamps.append(row[at])
            raw = row[av].strip()
            try:
                values.append(float(raw) if raw else math.nan)
            except ValueError:
                raise ValueError(
                    f"{path}:{reader.line_num}: value {raw!r} is not a number"
                ) from None
    return stamps, values


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.6g}"


def write_results(path: str | Path, stamps: list[str], rows: list[RowResult]) -> None:
    """One output row per input row; alert is 1 where an alert opens."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(OUT_HEADER)
        for stamp, r in zip(stamps, rows, strict=True):
            value = int(r.value) if r.value.is_integer() else r.value
            score = r.score if math.isfinite(r.score) else 0.0
            w.writerow([stamp, value, _fmt(r.expected), f"{score:.4f}", r.alert_flag])


def run_backtest(
    in_path: str | Path,
    out_path: str | Path,
    *,
    granularity: Granularity | Literal["auto"] = "auto",
    budget: float = BACKTEST_BUDGET,
    params: DetectorParams | None = None,
) -> dict[str, Any]:
    """Run the detector over a series CSV, write OUT.csv and return a summary.

    A backtest holds to its budget strictly: at most ``budget`` alerts in any 28 days.
    """
    stamps, values = read_series(in_path)
    times = parse_times(stamps, in_path)
    if granularity == "auto":
        granularity = infer_granularity(times)
    p = replace(params or DetectorParams(cap="hard"), granularity=granularity, budget=budget)
    rows = Detector(p).run(times, values)
    write_results(out_path, stamps, rows)
    alerts = [r.alert for r in rows if r.alert is not None]
    opened = [a.timestamp for a in alerts]
    window = timedelta(days=BUDGET_DAYS)
    most = max((sum(1 for b in opened if a - window < b <= a) for a in opened), default=0)
    days = 0.0
    if len(rows) > 1:
        days = (rows[-1].timestamp - rows[0].timestamp).total_seconds() / 86400.0
    return {
        "rows": len(rows),
        "days": round(days, 2),
        "granularity": granularity,
        "budget": budget,
        "alerts": len(alerts),
        "alerts_per_28_days": round(len(alerts) * BUDGET_DAYS / days, 3) if days > 0 else 0.0,
        "max_alerts_any_28_days": most,
        "alert_list": [
            {
                "timestamp": a.timestamp.isoformat(),
                "window_start": a.window_start.isoformat(),
                "window_buckets": a.window_buckets,
                "observed": a.observed,
                "expected": round(a.expected, 3),
                "tail_p": a.tail_p,
                "score": round(a.score, 3),
                "threshold": round(a.threshold, 3),
            }
            for a in alerts
        ],
    }
