"""What the slow-rise arm (weekly digest) adds to the paging arm, on daily series.

Series: generated weekly-seasonal negative-binomial daily counts (weekday/weekend levels; mean
5, 20 and 100 a day; alpha 0.1, 0.2, 0.3 per day; GEN_WEEKS weeks, GEN_REPS draws each) and the
ten NAB realTweets series summed to UTC days (53-54 whole days; NAB's labelled windows blanked,
a day with a blanked hour is a gap, as `rule_series` makes it).

The digest's question, asked at a week-end W (a Monday 00:00 UTC, index of the first day not
seen): run the daily Detector on the last SLOW_RISE_WEEKS weeks before W (fewer when the series
is shorter) and read `slow_rise(rows).tripped`. Nothing after W is used.

- False trips: the question at every week-end with at least one scored week (W >= 28 days) on
  the clean series; weeks tripped / weeks asked, times 52 = trips per series-year. The paging
  arm's false alarms: alerts opened on the whole clean series per scored year.
- Detection: one injection per run, multiplicative on the mean from day `at` (generated: the
  extra (f - 1) x true mean drawn as Poisson posts; NAB: the counts multiplied). Ramps rise for
  21 days then hold; steps persist; the 9x day is one day. Slow arm: tripped at the first
  week-end on or after at + 7, 14, 21 days (the digest that would report it). Paging arm: an
  alert (row.alert) opening in [at, at + 21) with DetectorParams(granularity="day") defaults,
  over the whole series (each row sees only its past). "paging, clean": the same test on the
  clean series (chance); "slow only": some digest (7/14/21 d) reports it and no page opened.

Run: .venv/bin/python -m bench.slow_rise_eval [--seed 7]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.injected_eval import ROOT, nab_hourly, nb_draw
from trends.report import SLOW_RISE_WEEKS
from trends.spikes import SLOW_H, Detector, DetectorParams, SlowRise, slow_rise

DAY = DetectorParams(granularity="day")
GEN_MEANS = (5.0, 20.0, 100.0)
GEN_ALPHAS = (0.1, 0.2, 0.3)
GEN_REPS = 3
GEN_WEEKS = 52
POSITIONS = 4  # injection start days per series and kind
WARMUP_DAYS = int(DAY.resolved().warmup_days or 0)  # 21: no expected count before
FIRST_ASK = WARMUP_DAYS + 7  # the first week-end with one scored week
CHECKS = (7, 14, 21)
KINDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ramp +3%/day, 3 weeks": lambda k: 1.03 ** np.minimum(k + 1, 21),
    "ramp +6%/day, 3 weeks": lambda k: 1.06 ** np.minimum(k + 1, 21),
    "step +50%": lambda k: np.full(k.size, 1.5),
    "step +100%": lambda k: np.full(k.size, 2.0),
    "one day 9x": lambda k: np.where(k == 0, 9.0, 1.0),
}


def nab_daily(nab: Path) -> list[dict]:
    """NAB hourly series (labelled windows blanked) summed to whole UTC days."""
    out = []
    for s in nab_hourly(nab):
        day = s["ts"].astype("datetime64[D]")
        days, hours = np.unique(day, return_counts=True)
        whole = days[hours == 24]
        keep = (day >= whole[0]) & (day <= whole[-1])
        y = s["y"][keep].reshape(-1, 24).sum(axis=1)  # NaN when any hour is blanked
        out.append({"name": s["name"], "family": "NAB", "start": whole[0], "y": y, "mu": None})
    return out


def generated(rng: np.random.Generator) -> list[dict]:
    """Daily NB series with weekday/weekend levels, starting on a Monday."""
    n = GEN_WEEKS * 7
    weekly = np.array([1.15, 1.15, 1.15, 1.15, 1.15, 0.6, 0.6])[np.arange(n) % 7]
    weekly /= weekly.mean()
    out = []
    for mean in GEN_MEANS:
        for alpha in GEN_ALPHAS:
            for rep in range(GEN_REPS):
                mu = mean * weekly
                y = nb_draw(rng, mu, alpha)
                out.append(
                    {
                        "name": f"gen_mean{mean:g}_a{alpha:g}_{rep}",
                        "family": f"generated, {mean:g}/day",
                        "start": np.datetime64("2026-01-05", "D"),
                        "y": y,
                        "mu": mu,
                    }
                )
    return out


def week_ends(s: dict) -> list[int]:
    """Indices W >= FIRST_ASK where day W is a Monday (the digest sees days before W)."""
    monday = (s["start"].astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    first = (-monday) % 7
    return [w for w in range(int(first), s["y"].size + 1, 7) if w >= FIRST_ASK]


def digest(s: dict, y: np.ndarray, end: int) -> SlowRise:
    """The weekly digest's slow-rise arm at week-end ``end``: last SLOW_RISE_WEEKS weeks only."""
    lo = max(0, end - 7 * SLOW_RISE_WEEKS)
    ts = s["start"] + np.arange(lo, end)
    return slow_rise(Detector(DAY).run(ts, y[lo:end]))


def page_alerts(s: dict, y: np.ndarray) -> list[int]:
    """Days where the paging arm opens an alert (whole series, past-only per row)."""
    rows = Detector(DAY).run(s["start"] + np.arange(y.size), y)
    return [i for i, r in enumerate(rows) if r.alert is not None]


def inject(s: dict, kind: str, at: int, rng: np.random.Generator) -> np.ndarray:
    f = np.ones(s["y"].size)
    f[at:] = KINDS[kind](np.arange(f.size - at))
    if s["mu"] is None:
        return np.round(s["y"] * f)
    return s["y"] + rng.poisson(s["mu"] * (f - 1.0))


def positions(s: dict, rng: np.random.Generator) -> list[int]:
    """Start days with a full digest window behind them (generated) or after the warm-up (NAB),
    whose 21-day digest exists and whose first week has no gap."""
    ends = week_ends(s)
    lo = 7 * SLOW_RISE_WEEKS if s["mu"] is not None else WARMUP_DAYS
    ok = [
        at
        for at in range(lo, s["y"].size)
        if ends and ends[-1] >= at + CHECKS[-1] and np.isfinite(s["y"][at : at + 7]).all()
    ]
    return sorted(rng.choice(ok, size=min(POSITIONS, len(ok)), replace=False).tolist())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab-dir", default=str(ROOT.parent / "shared" / "data" / "nab"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    series = generated(rng) + nab_daily(Path(args.nab_dir))
    asked: dict[str, list[float]] = defaultdict(list)  # family -> clean CUSUM at week-ends
    pages: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # family -> alerts, scored days
    # (family, kind) -> per injection: slow @7/14/21, paged, paged on the clean series (chance)
    found: dict[tuple[str, str], list[list[bool]]] = defaultdict(list)
    for s in series:
        fam = s["family"]
        ends = week_ends(s)
        asked[fam] += [digest(s, s["y"], w).statistic for w in ends]
        clean = page_alerts(s, s["y"])
        pages[fam][0] += len(clean)
        pages[fam][1] += s["y"].size - WARMUP_DAYS
        for kind in KINDS:
            for at in positions(s, rng):
                y = inject(s, kind, at, rng)
                slow = [digest(s, y, next(w for w in ends if w >= at + d)).tripped for d in CHECKS]
                paged = [
                    any(at <= a < at + CHECKS[-1] for a in p) for p in (page_alerts(s, y), clean)
                ]
                found[(fam, kind)].append(slow + paged)
    families = list(dict.fromkeys(s["family"] for s in series))
    print(f"{len(series)} series, seed {args.seed}, {time.perf_counter() - t0:.0f}s\n")
    print(
        "| series | weeks asked | slow trips | trips / series-year | CUSUM p50 / p99 / max "
        "| pages / series-year |"
    )
    print("|---|---|---|---|---|---|")
    for fam in families:
        stat = np.array(asked[fam])
        trips = int((stat >= SLOW_H).sum())
        q = " / ".join(f"{v:.1f}" for v in np.quantile(stat, [0.5, 0.99, 1.0]))
        alerts, days = pages[fam]
        print(
            f"| {fam} | {stat.size} | {trips} | {52 * trips / stat.size:.2f} | {q} "
            f"| {365 * alerts / days:.2f} |"
        )
    print(
        "\n| series | injection | slow @7 d | slow @14 d | slow @21 d | paging <21 d "
        "| paging <21 d, clean | slow only | n |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fam in families:
        for kind in KINDS:
            hits = np.array(found[(fam, kind)], dtype=float)
            slow_only = (hits[:, :3].any(axis=1) & ~hits[:, 3].astype(bool)).mean()
            cells = " | ".join(f"{v:.2f}" for v in [*hits.mean(axis=0), slow_only])
            print(f"| {fam} | {kind} | {cells} | {len(hits)} |")


if __name__ == "__main__":
    main()
