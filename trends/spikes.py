"""Spike detection for small, overdispersed, weekly-seasonal counts.

Baseline: the expected count of a bucket is level x time-of-day x day-of-week. The seasonal
factors (empirical-Bayes shrunk, so a flat series gets a flat profile; hours of the day toward
their neighbours' pooled ratio, so thin data keeps the shape of the daily cycle) and the level
(an exponentially weighted ratio, half-life a few days) are built only from the past, from
values winsorized against the expected count of their own time, so old spikes do not inflate
them. At low counts a spike is a run of ordinary-looking 1s and 2s that winsorizing cannot
clip, so the buckets of an open incident (a clear excess over 2+ buckets) are left out of the
baseline and the dispersion altogether, for at most `incident_days` (then it is a new level).

Test: the observed sum over several windows ending at the newest bucket (1, 3, 6 buckets and a
day) against a negative-binomial upper tail, with the dispersion of each window length
estimated from past residuals (moments on winsorized residuals). A window counts only when its
excess is large enough (absolute and relative) and the newest bucket is itself above expected.
A persistence arm (hour and 5 minutes) asks instead whether each of the last 3 buckets is high:
a window sum cannot tell one huge bucket from a sustained rise, and real series are full of
single-bucket spikes that would otherwise set the budget threshold above every sustained burst.
The row's score is the largest -log10 tail probability.

Alerts: sensitivity is a budget of alerts per 28 days. Once a day the threshold is calibrated
on the past scores only (expanding window): "tail" fits an exponential tail to the largest past
incident peaks and places the threshold where it would be crossed `budget` times per 28 days;
"rank" takes the lowest threshold that would have opened at most floor(budget x days / 28)
alerts. Never below a significance floor, so a quiet, well-modelled series stays silent. One
alert per incident (a fresh crossing) and a cooldown; `cap="hard"` also refuses alerts beyond
the budget in any trailing 28 days.

Everything here is pure numpy/scipy: no database, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

Granularity = Literal["5min", "hour", "day"]
FloatArray = NDArray[np.float64]

BUCKET_SECONDS: dict[str, int] = {"5min": 300, "hour": 3600, "day": 86400}
BUDGET_DAYS = 28.0
_LN10 = math.log(10.0)
_MAX_SCORE = 1e4
_WINSOR_ALPHA = 2.5
_ALPHA_MIN = 0.005
_ALPHA_MAX = 50.0
_ALPHA_DEFAULT = 0.2

_DEFAULT_WINDOWS: dict[str, tuple[int, ...]] = {
    "5min": (1, 3, 6, 12, 72, 288),  # 5, 15, 30 min, 1 h, 6 h, a day
    "hour": (1, 3, 6, 24),
    "day": (1, 3, 7),
}
# Floors: about log10(tests per 28 days / 0.1), so a well-modelled null series stays quiet.
_DEFAULT_MIN_SCORE = {"5min": 5.0, "hour": 4.0, "day": 2.5}
_DEFAULT_WARMUP_DAYS = {"5min": 2.0, "hour": 3.0, "day": 21.0}
_DEFAULT_COOLDOWN = {
    "5min": timedelta(hours=24),
    "hour": timedelta(hours=24),
    "day": timedelta(days=3),
}
_DEFAULT_HALFLIFE_DAYS = {"5min": 3.0, "hour": 3.0, "day": 10.0}
_DEFAULT_PROFILE_DAYS = {"5min": 28.0, "hour": 28.0, "day": 84.0}
# Incident exclusion matters where counts are low (a spike there is a run of ordinary-looking
# 1s and 2s that winsorizing cannot catch). At 5 minutes (NAB's tweet volumes) the level must
# follow a new volume within hours: exclusion cost 7 NAB points there (bench/results/spikes.md).
_DEFAULT_EXCLUDE_Z = {"5min": math.inf, "hour": 4.0, "day": 4.0}
# Persistence arm (see _persistence_scores): a sustained burst scores on its own instead of
# competing, through window sums, with single-bucket spikes that a sum cannot tell apart from
# it (real tweet volumes hold many unlabelled one-hour 10-60x spikes; bench/results/spikes.md).
# Not measured on daily series, so off there.
_DEFAULT_PERSIST = {"5min": (3,), "hour": (3,), "day": ()}


@dataclass(frozen=True)
class DetectorParams:
    """Detector settings; None means the default for the granularity."""

    granularity: Granularity = "hour"
    budget: float = 2.0  # at most this many alerts per 28 days
    windows: tuple[int, ...] | None = None  # window lengths in buckets
    # Persistence windows: every one of the last w buckets above expected ("()": none).
    persist_windows: tuple[int, ...] | None = None
    min_excess_abs: float = 3.0  # observed - expected over the window, in counts
    min_excess_rel: float = 0.5  # observed >= (1 + rel) * expected over the window
    min_score: float | None = None  # -log10 p floor under the budget threshold
    cooldown: timedelta | None = None  # no new alert this soon after the last one
    warmup_days: float | None = None  # no scores before this much history
    level_halflife_days: float | None = None
    profile_days: float | None = None  # lookback of the seasonal profile and dispersion
    winsor_sd: float = 3.0  # past values are clipped to expected +- this many sd
    # A bucket inside an open incident (some window of 2+ buckets ending there holds a clear
    # excess: the minimum excess and z >= exclude_z) stays out of the baseline and the
    # dispersion, for at most incident_days; a longer rise is a new level and is learned.
    exclude_z: float | None = None
    incident_days: float = 2.0
    settle_days: float = 7.0  # until this much scored history, the floor is doubled
    # Once the trailing 28 days hold `budget` alerts: "soft" pages again only for a score above
    # all of them (the live rules), "hard" not at all (the backtest: at most `budget` alerts
    # in any 28 days), "none" ignores the count.
    cap: Literal["none", "soft", "hard"] = "soft"
    calibration: Literal["tail", "rank"] = "tail"

    @property
    def bucket_seconds(self) -> int:
        """Length of one bucket in seconds."""
        return BUCKET_SECONDS[self.granularity]

    @property
    def buckets_per_day(self) -> int:
        """Buckets in one day (1 for daily series)."""
        return max(1, 86400 // self.bucket_seconds)

    def resolved(self) -> DetectorParams:
        """A copy with every granularity default filled in."""
        g = self.granularity
        if g not in BUCKET_SECONDS:
            raise ValueError(f"unknown granularity {g!r}")
        if self.budget <= 0:
            raise ValueError("budget must be positive")
        return replace(
            self,
            windows=self.windows or _DEFAULT_WINDOWS[g],
            persist_windows=(
                _DEFAULT_PERSIST[g] if self.persist_windows is None else self.persist_windows
            ),
            min_score=_DEFAULT_MIN_SCORE[g] if self.min_score is None else self.min_score,
            cooldown=_DEFAULT_COOLDOWN[g] if self.cooldown is None else self.cooldown,
            warmup_days=_DEFAULT_WARMUP_DAYS[g] if self.warmup_days is None else self.warmup_days,
            level_halflife_days=self.level_halflife_days or _DEFAULT_HALFLIFE_DAYS[g],
            profile_days=self.profile_days or _DEFAULT_PROFILE_DAYS[g],
            exclude_z=_DEFAULT_EXCLUDE_Z[g] if self.exclude_z is None else self.exclude_z,
        )

    @property
    def cooldown_buckets(self) -> int:
        """Cooldown in buckets."""
        cd = self.cooldown if self.cooldown is not None else _DEFAULT_COOLDOWN[self.granularity]
        return max(1, math.ceil(cd.total_seconds() / self.bucket_seconds))

    @property
    def warmup_buckets(self) -> int:
        """Warm-up in buckets."""
        days = self.warmup_days
        if days is None:
            days = _DEFAULT_WARMUP_DAYS[self.granularity]
        return max(2, math.ceil(days * 86400 / self.bucket_seconds))


@dataclass(frozen=True)
class Alert:
    """Why an alert opened: the window, observed vs expected, the tail probability."""

    timestamp: datetime
    window_start: datetime
    window_buckets: int
    observed: float
    expected: float
    tail_p: float
    score: float
    threshold: float


@dataclass(frozen=True)
class RowResult:
    """Detector output for one input row."""

    timestamp: datetime
    value: float
    expected: float  # expected count of this bucket, from the past only (nan in warm-up)
    score: float  # max over windows of -log10 tail p (0 when no window passes the excess)
    threshold: float  # budget threshold in force for this row (inf before calibration)
    window_buckets: int  # window that gave the score (0 when none)
    tail_p: float
    alert: Alert | None  # set on the row where an alert opens

    @property
    def alert_flag(self) -> int:
        """1 where an alert opens, else 0."""
        return 0 if self.alert is None else 1


@dataclass
class _Scored:
    """Per-bucket arrays on the regular grid."""

    expected: FloatArray
    score: FloatArray
    window: NDArray[np.int64]
    observed_sum: FloatArray
    expected_sum: FloatArray
    log10_p: FloatArray


def _to_datetime64(timestamps: Sequence[datetime] | ArrayLike) -> NDArray[np.datetime64]:
    if isinstance(timestamps, np.ndarray) and np.issubdtype(timestamps.dtype, np.datetime64):
        return timestamps.astype("datetime64[s]")
    out: list[Any] = []
    for raw in timestamps:  # type: ignore[union-attr]
        ts = datetime.fromisoformat(raw.strip()) if isinstance(raw, str) else raw
        if isinstance(ts, datetime):
            if ts.tzinfo is not None:
                ts = ts.astimezone(UTC).replace(tzinfo=None)
            out.append(np.datetime64(ts, "s"))
        else:
            out.append(np.asarray(ts, dtype="datetime64[s]")[()])
    return np.array(out, dtype="datetime64[s]")


def _as_datetime(ts: np.datetime64) -> datetime:
    return datetime.fromtimestamp(int(ts.astype("datetime64[s]").astype(np.int64)), tz=UTC)


def _robust_alpha(obs: FloatArray, mean: FloatArray) -> float:
    """NB dispersion alpha (var = m + alpha m^2) by moments on winsorized residuals.

    E[(y - m)^2 - y] = alpha m^2 holds for counts of any size (a Huber scale on Pearson
    residuals is biased low for means near 1); clipping at +-3.5 sd bounds what a past
    spike can add.
    """
    keep = np.isfinite(obs) & np.isfinite(mean) & (mean > 0)
    if keep.sum() < 24:
        return _ALPHA_DEFAULT
    y, m = obs[keep], mean[keep]
    m2 = float((m * m).sum())
    alpha = _ALPHA_DEFAULT
    for _ in range(5):
        sd = np.sqrt(m * (1.0 + alpha * m))
        yc = np.clip(y, m - _WINSOR_ALPHA * sd, m + _WINSOR_ALPHA * sd)
        alpha = float(((yc - m) ** 2 - yc).sum()) / m2
        alpha = min(max(alpha, _ALPHA_MIN), _ALPHA_MAX)
    return alpha


def _shrunk_ratio(
    observed: FloatArray, expected: FloatArray, counts: FloatArray, alpha: float
) -> FloatArray:
    """Seasonal factors observed/expected, shrunk toward 1 by empirical Bayes.

    Each factor's sampling variance is (1 + alpha m) / expected (m: mean per bucket); the
    spread of the factors beyond that is the real seasonal signal, so a flat series gets flat
    factors and a strong cycle keeps its shape.
    """
    ok = (expected > 0) & (counts > 0)
    if ok.sum() < 2:
        return np.ones(observed.size)
    ratio = np.where(ok, observed / np.where(ok, expected, 1.0), 1.0)
    per_bucket = np.where(ok, expected / np.where(ok, counts, 1.0), 0.0)
    noise = np.where(ok, (1.0 + alpha * per_bucket) / np.where(ok, expected, 1.0), np.inf)
    signal = max(0.0, float(np.mean((ratio[ok] - 1.0) ** 2) - np.mean(noise[ok])))
    weight = np.where(ok, signal / (signal + noise), 0.0)
    return 1.0 + weight * (ratio - 1.0)


_KERNEL = np.array([1.0, 2.0, 3.0, 2.0, 1.0])


def _circular(x: FloatArray) -> FloatArray:
    """Sum of x over each slot's neighbours (hours wrap around midnight), kernel-weighted."""
    h = _KERNEL.size // 2
    padded = np.concatenate([x[-h:], x, x[:h]])
    return np.convolve(padded, _KERNEL, mode="valid")


def _smooth_toward(
    hod: FloatArray, c_sl: FloatArray, e_sl: FloatArray, n_sl: FloatArray, alpha: float
) -> FloatArray:
    """Hour-of-day factors shrunk toward their neighbours' pooled ratio instead of toward 1.

    A daily cycle is smooth: pooling five neighbouring hours estimates it with a fraction of
    the noise, so thin data no longer flattens the night-time trough (which inflated the
    expected count there) or the daytime peak. Hours that differ from their neighbours keep
    their own factor as far as the data supports it.
    """
    pooled = _shrunk_ratio(_circular(c_sl), _circular(e_sl), _circular(n_sl), alpha)
    ok = (e_sl > 0) & (n_sl > 0)
    if ok.sum() < 2:
        return hod
    raw = np.where(ok, c_sl / np.where(ok, e_sl, 1.0), pooled)
    per_bucket = np.where(ok, e_sl / np.where(ok, n_sl, 1.0), 0.0)
    noise = np.where(ok, (1.0 + alpha * per_bucket) / np.where(ok, e_sl, 1.0), np.inf)
    signal = max(0.0, float(np.mean((raw[ok] - pooled[ok]) ** 2) - np.mean(noise[ok])))
    weight = np.where(ok, signal / (signal + noise), 0.0)
    return np.asarray(pooled + weight * (raw - pooled), dtype=np.float64)


def _profile(
    clean: FloatArray,
    slot: NDArray[np.int64],
    dow: NDArray[np.int64],
    *,
    n_slots: int,
    full_week: bool,
    alpha: float,
) -> tuple[FloatArray, FloatArray]:
    """Time-of-day and day-of-week factors (mean 1 over the data), shrunk toward 1."""
    ok = np.isfinite(clean)
    c, sl, dw = clean[ok], slot[ok], dow[ok]
    hod = np.ones(n_slots)
    dwf = np.ones(7)
    if c.size == 0 or c.sum() <= 0:
        return hod, dwf
    rate = float(c.mean())
    n_sl = np.bincount(sl, minlength=n_slots).astype(np.float64)
    n_dw = np.bincount(dw, minlength=7).astype(np.float64)
    c_sl = np.bincount(sl, c, n_slots).astype(np.float64)
    c_dw = np.bincount(dw, c, 7).astype(np.float64)
    for _ in range(3):
        base = rate * dwf[dw]
        e_sl = np.bincount(sl, base, n_slots).astype(np.float64)
        hod = _shrunk_ratio(c_sl, e_sl, n_sl, alpha)
        if n_slots > 1:
            hod = _smooth_toward(hod, c_sl, e_sl, n_sl, alpha)
        if full_week:
            base = rate * hod[sl]
            dwf = _shrunk_ratio(c_dw, np.bincount(dw, base, 7).astype(np.float64), n_dw, alpha)
        hod = hod / float((hod[sl] * dwf[dw]).mean())
    return hod, dwf


def _score_grid(
    y: FloatArray, slot: NDArray[np.int64], dow: NDArray[np.int64], p: DetectorParams
) -> _Scored:
    """Expected counts and tail scores on a regular grid; row t uses rows < t only."""
    n = y.size
    windows = p.windows or ()
    bpd = p.buckets_per_day
    n_slots = 24 if bpd >= 24 else 1
    warm = p.warmup_buckets
    lookback = math.ceil((p.profile_days or 28.0) * bpd)
    decay = 0.5 ** (1.0 / ((p.level_halflife_days or 3.0) * bpd))
    recompute = bpd if bpd > 1 else 7
    expected = np.full(n, np.nan)
    clean = np.full(n, np.nan)
    alpha = np.full((len(windows), n), _ALPHA_DEFAULT)
    hod, dwf = np.ones(n_slots), np.ones(7)
    alphas = [_ALPHA_DEFAULT] * len(windows)
    a_sum = b_sum = 0.0
    profiled = False
    ys, slots, dows = y.tolist(), slot.tolist(), dow.tolist()
    k = p.winsor_sd
    # Running sums of observed and expected over covered buckets, for the incident check.
    cum_y = [0.0] * (n + 1)
    cum_e = [0.0] * (n + 1)
    cum_n = [0] * (n + 1)
    y_base = y.copy()  # what the dispersion sees: incident buckets masked
    incident_start = -1
    max_incident = math.ceil(p.incident_days * bpd)
    excluding = math.isfinite(p.exclude_z or math.inf)
    for t in range(n):
        if t >= warm and (t - warm) % recompute == 0:
            lo = max(0, t - lookback)
            full_week = (t - lo) >= 7 * bpd
            hod, dwf = _profile(
                clean[lo:t],
                slot[lo:t],
                dow[lo:t],
                n_slots=n_slots,
                full_week=full_week,
                alpha=alphas[0],
            )
            seg = clean[lo:t]
            ok = np.isfinite(seg)
            wts = decay ** np.arange(t - lo - 1, -1, -1, dtype=np.float64)
            a_sum = float((wts * np.where(ok, seg, 0.0)).sum())
            b_sum = float((wts * np.where(ok, hod[slot[lo:t]] * dwf[dow[lo:t]], 0.0)).sum())
            alphas = [_window_alpha(y_base, expected, lo, t, w) for w in windows]
            profiled = True
        s_t = hod[slots[t]] * dwf[dows[t]]
        mu = a_sum / b_sum * s_t if b_sum > 0 else math.nan
        expected[t] = mu
        alpha[:, t] = alphas
        yt = ys[t]
        ok_t = not (math.isnan(yt) or math.isnan(mu))
        cum_y[t + 1] = cum_y[t] + (yt if ok_t else 0.0)
        cum_e[t + 1] = cum_e[t] + (mu if ok_t else 0.0)
        cum_n[t + 1] = cum_n[t] + ok_t
        if math.isnan(yt):  # missing bucket: a coverage gap, neither a drop nor a spike
            a_sum *= decay
            b_sum *= decay
            continue
        if (
            excluding
            and profiled
            and ok_t
            and _in_incident(cum_y, cum_e, cum_n, t, windows, alphas, p)
        ):
            if incident_start < 0:
                incident_start = t
            if t - incident_start < max_incident:
                # Inside an open incident: the spike must not raise its own baseline.
                y_base[t] = math.nan
                a_sum *= decay
                b_sum *= decay
                continue
        else:
            incident_start = -1
        c = yt
        if profiled and not math.isnan(mu):
            sd = math.sqrt(mu * (1.0 + alphas[0] * mu))
            c = min(max(yt, mu - k * sd - 1.0), mu + k * sd + 1.0)
        clean[t] = c
        a_sum = decay * a_sum + c
        b_sum = decay * b_sum + s_t
    return _tail_scores(y, expected, alpha, p)


def _in_incident(
    cum_y: list[float],
    cum_e: list[float],
    cum_n: list[int],
    t: int,
    windows: tuple[int, ...],
    alphas: list[float],
    p: DetectorParams,
) -> bool:
    """Whether some window ending at t holds a clear excess (normal approximation, cheap)."""
    for w, a in zip(windows, alphas, strict=True):
        lo = t + 1 - w
        # A single bucket is winsorized instead; sustained excesses are what leak into the level.
        if w < 2 or lo < 0 or cum_n[t + 1] - cum_n[lo] < w:
            continue
        s = cum_y[t + 1] - cum_y[lo]
        m = cum_e[t + 1] - cum_e[lo]
        if m <= 0 or s - m < p.min_excess_abs or s < (1.0 + p.min_excess_rel) * m:
            continue
        if s - m >= (p.exclude_z or math.inf) * math.sqrt(m * (1.0 + a * m)):
            return True
    return False


def _window_sums(values: FloatArray, w: int) -> FloatArray:
    cs = np.concatenate([[0.0], np.cumsum(values)])
    out = np.full(values.size, np.nan)
    if values.size >= w:
        out[w - 1 :] = cs[w:] - cs[:-w]
    return out


def _window_alpha(y: FloatArray, expected: FloatArray, lo: int, t: int, w: int) -> float:
    start = max(0, lo - w + 1)
    ex = expected[start:t]
    obs = np.where(np.isfinite(y[start:t]), y[start:t], ex)
    good = np.isfinite(ex)
    s = _window_sums(np.where(good, obs, 0.0), w)
    m = _window_sums(np.where(good, ex, 0.0), w)
    n_good = _window_sums(good.astype(np.float64), w)
    keep = n_good == w
    return _robust_alpha(s[keep], m[keep])


def _nb_log10_sf(obs: FloatArray, mean: FloatArray, alpha: FloatArray) -> FloatArray:
    """log10 P(X >= obs) for X ~ NB(mean, var = mean + alpha mean^2)."""
    kk = np.ceil(obs - 1e-9) - 1.0
    size = 1.0 / alpha
    prob = 1.0 / (1.0 + alpha * mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        logsf = np.asarray(stats.nbinom.logsf(kk, size, prob), dtype=np.float64)
    # Beyond ~1e-308 the survival function underflows to 0 and every large spike would tie at
    # the score cap; there pmf(k) <= P(X >= k) <= pmf(k) / (1 - rho), rho = pmf(k+1) / pmf(k)
    # (decreasing in k), so the upper bound is exact to a fraction of a decade.
    deep = ~np.isfinite(logsf) & np.isfinite(kk)
    if deep.any():
        k = kk[deep] + 1.0
        sz = np.broadcast_to(size, kk.shape)[deep]
        pr = np.broadcast_to(prob, kk.shape)[deep]
        rho = np.minimum((k + sz) / (k + 1.0) * (1.0 - pr), 1.0 - 1e-12)
        logsf[deep] = stats.nbinom.logpmf(k, sz, pr) - np.log1p(-rho)
    return logsf / _LN10


def _tail_scores(
    y: FloatArray, expected: FloatArray, alpha: FloatArray, p: DetectorParams
) -> _Scored:
    n = y.size
    windows = p.windows or ()
    warm = p.warmup_buckets
    good = np.isfinite(expected) & (expected > 0)
    obs = np.where(np.isfinite(y), y, expected)
    score = np.zeros(n)
    best_w = np.zeros(n, dtype=np.int64)
    best_s = np.full(n, np.nan)
    best_m = np.full(n, np.nan)
    best_lp = np.zeros(n)
    ongoing = good & (obs > expected)
    good_obs, good_exp = np.where(good, obs, 0.0), np.where(good, expected, 0.0)
    good_n = good.astype(np.float64)
    sums: dict[int, tuple[FloatArray, FloatArray, NDArray[np.bool_]]] = {}

    def window(w: int) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
        """Observed and expected sums over the last w buckets, and whether the excess is enough."""
        if w not in sums:
            s, m = _window_sums(good_obs, w), _window_sums(good_exp, w)
            full = _window_sums(good_n, w) == w
            sums[w] = (
                s,
                m,
                full & (s - m >= p.min_excess_abs) & (s >= (1.0 + p.min_excess_rel) * m),
            )
        return sums[w]

    def take(sc: FloatArray, w: int, s: FloatArray, m: FloatArray, lp: FloatArray) -> None:
        better = sc > score
        score[better] = sc[better]
        best_w[better] = w
        best_s[better] = s[better]
        best_m[better] = m[better]
        best_lp[better] = lp[better]

    for wi, w in enumerate(windows):
        s, m, enough = window(w)
        # The newest bucket must itself be above expected, so a window scores an ongoing
        # excess and not the tail of a spike that has already ended.
        gate = ongoing & enough
        lp = np.zeros(n)
        if gate.any():
            lp[gate] = _nb_log10_sf(s[gate], m[gate], alpha[wi, gate])
        take(np.where(gate, np.minimum(-lp, _MAX_SCORE), 0.0), w, s, m, lp)
    if 1 in windows:
        a1 = alpha[windows.index(1)]
        for w in p.persist_windows or ():
            s, m, enough = window(w)
            sc = np.where(enough, _persistence_scores(obs, expected, a1, good, w), 0.0)
            take(sc, w, s, m, -sc)
    scored_rows = np.arange(n) >= warm
    score = np.where(scored_rows & np.isfinite(y), score, np.nan)
    return _Scored(expected, score, best_w, best_s, best_m, best_lp)


def _persistence_scores(
    obs: FloatArray, expected: FloatArray, alpha1: FloatArray, good: NDArray[np.bool_], w: int
) -> FloatArray:
    """-log10 P(each of the last w buckets is at least as far in its tail as the least of them).

    For independent buckets that probability is p_max ** w, p_max the largest single-bucket
    tail probability in the window, so the score is w times the smallest single-bucket score:
    one huge bucket next to ordinary ones scores nothing here, three clearly high ones do.
    """
    n = obs.size
    single = np.zeros(n)
    up = good & (obs > expected)
    if up.any():
        single[up] = -_nb_log10_sf(obs[up], expected[up], alpha1[up])
    single = np.minimum(np.nan_to_num(single, nan=0.0), _MAX_SCORE)
    out = np.zeros(n)
    if n >= w:
        least = single[w - 1 :].copy()
        for k in range(1, w):
            least = np.minimum(least, single[w - 1 - k : n - k])
        out[w - 1 :] = w * least
    return np.asarray(np.minimum(out, _MAX_SCORE), dtype=np.float64)


def alert_starts(scores: FloatArray, threshold: float, cooldown: int) -> list[int]:
    """Rows where alerts would open: a fresh crossing, at least `cooldown` after the last."""
    above = np.nan_to_num(scores, nan=-np.inf) >= threshold
    starts = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    out: list[int] = []
    last = -cooldown
    for i in starts.tolist():
        if i - last >= cooldown:
            out.append(i)
            last = i
    return out


def incident_peaks(scores: ArrayLike, *, threshold: float, cooldown_buckets: int) -> FloatArray:
    """Peak score of each incident that would open an alert at `threshold`."""
    arr = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    starts = alert_starts(arr, threshold, cooldown_buckets)
    bounds = [*starts, arr.size]
    return np.array([arr[a:b].max() for a, b in pairwise(bounds)])


def calibrate_threshold(
    scores: ArrayLike,
    *,
    budget: float,
    bucket_seconds: int,
    cooldown_buckets: int,
    min_score: float = 0.0,
    method: Literal["tail", "rank"] = "tail",
) -> float:
    """Score threshold (>= min_score) at which past scores open about `budget` alerts / 28 days.

    "rank": the lowest threshold that would have opened at most floor(budget x span / 28)
    alerts. "tail" (default): an exponential tail fitted to the largest incident peaks, so a
    short history extrapolates beyond its maximum instead of paging on every new record.
    """
    arr = np.asarray(scores, dtype=np.float64)
    span_days = arr.size * bucket_seconds / 86400.0
    if span_days <= 0:
        return math.inf
    if method == "tail":
        peaks = np.sort(
            incident_peaks(arr, threshold=min_score, cooldown_buckets=cooldown_buckets)
        )[::-1]
        target = budget / BUDGET_DAYS  # alerts per day
        if peaks.size <= target * span_days:
            return float(min_score)
        k = int(min(peaks.size, max(5, math.ceil(2 * target * span_days))))
        u = float(peaks[k - 1])
        beta = float(np.mean(peaks[: k - 1] - u)) if k > 1 else 1.0
        beta = max(beta, 0.5)
        return max(float(min_score), u + beta * math.log((k / span_days) / target))
    allowed = math.floor(budget * span_days / BUDGET_DAYS + 1e-9)
    if len(alert_starts(arr, min_score, cooldown_buckets)) <= allowed:
        return float(min_score)
    finite = arr[np.isfinite(arr)]
    cands = np.unique(finite[finite >= min_score])
    lo, hi = 0, cands.size  # hi: threshold just above the largest score (zero alerts)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(alert_starts(arr, float(cands[mid]), cooldown_buckets)) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    if lo >= cands.size:
        return float(np.nextafter(cands[-1], np.inf)) if cands.size else float(min_score)
    return float(cands[lo])


def _budget_cap(budget: float) -> tuple[float, int]:
    """(window in days, max alerts in any trailing window of that length)."""
    days = BUDGET_DAYS * max(1.0, 1.0 / budget)
    return days, max(1, math.floor(budget * days / BUDGET_DAYS + 1e-9))


def open_alerts(scores: ArrayLike, *, params: DetectorParams) -> tuple[list[int], FloatArray]:
    """Alert rows and per-row thresholds for any score series on a regular grid.

    The threshold at row t is calibrated on rows before t only; alerts need a fresh crossing,
    the cooldown, and room under the budget's hard cap.
    """
    p = params.resolved()
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.size
    warm = p.warmup_buckets
    bpd = p.buckets_per_day
    cooldown = p.cooldown_buckets
    floor = p.min_score if p.min_score is not None else 0.0
    cap_days, cap_n = _budget_cap(p.budget)
    cap_buckets = math.ceil(cap_days * 86400 / p.bucket_seconds)
    settle = warm + math.ceil(p.settle_days * 86400 / p.bucket_seconds)
    thresholds = np.full(n, np.inf)
    alerts: list[int] = []
    cur = math.inf
    prev_above = False
    sc = scores.tolist()
    for t in range(n):
        if t > warm and (t - warm) % bpd == 0:
            cur = calibrate_threshold(
                scores[warm:t],
                budget=p.budget,
                bucket_seconds=p.bucket_seconds,
                cooldown_buckets=cooldown,
                min_score=floor,
                method=p.calibration,
            )
            if t < settle:
                # Too little history to rank incidents: demand twice the significance floor.
                cur = max(cur, 2.0 * floor)
        thresholds[t] = cur
        s = sc[t]
        above = s >= cur  # nan compares False
        if above and not prev_above:
            recent = [a for a in alerts[-cap_n:] if a > t - cap_buckets]
            room = len(recent) < cap_n or p.cap == "none"
            if not room and p.cap == "soft":
                room = s > max(sc[a] for a in recent)
            if (not alerts or t - alerts[-1] >= cooldown) and room:
                alerts.append(t)
        prev_above = above
    return alerts, thresholds


@dataclass
class _Grid:
    rows: NDArray[np.int64]  # grid index of each input row
    start: np.datetime64
    values: FloatArray
    slot: NDArray[np.int64]
    dow: NDArray[np.int64]


def _to_grid(ts: NDArray[np.datetime64], values: FloatArray, p: DetectorParams) -> _Grid:
    step = p.bucket_seconds
    sec = ts.astype(np.int64)
    bucket = sec // step
    b0 = int(bucket.min())
    idx = (bucket - b0).astype(np.int64)
    n = int(idx.max()) + 1
    grid = np.full(n, np.nan)
    obs = np.isfinite(values)
    grid[idx[obs]] = 0.0
    np.add.at(grid, idx[obs], values[obs])
    gsec = (np.arange(n, dtype=np.int64) + b0) * step
    slot = (gsec % 86400) // 3600 if step < 86400 else np.zeros(n, dtype=np.int64)
    dow = (gsec // 86400 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    start = np.datetime64(b0 * step, "s")
    return _Grid(idx, start, grid, slot.astype(np.int64), dow.astype(np.int64))


class Detector:
    """Backtest-style detector: every row is scored and alerted from its past only."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = (params or DetectorParams()).resolved()

    def run(self, timestamps: Sequence[datetime] | ArrayLike, values: ArrayLike) -> list[RowResult]:
        """Expected, score and alert for each row, in input order."""
        ts = _to_datetime64(timestamps)
        vals = np.asarray(values, dtype=np.float64)
        if ts.size != vals.size:
            raise ValueError("timestamps and values differ in length")
        if ts.size == 0:
            return []
        if np.any(vals[np.isfinite(vals)] < 0):
            raise ValueError("counts must be non-negative")
        p = self.params
        grid = _to_grid(ts, vals, p)
        scored = _score_grid(grid.values, grid.slot, grid.dow, p)
        alert_rows, thresholds = open_alerts(scored.score, params=p)
        opened = set(alert_rows)
        step = np.timedelta64(p.bucket_seconds, "s")
        out: list[RowResult] = []
        # Rows finer than the granularity: the alert goes on the last row of its bucket, the
        # first at which the bucket's count is known (no look-ahead).
        last_row = {g: i for i, g in enumerate(grid.rows.tolist())}
        for i, (ts_i, v, g) in enumerate(zip(ts, vals.tolist(), grid.rows.tolist(), strict=True)):
            alert = None
            if g in opened and last_row[g] == i:
                alert = self._alert(scored, g, grid.start, step, float(thresholds[g]))
            out.append(
                RowResult(
                    timestamp=_as_datetime(ts_i),
                    value=float(v),
                    expected=float(scored.expected[g]),
                    score=float(scored.score[g]),
                    threshold=float(thresholds[g]),
                    window_buckets=int(scored.window[g]),
                    tail_p=float(10.0 ** scored.log10_p[g]),
                    alert=alert,
                )
            )
        return out

    def scores(self, timestamps: Sequence[datetime] | ArrayLike, values: ArrayLike) -> FloatArray:
        """Score column alone on the input rows (no thresholds), for evaluation sweeps."""
        ts = _to_datetime64(timestamps)
        vals = np.asarray(values, dtype=np.float64)
        grid = _to_grid(ts, vals, self.params)
        return _score_grid(grid.values, grid.slot, grid.dow, self.params).score[grid.rows]

    def _alert(
        self, scored: _Scored, g: int, start: np.datetime64, step: np.timedelta64, thr: float
    ) -> Alert:
        w = int(scored.window[g])
        return Alert(
            timestamp=_as_datetime(start + g * step),
            window_start=_as_datetime(start + (g - w + 1) * step),
            window_buckets=w,
            observed=float(scored.observed_sum[g]),
            expected=float(scored.expected_sum[g]),
            tail_p=float(10.0 ** scored.log10_p[g]),
            score=float(scored.score[g]),
            threshold=thr,
        )


def score_latest(
    timestamps: Sequence[datetime] | ArrayLike,
    values: ArrayLike,
    *,
    params: DetectorParams | None = None,
    threshold: float | None = None,
    last_alert_at: datetime | None = None,
    history_days: float | None = None,
) -> RowResult:
    """Score the newest bucket of a live rollup series (history first, newest last).

    The baseline and dispersion come from the history only; `threshold` is the rule's
    calibrated threshold (calibrated from the history when None); an alert opens when the
    newest bucket crosses it freshly and the cooldown since `last_alert_at` has passed.
    """
    p = (params or DetectorParams()).resolved()
    ts = _to_datetime64(timestamps)
    vals = np.asarray(values, dtype=np.float64)
    if ts.size == 0:
        raise ValueError("empty history")
    keep_days = history_days or ((p.profile_days or 28.0) + (p.warmup_days or 0.0) + 7.0)
    cut = ts[-1] - np.timedelta64(math.ceil(keep_days * 86400), "s")
    sel = ts >= cut
    ts, vals = ts[sel], vals[sel]
    grid = _to_grid(ts, vals, p)
    scored = _score_grid(grid.values, grid.slot, grid.dow, p)
    g = int(grid.rows[-1])
    floor = p.min_score if p.min_score is not None else 0.0
    if threshold is None:
        past = scored.score[p.warmup_buckets : g]
        threshold = (
            calibrate_threshold(
                past,
                budget=p.budget,
                bucket_seconds=p.bucket_seconds,
                cooldown_buckets=p.cooldown_buckets,
                min_score=floor,
            )
            if past.size
            else math.inf
        )
    thr = max(threshold, floor)
    s = float(scored.score[g])
    prev = float(scored.score[g - 1]) if g > 0 else math.nan
    now = _as_datetime(grid.start + g * np.timedelta64(p.bucket_seconds, "s"))
    if last_alert_at is not None and last_alert_at.tzinfo is None:
        last_alert_at = last_alert_at.replace(tzinfo=UTC)
    cooled = last_alert_at is None or (now - last_alert_at) >= (p.cooldown or timedelta(0))
    fresh = not prev >= thr  # nan (no previous row) counts as below
    alert = None
    if s >= thr and fresh and cooled:
        alert = Detector(p)._alert(
            scored, g, grid.start, np.timedelta64(p.bucket_seconds, "s"), thr
        )
    return RowResult(
        timestamp=_as_datetime(ts[-1]),
        value=float(vals[-1]),
        expected=float(scored.expected[g]),
        score=s,
        threshold=thr,
        window_buckets=int(scored.window[g]),
        tail_p=float(10.0 ** scored.log10_p[g]),
        alert=alert,
    )


# Slow-rise arm (the weekly digest, never a page): a one-sided CUSUM on standardized daily
# residuals. K = 0.5 sd is the usual allowance for a shift of about one sd: a day adds to the
# sum only beyond half an sd above expected, so a well-modelled series stays near 0. CAP = 2 sd
# is what leaves a one-day spike to the paging arm: however large, a day adds at most
# CAP - K = 1.5, so H = 5 needs at least four clearly-high days in one run, i.e. a rise that
# lasts (an uncapped 9x day at 20 a day is z > 10 and would trip it alone). H = 5 with K = 0.5 is
# the textbook pair: about 900 days between false trips on a null N(0, 1) series, more capped.
SLOW_K = 0.5
SLOW_CAP = 2.0
SLOW_H = 5.0


@dataclass(frozen=True)
class SlowRise:
    """The slow-rise CUSUM at the newest row, and the run that built it."""

    tripped: bool  # statistic >= SLOW_H
    statistic: float
    since: datetime | None  # first day of the current run (None when the sum is 0)
    observed: float  # sums over the scored days of the run
    expected: float


def slow_rise(rows: Sequence[RowResult]) -> SlowRise:
    """Capped one-sided CUSUM over daily detector rows (rows without an expected count skipped).

    Each day is standardized with the NB dispersion of the days before it only, so the sum at
    a row uses nothing after it.
    """
    y = np.array([r.value for r in rows], dtype=np.float64)
    e = np.array([r.expected for r in rows], dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(e) & (e > 0)
    s, start, obs, exp = 0.0, -1, 0.0, 0.0
    for t in np.flatnonzero(ok).tolist():
        alpha = _robust_alpha(y[:t][ok[:t]], e[:t][ok[:t]])
        z = float((y[t] - e[t]) / math.sqrt(e[t] + alpha * e[t] ** 2))
        s = max(0.0, s + min(z, SLOW_CAP) - SLOW_K)
        if s == 0.0:
            start, obs, exp = -1, 0.0, 0.0
            continue
        if start < 0:
            start = t
        obs, exp = obs + float(y[t]), exp + float(e[t])
    return SlowRise(
        tripped=bool(s >= SLOW_H),
        statistic=float(s),
        since=rows[start].timestamp if start >= 0 else None,
        observed=obs,
        expected=exp,
    )
