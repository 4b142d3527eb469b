"""Alert rules, detection over the rollups, and the alert lifecycle.

A rule watches one theme (optionally for one product and one platform) at hour or day
granularity. Detection reads the rule's rollup series, marks hours in which the rule's sources
were failing as coverage gaps (missing values: never a drop, never a spike), runs the spike
detector of ``trends.spikes`` over it, and opens one alert per incident: no new alert while
one is active, none within the cooldown of the last. An alert resolves by itself once
``alerts.resolve_after_buckets`` complete buckets in a row are back under the threshold.
History the rule never watched (before it existed, or a replayed corpus) is backfilled: its
incidents are stored as they would have opened, and never delivered.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, select

from core.db import is_postgres
from core.errors import Conflict, InvalidInput, NotFound
from core.logging import get_logger
from core.models import Alert, AlertRule, Delivery, Post, Rollup, Source, SourceOutage, utcnow
from core.settings import Settings
from core.taxonomy import Taxonomy
from trends.notify import (
    CHANNELS,
    TERMINAL,
    Channel,
    RefusedTarget,
    channel_key,
    check_literal_target,
    public_channel,
)
from trends.posts import filtered_query
from trends.rollups import ALL
from trends.spikes import BUDGET_DAYS, Detector, DetectorParams, RowResult, calibrate_threshold

log = get_logger(__name__)

ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
POST = Post.__table__  # type: ignore[attr-defined]
OUTAGE = SourceOutage.__table__  # type: ignore[attr-defined]
STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
# The complaint themes of the codebook that a policy team usually wants paged about.
DEFAULT_THEMES = (
    "refusal_complaint",
    "perceived_censorship",
    "lost_work_claim",
    "switching_intent",
    "manipulation_accusation",
)
N_EXAMPLES = 5
EXAMPLE_CHARS = 280


# --- rules ----------------------------------------------------------------------------------


class RuleSpec(BaseModel):
    """A new rule, as the API and the CLI take it."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$")
    theme: str = Field(max_length=64)
    product: str | None = Field(default=None, max_length=32)
    platform: str | None = Field(default=None, max_length=32, pattern=r"^[a-z0-9_-]+$")
    granularity: Literal["hour", "day"] = "hour"
    metric: Literal["count", "share"] = "count"
    budget: float = Field(default=2.0, gt=0, le=100, description="Alerts per 28 days at most.")
    min_count: int = Field(default=5, ge=1, le=100_000)
    cooldown_hours: int = Field(default=24, ge=0, le=24 * 60)
    threshold: float | None = Field(default=None, ge=0, description="Set by calibration.")
    channels: list[Channel] = Field(default_factory=list, max_length=10)
    enabled: bool = True


class RulePatch(BaseModel):
    """Fields to change on a rule; the ones left out keep their value."""

    model_config = {"extra": "forbid"}

    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$"
    )
    theme: str | None = Field(default=None, max_length=64)
    product: str | None = Field(default=None, max_length=32)
    platform: str | None = Field(default=None, max_length=32, pattern=r"^[a-z0-9_-]+$")
    granularity: Literal["hour", "day"] | None = None
    metric: Literal["count", "share"] | None = None
    budget: float | None = Field(default=None, gt=0, le=100)
    min_count: int | None = Field(default=None, ge=1, le=100_000)
    cooldown_hours: int | None = Field(default=None, ge=0, le=24 * 60)
    threshold: float | None = Field(default=None, ge=0)
    channels: list[Channel] | None = Field(default=None, max_length=10)
    enabled: bool | None = None


# Changing any of these makes the calibrated threshold meaningless.
_SERIES_FIELDS = ("theme", "product", "platform", "granularity", "metric", "budget")


def _check_rule(values: dict[str, Any], *, taxonomy: Taxonomy, settings: Settings) -> None:
    theme, product = values.get("theme"), values.get("product")
    if theme is not None and theme not in taxonomy.theme_keys:
        raise InvalidInput(
            f"unknown theme {theme!r}; one of {list(taxonomy.theme_keys)}", param="theme"
        )
    if product is not None and product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    for i, ch in enumerate(values.get("channels") or []):
        if "url" in ch:
            try:
                check_literal_target(ch["url"], allow_private=settings.alerts.allow_private_targets)
            except RefusedTarget as e:
                raise InvalidInput(str(e), param=f"channels.{i}.url") from e


def _channels(channels: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        c.model_dump(exclude_none=True) if isinstance(c, BaseModel) else dict(c) for c in channels
    ]


def parse_channels(raw: Any) -> list[dict[str, Any]]:
    """Channel dicts validated as the API would; InvalidInput naming the channel otherwise."""
    try:
        return _channels(CHANNELS.validate_python(raw))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidInput(f"channels.{where}: {err.get('msg')}", param="channels") from e


def create_rule(
    *, session: Session, spec: RuleSpec, taxonomy: Taxonomy, settings: Settings
) -> AlertRule:
    """A new rule; Conflict if the name is taken."""
    values = spec.model_dump()
    values["channels"] = _channels(spec.channels)
    _check_rule(values, taxonomy=taxonomy, settings=settings)
    if session.exec(select(AlertRule).where(AlertRule.name == spec.name)).first():
        raise Conflict(f"a rule named {spec.name!r} exists", param="name")
    rule = AlertRule(**values, updated_at=utcnow())
    session.add(rule)
    session.flush()
    log.info("alerts.rule_created", rule_id=rule.id, name=rule.name)
    return rule


def get_rule(*, session: Session, rule_id: int) -> AlertRule:
    """The rule, or NotFound."""
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"no alert rule with id {rule_id}")
    return rule


def find_rule(*, session: Session, ref: str) -> AlertRule:
    """A rule by id or by name (for the CLI)."""
    if ref.isdigit():
        return get_rule(session=session, rule_id=int(ref))
    rule = session.exec(select(AlertRule).where(AlertRule.name == ref)).first()
    if rule is None:
        raise NotFound(f"no alert rule named {ref!r}")
    return rule


def update_rule(
    *,
    session: Session,
    rule_id: int,
    patch: RulePatch,
    taxonomy: Taxonomy,
    settings: Settings,
) -> AlertRule:
    """Change the given fields; a change to the series drops the calibrated threshold."""
    rule = get_rule(session=session, rule_id=rule_id)
    changes = patch.model_dump(exclude_unset=True)
    if "channels" in changes:
        changes["channels"] = _channels(patch.channels or [])
    _check_rule(changes, taxonomy=taxonomy, settings=settings)
    renamed = changes.get("name") not in (None, rule.name)
    if renamed and session.exec(select(AlertRule).where(AlertRule.name == changes["name"])).first():
        raise Conflict(f"a rule named {changes['name']!r} exists", param="name")
    moved = any(k in changes and changes[k] != getattr(rule, k) for k in _SERIES_FIELDS)
    if moved and "threshold" not in changes:
        rule.threshold, rule.calibrated_at = None, None
    for k, v in changes.items():
        if v is None and k not in ("product", "platform", "threshold"):
            raise InvalidInput(f"{k} may not be null", param=k)
        setattr(rule, k, v)
    rule.updated_at = utcnow()
    session.add(rule)
    session.flush()
    return rule


def delete_rule(*, session: Session, rule_id: int) -> None:
    """Remove a rule and its alerts."""
    rule = get_rule(session=session, rule_id=rule_id)
    session.execute(sa.delete(Alert).where(Alert.rule_id == rule.id))  # type: ignore[arg-type]
    session.delete(rule)
    session.flush()
    log.info("alerts.rule_deleted", rule_id=rule_id)


def list_rules(*, session: Session) -> list[AlertRule]:
    """Every rule, by id."""
    return list(session.exec(select(AlertRule).order_by(AlertRule.id)))  # type: ignore[arg-type]


def rule_to_dict(rule: AlertRule, *, reveal: bool = False) -> dict[str, Any]:
    """A rule as the API and CLI show it (channel secrets never, URLs only when ``reveal``)."""
    return {
        "id": rule.id,
        "name": rule.name,
        "theme": rule.theme,
        "product": rule.product,
        "platform": rule.platform,
        "granularity": rule.granularity,
        "metric": rule.metric,
        "budget": rule.budget,
        "min_count": rule.min_count,
        "cooldown_hours": rule.cooldown_hours,
        "threshold": rule.threshold,
        "calibrated_at": rule.calibrated_at.isoformat() if rule.calibrated_at else None,
        "channels": [public_channel(c, reveal=reveal) for c in rule.channels],
        "enabled": rule.enabled,
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
    }


def ensure_default_rules(
    *, session: Session, taxonomy: Taxonomy, settings: Settings
) -> list[AlertRule]:
    """Create the default rules that are missing (one per complaint theme); returns the new ones."""
    channels = parse_channels(settings.alerts.default_channels)
    created = []
    for theme in DEFAULT_THEMES:
        if theme not in taxonomy.theme_keys:
            continue
        name = f"default:{theme}"
        if session.exec(select(AlertRule).where(AlertRule.name == name)).first():
            continue
        spec = RuleSpec(name=name, theme=theme, budget=2.0, min_count=5, cooldown_hours=24)
        rule = create_rule(session=session, spec=spec, taxonomy=taxonomy, settings=settings)
        rule.channels = channels
        created.append(rule)
    return created


# --- series ---------------------------------------------------------------------------------


def params_for(rule: AlertRule) -> DetectorParams:
    """Detector parameters of a rule."""
    return DetectorParams(
        granularity="day" if rule.granularity == "day" else "hour",
        budget=rule.budget,
        cooldown=timedelta(hours=rule.cooldown_hours),
    )


def floor_bucket(ts: datetime, seconds: int) -> datetime:
    """The start of the bucket of ``seconds`` holding ``ts`` (UTC)."""
    epoch = int(ts.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    n = max(0, int((end - start).total_seconds() // 3600))
    return [start + timedelta(hours=i) for i in range(n)]


def _platform_of(source: Source) -> str | None:
    # File and replay sources carry posts of any platform.
    return None if source.kind in ("file", "replay") else source.kind


def gap_hours(
    *, session: Session, platform: str | None, start: datetime, end: datetime, now: datetime
) -> set[datetime]:
    """Hours in [start, end) in which a source feeding the series was failing."""
    sources = {
        s.name: s
        for s in session.exec(select(Source))
        if platform is None or _platform_of(s) in (None, platform)
    }
    windows: list[tuple[datetime, datetime]] = []
    outages = session.exec(
        select(SourceOutage).where(
            OUTAGE.c.source.in_(list(sources)),
            OUTAGE.c.started_at < end,
            sa.or_(OUTAGE.c.ended_at.is_(None), OUTAGE.c.ended_at > start),
        )
    )
    open_sources = set()
    for o in outages:
        windows.append((o.started_at, o.ended_at or now))
        if o.ended_at is None:
            open_sources.add(o.source)
    for s in sources.values():
        # A source failing now without an outage row (recorded before outages were kept).
        if s.consecutive_failures > 0 and s.name not in open_sources:
            began = s.last_success_at or s.last_error_at or now
            windows.append((min(began, now), now))
    gaps: set[datetime] = set()
    for a, b in windows:
        h = floor_bucket(max(a, start), 3600)
        while h < min(b, end):
            gaps.add(h)
            h += timedelta(hours=1)
    return gaps


def _first_data_hour(session: Session) -> datetime | None:
    return session.execute(
        sa.select(sa.func.min(ROLLUP.c.bucket)).where(
            ROLLUP.c.product == ALL, ROLLUP.c.theme == ALL
        )
    ).scalar_one_or_none()


def _hourly_counts(
    session: Session,
    *,
    theme: str,
    product: str | None,
    platform: str | None,
    start: datetime,
    end: datetime,
) -> dict[datetime, float]:
    stmt = (
        sa.select(ROLLUP.c.bucket, sa.func.sum(ROLLUP.c.count))
        .where(
            ROLLUP.c.theme == theme,
            ROLLUP.c.product == (product or ALL),
            ROLLUP.c.bucket >= start,
            ROLLUP.c.bucket < end,
        )
        .group_by(ROLLUP.c.bucket)
    )
    if platform:
        stmt = stmt.where(ROLLUP.c.platform == platform)
    return {b: float(n) for b, n in session.execute(stmt)}


@dataclass
class Series:
    """A rule's series on a regular grid: NaN marks a coverage gap."""

    timestamps: list[datetime]
    values: np.ndarray
    totals: np.ndarray
    gaps: int


def rule_series(
    *, session: Session, rule: AlertRule, start: datetime, end: datetime, now: datetime
) -> Series:
    """Counts of the rule's theme per bucket in [start, end), from the first collected hour on."""
    seconds = params_for(rule).bucket_seconds
    first = _first_data_hour(session)
    if first is None:
        return Series([], np.array([]), np.array([]), 0)
    start = max(floor_bucket(start, seconds), floor_bucket(first, seconds))
    if start >= end:
        return Series([], np.array([]), np.array([]), 0)
    theme = _hourly_counts(
        session,
        theme=rule.theme,
        product=rule.product,
        platform=rule.platform,
        start=start,
        end=end,
    )
    total = _hourly_counts(
        session, theme=ALL, product=rule.product, platform=rule.platform, start=start, end=end
    )
    gaps = gap_hours(session=session, platform=rule.platform, start=start, end=end, now=now)
    hours = _hours(start, end)
    if seconds == 3600:
        stamps = hours
        vals = np.array([math.nan if h in gaps else theme.get(h, 0.0) for h in hours])
        tots = np.array([math.nan if h in gaps else total.get(h, 0.0) for h in hours])
        return Series(stamps, vals, tots, len(gaps & set(hours)))
    stamps = [start + timedelta(seconds=seconds * i) for i in range(len(hours) * 3600 // seconds)]
    vals, tots = np.zeros(len(stamps)), np.zeros(len(stamps))
    for h in hours:
        i = int((h - start).total_seconds() // seconds)
        if h in gaps:  # a day with any uncovered hour is a gap
            vals[i] = tots[i] = math.nan
        elif not math.isnan(vals[i]):
            vals[i] += theme.get(h, 0.0)
            tots[i] += total.get(h, 0.0)
    return Series(stamps, vals, tots, len(gaps & set(hours)))


def share_adjusted(series: Series, params: DetectorParams) -> np.ndarray:
    """Theme counts rescaled to the product's usual volume, so general buzz is not a spike."""
    if not series.timestamps:
        return series.values
    rows = Detector(params).run(series.timestamps, series.totals)
    expected_total = np.array([r.expected for r in rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(
            np.isfinite(expected_total) & (expected_total > 0),
            expected_total / np.maximum(series.totals, 1.0),
            1.0,
        )
    return np.asarray(series.values * np.clip(factor, 0.25, 4.0), dtype=np.float64)


def _window(values: np.ndarray, rows: list[RowResult], i: int) -> tuple[float, float]:
    w = max(1, rows[i].window_buckets)
    obs = exp = 0.0
    for j in range(max(0, i - w + 1), i + 1):
        e = rows[j].expected if math.isfinite(rows[j].expected) else 0.0
        obs += float(values[j]) if math.isfinite(values[j]) else e
        exp += e
    return obs, exp


def _back_to_normal(
    values: np.ndarray, rows: list[RowResult], idx: list[int], p: DetectorParams
) -> bool:
    """No gap, and the buckets together fall short of the minimum excess an alert needs.

    The scores themselves are no guide here: a day-long window still holds the spike.
    """
    obs = [float(values[i]) for i in idx]
    exp = [rows[i].expected for i in idx]
    if not all(math.isfinite(x) for x in obs + exp):
        return False
    excess = sum(obs) - sum(exp)
    return excess < max(p.min_excess_abs, p.min_excess_rel * sum(exp))


def _within_budget(session: Session, rule: AlertRule, score: float, now: datetime) -> bool:
    """Once the budget's worth of alerts opened recently, page again only for a stronger one."""
    days = BUDGET_DAYS * max(1.0, 1.0 / rule.budget)
    cap = max(1, math.floor(rule.budget * days / BUDGET_DAYS + 1e-9))
    recent = list(
        session.exec(
            select(Alert.score).where(
                Alert.rule_id == rule.id, Alert.opened_at > now - timedelta(days=days)
            )
        )
    )
    return len(recent) < cap or score > max(recent)


# --- detection ------------------------------------------------------------------------------


def _lock_rule(session: Session, rule_id: int) -> None:
    # One detection per rule at a time: two runs must not open two alerts for one incident.
    if is_postgres(session):
        key = int(hashlib.sha256(f"alerts:rule:{rule_id}".encode()).hexdigest()[:15], 16)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _examples(
    session: Session, rule: AlertRule, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    stmt = filtered_query(
        base=sa.select(
            POST.c.id,
            POST.c.platform,
            POST.c.url,
            POST.c.text,
            POST.c.created_at,
            POST.c.engagement,
        ),
        theme=rule.theme,
        product=rule.product,
        platform=rule.platform,
        since=start,
        until=end,
    ).limit(500)
    rows = list(session.execute(stmt))

    def weight(r: Any) -> tuple[float, datetime]:
        eng = r.engagement or {}
        return (float(sum(v for v in eng.values() if isinstance(v, int | float))), r.created_at)

    rows.sort(key=weight, reverse=True)
    return [
        {
            "id": r.id,
            "platform": r.platform,
            "url": r.url,
            "created_at": r.created_at.isoformat(),
            "text": r.text if len(r.text) <= EXAMPLE_CHARS else r.text[: EXAMPLE_CHARS - 1] + "…",
        }
        for r in rows[:N_EXAMPLES]
    ]


def _summary(rule: AlertRule, observed: float, expected: float, hours: float) -> str:
    what = rule.theme.replace("_", " ")
    where = " ".join(x for x in (rule.product, rule.platform and f"on {rule.platform}") if x)
    span = f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"
    return (
        f"{what}{' (' + where + ')' if where else ''} spike: {observed:g} posts in {span} "
        f"vs {expected:.1f} expected"
    )


@dataclass
class RuleOutcome:
    """What detection did for one rule."""

    rule_id: int
    opened: int | None = None
    resolved: int | None = None
    backfilled: list[int] = field(default_factory=list)
    score: float = math.nan
    threshold: float = math.inf
    note: str = ""


def _backfill(
    *, session: Session, rule: AlertRule, now: datetime, settings: Settings, p: DetectorParams
) -> list[int]:
    """Record the incidents of history this rule never watched (a replay, a new rule).

    The history before the rule existed (or up to the newest data, for a replayed corpus that
    ends before now) is backtested as the live detector would have run it, past-only; each
    alert it opens that lies after the rule's newest alert is stored with the time it would
    have opened, marked ``backfill``, resolved where the series came back to normal, and never
    delivered: nobody is paged about the past. The rule keeps a digest of the history and
    parameters it backtested, so later passes skip the same backtest (it was half of every
    detection pass on the demo corpus) and rerun it when the history or the rule changed.
    """
    step = timedelta(seconds=p.bucket_seconds)
    newest = session.execute(
        sa.select(sa.func.max(ROLLUP.c.bucket)).where(
            ROLLUP.c.product == ALL, ROLLUP.c.theme == ALL
        )
    ).scalar_one_or_none()
    created = rule.created_at if rule.created_at.tzinfo else rule.created_at.replace(tzinfo=UTC)
    # Detection replayed at a time before the rule existed simulates the live pass itself.
    if newest is None or created > now:
        return []
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    # The live pass owns the newest `recheck_buckets`; the backfill stops before them.
    live_from = floor_bucket(now, p.bucket_seconds) - (settings.alerts.recheck_buckets - 1) * step
    end = min(
        floor_bucket(created, p.bucket_seconds), floor_bucket(newest, p.bucket_seconds) + step
    )
    end = min(end, live_from)
    last = session.exec(
        select(Alert).where(Alert.rule_id == rule.id).order_by(Alert.window_end.desc()).limit(1)  # type: ignore[attr-defined]
    ).first()
    last_end = None
    if last is not None:
        last_end = (
            last.window_end if last.window_end.tzinfo else last.window_end.replace(tzinfo=UTC)
        )
        if last_end >= end:
            return []
    start = end - timedelta(days=settings.alerts.history_days)
    series = rule_series(session=session, rule=rule, start=start, end=end, now=now)
    if len(series.timestamps) < p.warmup_buckets + 1:
        return []
    values = share_adjusted(series, p) if rule.metric == "share" else series.values

    # The backtest is a function of the series, the parameters and the newest alert: when none
    # of them changed since the last pass, neither can its outcome (late posts, a re-score or an
    # edit of the rule change the digest, and the history is backtested again).
    def digest(newest_alert_end: datetime | None) -> str:
        return hashlib.sha256(
            repr(
                (
                    start.isoformat(),
                    end.isoformat(),
                    newest_alert_end.astimezone(UTC).isoformat() if newest_alert_end else None,
                    p,
                    rule.min_count,
                    series.gaps,
                )
            ).encode()
            + np.ascontiguousarray(values, dtype=np.float64).tobytes()
            + np.ascontiguousarray(series.totals, dtype=np.float64).tobytes()
        ).hexdigest()

    if rule.backfill_digest == digest(last_end):
        return []
    rows = Detector(p).run(series.timestamps, values)
    made: list[int] = []
    need = settings.alerts.resolve_after_buckets
    for i, r in enumerate(rows):
        if r.alert is None:
            continue
        w = max(1, r.window_buckets)
        window_start = series.timestamps[i] + step - w * step
        if last_end is not None and window_start < last_end:
            continue
        observed, expected = _window(values, rows, i)
        if observed < rule.min_count:
            continue
        alert = _open(
            session,
            rule,
            rows,
            i,
            series,
            observed,
            expected,
            r.alert.threshold,
            now,
            step,
            backfill=True,
        )
        for j in range(i + 1, len(rows) - need + 1):
            idx = list(range(j, j + need))
            if _back_to_normal(values, rows, idx, p):
                alert.status = "resolved"
                alert.resolved_at = series.timestamps[idx[-1]] + step
                alert.details = {
                    **alert.details,
                    "resolution": {
                        "by": "detector",
                        "reason": f"{need} complete buckets in a row showed no excess over expected",
                    },
                }
                break
        session.add(alert)
        made.append(int(alert.id or 0))
        last_end = alert.window_end
    # As the next pass will see it: its newest alert is the last one stored here.
    rule.backfill_digest = digest(last_end)
    return made


def evaluate_rule(
    *, session: Session, rule: AlertRule, now: datetime, settings: Settings
) -> RuleOutcome:
    """Open or resolve this rule's alert from its series up to ``now``; the caller commits."""
    _lock_rule(session, int(rule.id or 0))
    out = RuleOutcome(rule_id=int(rule.id or 0))
    p = params_for(rule).resolved()
    out.backfilled = _backfill(session=session, rule=rule, now=now, settings=settings, p=p)
    step = timedelta(seconds=p.bucket_seconds)
    current = floor_bucket(now, p.bucket_seconds)
    # A share needs complete buckets (a partial one would be scaled up); a count may look
    # at the current, partial bucket, which can only under-count.
    end = current if rule.metric == "share" else current + step
    start = current - timedelta(days=settings.alerts.history_days)
    series = rule_series(session=session, rule=rule, start=start, end=end, now=now)
    if len(series.timestamps) < p.warmup_buckets + 1:
        out.note = "not enough history"
        return out
    values = share_adjusted(series, p) if rule.metric == "share" else series.values
    rows = Detector(p).run(series.timestamps, values)
    floor = p.min_score or 0.0
    threshold = rule.threshold if rule.threshold is not None else rows[-1].threshold
    threshold = max(threshold, floor)
    out.threshold, out.score = threshold, rows[-1].score
    if not math.isfinite(threshold):
        out.note = "not calibrated yet"
        return out
    alerts = list(
        session.exec(
            select(Alert).where(Alert.rule_id == rule.id).order_by(Alert.window_end.desc()).limit(1)  # type: ignore[attr-defined]
        )
    )
    last = alerts[0] if alerts else None
    active = last if last is not None and last.status in ACTIVE else None
    if active is None:
        recheck = settings.alerts.recheck_buckets
        for i in range(max(0, len(rows) - recheck), len(rows)):
            r = rows[i]
            window_start = series.timestamps[i] - (max(1, r.window_buckets) - 1) * step
            if last is not None and (
                # The evidence must lie after the last incident's window (else it is the same
                # incident's tail), and the cooldown must have passed since that alert.
                window_start < last.window_end
                or series.timestamps[i] - (last.window_end - step) < (p.cooldown or timedelta(0))
            ):
                continue
            if not (math.isfinite(r.score) and r.score >= threshold):
                continue
            observed, expected = _window(values, rows, i)
            if observed < rule.min_count:
                continue
            if not _within_budget(session, rule, r.score, now):
                out.note = "over budget: a stronger incident would be needed"
                continue
            opened = _open(session, rule, rows, i, series, observed, expected, threshold, now, step)
            out.opened = int(opened.id or 0)
            break
    else:
        done = [i for i in range(len(rows)) if series.timestamps[i] + step <= now]
        need = settings.alerts.resolve_after_buckets
        tail = done[-need:]
        since_open = [i for i in tail if series.timestamps[i] >= active.window_end]
        if len(since_open) == need and _back_to_normal(values, rows, since_open, p):
            obs = [float(values[i]) for i in since_open]
            exp = [round(rows[i].expected, 3) for i in since_open]
            active.status = "resolved"
            active.resolved_at = now
            active.details = {
                **active.details,
                "resolution": {
                    "by": "detector",
                    "reason": f"the last {need} complete buckets show no excess over expected",
                    "last_observed": obs,
                    "last_expected": exp,
                },
            }
            session.add(active)
            out.resolved = active.id
            log.info("alerts.resolved", alert_id=active.id, rule_id=rule.id, by="detector")
    return out


def _open(
    session: Session,
    rule: AlertRule,
    rows: list[RowResult],
    i: int,
    series: Series,
    observed: float,
    expected: float,
    threshold: float,
    now: datetime,
    step: timedelta,
    *,
    backfill: bool = False,
) -> Alert:
    r = rows[i]
    w = max(1, r.window_buckets)
    window_end = series.timestamps[i] + step
    window_start = window_end - w * step
    hours = (window_end - window_start).total_seconds() / 3600
    alert = Alert(
        rule_id=int(rule.id or 0),
        status="open",
        # A backfilled alert opened, as far as the budget goes, when its bucket closed.
        opened_at=window_end if backfill else now,
        window_start=window_start,
        window_end=window_end,
        observed=round(observed, 3),
        expected=round(expected, 3),
        tail_p=r.tail_p,
        score=r.score,
        threshold=threshold,
        details={
            "summary": _summary(rule, round(observed, 3), expected, hours),
            "granularity": rule.granularity,
            "metric": rule.metric,
            "window_buckets": w,
            "window_hours": hours,
            "bucket_observed": float(r.value),
            "bucket_expected": round(r.expected, 3),
            "threshold_from": "calibrated" if rule.threshold is not None else "history",
            "coverage_gap_hours_in_history": series.gaps,
            "examples": _examples(session, rule, window_start, window_end),
        },
    )
    if backfill:
        alert.details["backfill"] = {"found_at": now.isoformat(), "delivered": False}
    session.add(alert)
    session.flush()
    log.info(
        "alerts.opened",
        alert_id=alert.id,
        rule_id=rule.id,
        observed=alert.observed,
        expected=alert.expected,
        tail_p=alert.tail_p,
        backfill=backfill,
    )
    return alert


def detect(
    *,
    session: Session,
    settings: Settings,
    now: datetime | None = None,
    rule_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Run every enabled rule (or ``rule_ids``) once; the caller commits."""
    now = now or utcnow()
    stmt = select(AlertRule).where(AlertRule.enabled == True)  # noqa: E712
    if rule_ids:
        stmt = select(AlertRule).where(AlertRule.id.in_(rule_ids))  # type: ignore[union-attr]
    outcomes = [
        evaluate_rule(session=session, rule=rule, now=now, settings=settings)
        for rule in session.exec(stmt.order_by(AlertRule.id))  # type: ignore[arg-type]
    ]
    return {
        "now": now.isoformat(),
        "rules": len(outcomes),
        "opened": [o.opened for o in outcomes if o.opened],
        "resolved": [o.resolved for o in outcomes if o.resolved],
        # Incidents of history the rules never watched: stored, not delivered.
        "backfilled": [a for o in outcomes for a in o.backfilled],
        "details": [
            {
                "rule_id": o.rule_id,
                "score": None if not math.isfinite(o.score) else round(o.score, 3),
                "threshold": None if not math.isfinite(o.threshold) else round(o.threshold, 3),
                "note": o.note,
            }
            for o in outcomes
        ],
    }


# --- calibration ----------------------------------------------------------------------------


def calibrate_rule(
    *, session: Session, rule: AlertRule, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """Set the rule's threshold from the complete buckets before ``now`` by its budget."""
    now = now or utcnow()
    p = params_for(rule).resolved()
    current = floor_bucket(now, p.bucket_seconds)
    start = current - timedelta(days=settings.alerts.history_days)
    # Only complete buckets before now: nothing after the calibration time is read.
    series = rule_series(session=session, rule=rule, start=start, end=current, now=now)
    result: dict[str, Any] = {
        "rule_id": rule.id,
        "name": rule.name,
        "buckets": len(series.timestamps),
    }
    if len(series.timestamps) <= p.warmup_buckets + p.buckets_per_day:
        result.update(threshold=rule.threshold, note="not enough history; threshold unchanged")
        return result
    values = share_adjusted(series, p) if rule.metric == "share" else series.values
    rows = Detector(p).run(series.timestamps, values)
    scores = np.array([r.score for r in rows], dtype=np.float64)[p.warmup_buckets :]
    floor = p.min_score or 0.0
    threshold = calibrate_threshold(
        scores,
        budget=rule.budget,
        bucket_seconds=p.bucket_seconds,
        cooldown_buckets=p.cooldown_buckets,
        min_score=floor,
        method=p.calibration,
    )
    if scores.size * p.bucket_seconds < p.settle_days * 86400:
        threshold = max(threshold, 2.0 * floor)  # too little history to rank incidents
    days = len(rows) * p.bucket_seconds / 86400
    backtest = sum(1 for r in rows if r.alert is not None)
    if math.isfinite(threshold):
        rule.threshold = float(threshold)
        rule.calibrated_at = now
        session.add(rule)
    result.update(
        threshold=rule.threshold,
        history_days=round(days, 2),
        gap_hours=series.gaps,
        backtest_alerts=backtest,
        backtest_alerts_per_28_days=round(backtest * 28 / days, 3) if days else 0.0,
        budget=rule.budget,
    )
    log.info("alerts.calibrated", rule_id=rule.id, threshold=rule.threshold, history_days=days)
    return result


def calibrate_rules(
    *,
    session: Session,
    settings: Settings,
    now: datetime | None = None,
    rule_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Calibrate every enabled rule (or ``rule_ids``); the caller commits."""
    stmt = select(AlertRule).where(AlertRule.enabled == True)  # noqa: E712
    if rule_ids:
        stmt = select(AlertRule).where(AlertRule.id.in_(rule_ids))  # type: ignore[union-attr]
    return [
        calibrate_rule(session=session, rule=r, settings=settings, now=now)
        for r in session.exec(stmt.order_by(AlertRule.id))  # type: ignore[arg-type]
    ]


# --- lifecycle ------------------------------------------------------------------------------


def get_alert(*, session: Session, alert_id: int) -> Alert:
    """The alert, or NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return alert


def acknowledge_alert(*, session: Session, alert_id: int, by: str) -> Alert:
    """Mark an open alert as seen; Conflict if it is resolved already."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert.status == "resolved":
        raise Conflict(f"alert {alert_id} is resolved")
    if alert.status == "open":
        alert.status = "acknowledged"
        alert.acknowledged_at = utcnow()
        alert.details = {**alert.details, "acknowledged_by": by}
        session.add(alert)
    return alert


def resolve_alert(*, session: Session, alert_id: int, by: str) -> Alert:
    """Close an alert by hand; resolving twice changes nothing."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert.status != "resolved":
        alert.status = "resolved"
        alert.resolved_at = utcnow()
        alert.details = {**alert.details, "resolution": {"by": by, "reason": "resolved by hand"}}
        session.add(alert)
        log.info("alerts.resolved", alert_id=alert_id, by=by)
    return alert


def list_alerts(
    *,
    session: Session,
    status: str | None = None,
    rule_id: int | None = None,
    theme: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Alerts newest first with filters; ``next_cursor`` is the id to pass as ``before_id``."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {list(STATUSES)}", param="status")
    stmt = select(Alert, AlertRule).join(AlertRule, AlertRule.id == Alert.rule_id)  # type: ignore[arg-type]
    if status:
        stmt = stmt.where(Alert.status == status)
    if rule_id is not None:
        stmt = stmt.where(Alert.rule_id == rule_id)
    if theme:
        stmt = stmt.where(AlertRule.theme == theme)
    if since:
        stmt = stmt.where(Alert.opened_at >= since)
    if before_id is not None:
        stmt = stmt.where(Alert.id < before_id)  # type: ignore[operator]
    rows = list(session.exec(stmt.order_by(Alert.id.desc()).limit(limit + 1)))  # type: ignore[union-attr]
    items = [alert_to_dict(a, rule=r) for a, r in rows[:limit]]
    nxt = str(rows[limit - 1][0].id) if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}


def alert_to_dict(
    alert: Alert, *, rule: AlertRule | None = None, deliveries: list[Delivery] | None = None
) -> dict[str, Any]:
    """An alert with why it opened."""
    out: dict[str, Any] = {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "status": alert.status,
        "opened_at": alert.opened_at.isoformat(),
        "window_start": alert.window_start.isoformat(),
        "window_end": alert.window_end.isoformat(),
        "observed": alert.observed,
        "expected": alert.expected,
        "tail_p": alert.tail_p,
        "score": alert.score,
        "threshold": alert.threshold,
        "details": alert.details,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }
    if rule is not None:
        out["rule"] = {
            "id": rule.id,
            "name": rule.name,
            "theme": rule.theme,
            "product": rule.product,
        }
    if deliveries is not None:
        out["deliveries"] = [
            {
                "channel": d.channel,
                "channel_key": d.channel_key,
                "target": d.target,
                "attempt": d.attempt,
                "status": d.status,
                "response": d.response,
                "at": d.created_at.isoformat(),
            }
            for d in deliveries
        ]
    return out


def alert_detail(*, session: Session, alert_id: int) -> dict[str, Any]:
    """One alert with its rule and delivery attempts."""
    alert = get_alert(session=session, alert_id=alert_id)
    rule = session.get(AlertRule, alert.rule_id)
    deliveries = list(
        session.exec(select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.id))  # type: ignore[arg-type]
    )
    return alert_to_dict(alert, rule=rule, deliveries=deliveries)


# --- deliveries to send ---------------------------------------------------------------------


def delivery_jobs(*, session: Session, alert_ids: list[int]) -> list[tuple[int, str]]:
    """(alert id, channel key) for every channel of these alerts' rules."""
    jobs: list[tuple[int, str]] = []
    for alert_id in alert_ids:
        alert = session.get(Alert, alert_id)
        rule = session.get(AlertRule, alert.rule_id) if alert else None
        if rule is not None:
            jobs.extend((alert_id, channel_key(c)) for c in rule.channels)
    return jobs


def stale_deliveries(
    *, session: Session, now: datetime, settings: Settings, within: timedelta = timedelta(days=2)
) -> list[tuple[int, str]]:
    """Recent (alert, channel) pairs with no final attempt and none in progress: lost messages."""
    alerts = session.exec(select(Alert).where(Alert.opened_at >= now - within))
    quiet = timedelta(seconds=settings.alerts.retry_max_s + 600)
    out = []
    for alert in alerts:
        rule = session.get(AlertRule, alert.rule_id)
        if rule is None or not rule.channels or "backfill" in (alert.details or {}):
            continue
        tries = list(session.exec(select(Delivery).where(Delivery.alert_id == alert.id)))
        for c in rule.channels:
            key = channel_key(c)
            mine = [d for d in tries if d.channel_key == key]
            if any(d.status in TERMINAL for d in mine):
                continue
            latest = max((d.created_at for d in mine), default=alert.opened_at)
            if now - latest >= (quiet if mine else timedelta(seconds=600)):
                out.append((int(alert.id or 0), key))
    return out
