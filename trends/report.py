"""The weekly report: what changed, as HTML (inline SVG), e-mail HTML (PNG charts), Markdown and
a CSV of the week's labeled posts, stored under ``data_dir/reports/<week>/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import smtplib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlmodel import Session, select

from core.db import get_engine
from core.errors import InvalidInput, NotFound
from core.logging import get_logger
from core.models import AlertRule, Delivery, utcnow
from core.settings import Settings
from core.taxonomy import Taxonomy
from trends import charts, overview
from trends.alerts import list_alerts, list_rules, rule_series, share_adjusted
from trends.compare import release_comparison
from trends.exports import ExportFilters, stream_export
from trends.notify import (
    SIGNATURE_HEADER,
    TERMINAL,
    TIMESTAMP_HEADER,
    TRANSIENT,
    DeliveryError,
    RefusedTarget,
    channel_key,
    post_json,
    redacted_target,
    send_email,
    sign,
    slack_escape,
)
from trends.releases import list_releases
from trends.series import series
from trends.spikes import Detector, DetectorParams, slow_rise
from trends.weekly import iso_week, parse_week, weekly_summary

log = get_logger(__name__)
TEMPLATES = Path(__file__).with_name("templates")
_WEEK = re.compile(r"^\d{4}-W\d{2}$")
FILES = {
    "report.html": "text/html; charset=utf-8",
    "email.html": "text/html; charset=utf-8",
    "report.md": "text/markdown; charset=utf-8",
    "posts.csv": "text/csv; charset=utf-8",
    "shares.png": "image/png",
    "daily.png": "image/png",
    "summary.json": "application/json",
}


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no raw HTML."""
    text = " ".join(str(value).split())
    # Brackets too: a post's "[click](javascript:...)" must stay text, not become a link.
    text = text.replace("[", "\\[").replace("]", "\\]")
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


_html = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Markdown output: every printed value passes through _md (finalize), so no raw HTML gets in.
_text = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701
    finalize=_md,
    trim_blocks=True,
    lstrip_blocks=True,
)
for _env in (_html, _text):
    _env.filters["pct"] = lambda v: f"{v * 100:.1f}%"
    _env.filters["pp"] = lambda v: "–" if v is None else f"{v:+.1f} pp"


@dataclass
class WeeklyReport:
    week: str
    summary: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def reports_root(settings: Settings) -> Path:
    """Where reports are stored."""
    return (settings.data_dir / "reports").resolve()


def previous_week(*, now: datetime | None = None, timezone: str = "UTC") -> str:
    """The last complete ISO week as seen in ``timezone`` (what a Monday-morning report covers)."""
    local = (now or utcnow()).astimezone(ZoneInfo(timezone))
    return iso_week(datetime.combine(local.date() - timedelta(days=7), datetime.min.time(), UTC))


def _check_week(week: str) -> str:
    if not _WEEK.match(week or ""):
        raise InvalidInput(f"week {week!r} is not an ISO week like 2026-W47", param="week")
    parse_week(week)
    return week


SLOW_RISE_WEEKS = 8  # history behind the slow-rise arm: the daily warm-up (3 weeks) and 5 scored


def slow_rises(*, session: Session, taxonomy: Taxonomy, end: datetime) -> list[dict[str, Any]]:
    """Enabled rules whose daily slow-rise CUSUM is at or above its threshold at ``end``."""
    labels = {t.key: t.label for t in taxonomy.themes}
    params = DetectorParams(granularity="day")
    now = utcnow()
    out = []
    for rule in list_rules(session=session):
        if not rule.enabled:
            continue
        # A detached daily copy: rule_series then sums the rule's hours to UTC days, a day with
        # an uncovered hour being a gap, whatever the rule's own granularity.
        daily = AlertRule(
            name=rule.name,
            theme=rule.theme,
            product=rule.product,
            platform=rule.platform,
            granularity="day",
        )
        s = rule_series(
            session=session,
            rule=daily,
            start=end - timedelta(weeks=SLOW_RISE_WEEKS),
            end=end,
            now=now,
        )
        if not s.timestamps:
            continue
        values = share_adjusted(s, params) if rule.metric == "share" else s.values
        rise = slow_rise(Detector(params).run(s.timestamps, values))
        if not rise.tripped or rise.since is None:
            continue
        out.append(
            {
                "rule": rule.name,
                "theme": rule.theme,
                "label": labels.get(rule.theme, rule.theme),
                "product": rule.product,
                "platform": rule.platform,
                "since": rise.since.date().isoformat(),
                "observed": rise.observed,
                "expected": rise.expected,
                "rise": rise.observed / rise.expected - 1.0 if rise.expected > 0 else None,
            }
        )
    return out


def analyse_week(*, session: Session, taxonomy: Taxonomy, week: str) -> dict[str, Any]:
    """What changed in ``week``: movers, alerts, slow rises, releases, coverage, examples."""
    start = parse_week(week)
    end = start + timedelta(days=7)
    summary = weekly_summary(session=session, taxonomy=taxonomy, week=week)
    labels = {t.key: t.label for t in taxonomy.themes}
    for t in summary["themes"]:
        t["label"] = labels[t["theme"]]
    movers = sorted(
        (t for t in summary["themes"] if t["change"]["significant"]),
        key=lambda t: -abs(t["change"]["share_pp"]),
    )
    rising = [t for t in movers if t["change"]["share_pp"] > 0]
    # With no rise beyond the interval, still show the largest rises (marked as such).
    largest = sorted(
        (t for t in summary["themes"] if t["change"]["share_pp"] >= 1.0 and t not in rising),
        key=lambda t: -t["change"]["share_pp"],
    )[: 0 if rising else 2]
    examples = {
        t["theme"]: overview.top_examples(
            session=session, taxonomy=taxonomy, theme=t["theme"], start=start, end=end, limit=3
        )
        for t in rising + largest
    }
    releases = []
    for r in list_releases(session=session):
        if start <= r.date < end and r.id is not None:
            cmp = release_comparison(session=session, taxonomy=taxonomy, release_id=r.id)
            notable = [
                {**t, "label": labels[t["theme"]]}
                for t in cmp["themes"]
                if t["significant"] or t["unusual"]
            ]
            releases.append({"release": cmp["release"], "comparison": cmp, "notable": notable})
    alerts = [
        a
        for a in list_alerts(session=session, since=start, limit=500)["items"]
        if datetime.fromisoformat(a["opened_at"]) < end
    ]
    cov = overview.coverage(session=session, start=start, end=end)
    gaps = [c for c in cov if c["gaps"] or not c["healthy"]]
    return {
        "week": week,
        "start": start,
        "end": end,
        "summary": summary,
        "movers": movers,
        "rising": rising,
        "largest": largest,
        "examples": examples,
        "releases": releases,
        "alerts": alerts,
        "slow_rises": slow_rises(session=session, taxonomy=taxonomy, end=end),
        "coverage": cov,
        "coverage_gaps": gaps,
    }


def _charts(
    *, session: Session, taxonomy: Taxonomy, data: dict[str, Any]
) -> tuple[charts.Chart, charts.Chart]:
    colors = charts.theme_colors(taxonomy.theme_keys)
    labels = {t.key: t.label for t in taxonomy.themes}
    shares = charts.paired_bars(
        items=[
            (labels[t["theme"]], t["change"]["previous_share"], t["share"], colors[t["theme"]])
            for t in data["summary"]["themes"]
        ],
        label="share of posts per theme, last week (grey) and this week",
    )
    end = data["end"]
    daily = series(
        session=session,
        taxonomy=taxonomy,
        granularity="day",
        start=end - timedelta(weeks=4),
        end=end,
    )
    days = [p["start"][:10] for p in daily["points"]]
    markers = [
        charts.Marker(days.index(r.date.date().isoformat()), r.title, "release")
        for r in list_releases(session=session)
        if r.date.date().isoformat() in days
    ]
    stacked = charts.stacked_columns(
        labels=[d[5:] for d in days],
        series={k: [p["themes"][k]["count"] for p in daily["points"]] for k in taxonomy.theme_keys},
        colors=colors,
        names=labels,
        markers=markers,
        width=680,
        height=240,
        label="posts per day by theme, four weeks to the end of the report week",
    )
    return shares, stacked


def build_weekly_report(
    *, session: Session, settings: Settings, taxonomy: Taxonomy, week: str
) -> WeeklyReport:
    """Every file of the report for ``week``, in memory (the CSV is streamed into bytes)."""
    week = _check_week(week)
    data = analyse_week(session=session, taxonomy=taxonomy, week=week)
    shares, stacked = _charts(session=session, taxonomy=taxonomy, data=data)
    colors = charts.theme_colors(taxonomy.theme_keys)
    link = f"{settings.public_url.rstrip('/')}/ui/reports/{week}/report.html"
    ctx = {
        **data,
        "colors": colors,
        "generated_at": utcnow(),
        "last_day": data["end"] - timedelta(days=1),
        "link": link if settings.public_url else "",
        "timezone": settings.timezone,
    }
    web = _html.get_template("weekly_report.html").render(
        **ctx,
        shares_chart=Markup(shares.svg()),  # noqa: S704 - trends.charts escapes its text
        daily_chart=Markup(stacked.svg()),  # noqa: S704
        email=False,
    )
    mail = _html.get_template("weekly_report.html").render(
        **ctx, shares_chart=None, daily_chart=None, email=True
    )
    markdown = _text.get_template("weekly_report.md").render(**ctx)
    csv = b"".join(
        stream_export(
            engine=get_engine(settings),
            taxonomy=taxonomy,
            fmt="csv",
            filters=ExportFilters(since=data["start"], until=data["end"]),
        )
    )
    summary = {
        "week": week,
        "generated_at": ctx["generated_at"].isoformat(),
        "total": data["summary"]["total"],
        "previous_total": data["summary"]["previous_total"],
        "movers": [
            {"theme": t["theme"], "share_pp": t["change"]["share_pp"], "count": t["count"]}
            for t in data["movers"]
        ],
        "alerts": len(data["alerts"]),
        "slow_rises": [
            {k: r[k] for k in ("theme", "product", "platform", "since", "rise")}
            for r in data["slow_rises"]
        ],
        "releases": [r["release"]["title"] for r in data["releases"]],
        "coverage_gaps": [c["name"] for c in data["coverage_gaps"]],
        "link": ctx["link"],
    }
    files = {
        "report.html": web.encode(),
        "email.html": mail.encode(),
        "report.md": markdown.encode(),
        "posts.csv": csv,
        "shares.png": shares.png(scale=2),
        "daily.png": stacked.png(scale=2),
        "summary.json": json.dumps(summary, indent=2).encode(),
    }
    return WeeklyReport(week=week, summary=summary, files=files)


def write_report(report: WeeklyReport, out_dir: Path) -> Path:
    """Write the files into ``out_dir`` atomically (a reader never sees half a report)."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    for name, data in report.files.items():
        (tmp / name).write_bytes(data)
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    return out_dir


def generate_weekly_report(
    *,
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    week: str | None = None,
    out_dir: Path | None = None,
) -> tuple[WeeklyReport, Path]:
    """Build the report of ``week`` (default: last complete week) and store it."""
    week = week or previous_week(timezone=settings.timezone)
    report = build_weekly_report(session=session, settings=settings, taxonomy=taxonomy, week=week)
    target = out_dir or reports_root(settings) / week
    return report, write_report(report, target)


def list_reports(*, root: Path) -> list[dict[str, Any]]:
    """Stored reports, newest week first."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir(), reverse=True):
        if not (d.is_dir() and _WEEK.match(d.name) and (d / "report.html").exists()):
            continue
        try:
            meta = json.loads((d / "summary.json").read_text())
            generated = datetime.fromisoformat(meta["generated_at"])
        except (OSError, ValueError, KeyError):
            meta, generated = {}, datetime.fromtimestamp((d / "report.html").stat().st_mtime, UTC)
        files = [n for n in FILES if (d / n).exists()]
        out.append({"week": d.name, "generated_at": generated, "files": files, "summary": meta})
    return out


def report_file(*, root: Path, week: str, name: str) -> Path:
    """The path of one stored report file; NotFound for anything else (no path traversal)."""
    if not _WEEK.match(week) or name not in FILES:
        raise NotFound(f"no report file {week}/{name}")
    path = root / week / name
    if not path.is_file():
        raise NotFound(f"no report file {week}/{name}")
    return path


def media_type(path: Path) -> str:
    """The content type a stored report file is served with."""
    return FILES.get(path.name, "application/octet-stream")


def report_channels(*, session: Session) -> list[dict[str, Any]]:
    """The distinct channels of the enabled alert rules: where the weekly report goes too."""
    seen: dict[str, dict[str, Any]] = {}
    for rule in list_rules(session=session):
        if rule.enabled:
            for c in rule.channels:
                seen.setdefault(channel_key(c), c)
    return list(seen.values())


def _email(report: WeeklyReport, settings: Settings, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Undertow] Weekly report {report.week}"
    msg["From"] = settings.smtp.from_addr
    msg["To"] = ", ".join(to)
    msg.set_content(report.files["report.md"].decode())
    msg.add_alternative(report.files["email.html"].decode(), subtype="html")
    html_part = msg.get_body(("html",))
    assert html_part is not None
    for name in ("shares.png", "daily.png"):
        # Mail clients strip inline SVG; the HTML body points at these by Content-ID.
        html_part.add_related(
            report.files[name], maintype="image", subtype="png", cid=f"<{name}>", filename=name
        )
    return msg


def _slack_text(report: WeeklyReport) -> str:
    s = report.summary
    esc = slack_escape
    lines = [f":bar_chart: *Undertow weekly report {report.week}*: {s['total']} posts"]
    for m in s["movers"][:5]:
        lines.append(
            f"• {esc(m['theme'].replace('_', ' '))} {m['share_pp']:+.1f} pp ({m['count']} posts)"
        )
    if s["alerts"]:
        lines.append(f"• {s['alerts']} new alert(s)")
    for r in s.get("slow_rises", [])[:5]:
        where = esc(" on ".join(x for x in (r["product"], r["platform"]) if x))
        rise = "" if r["rise"] is None else f" {r['rise'] * 100:+.0f}%"
        lines.append(
            f"• slow rise: {esc(r['theme'].replace('_', ' '))}"
            f"{f' ({where})' if where else ''}{rise} since {esc(r['since'])}"
        )
    if s["releases"]:
        lines.append("• releases: " + esc(", ".join(s["releases"])))
    if s["coverage_gaps"]:
        lines.append("• coverage gaps: " + esc(", ".join(s["coverage_gaps"])))
    if s["link"]:
        lines.append(f"<{s['link']}|Open the report>")
    return "\n".join(lines)


def _send(report: WeeklyReport, channel: dict[str, Any], settings: Settings) -> str:
    kind = channel.get("type")
    if kind == "slack":
        body = json.dumps({"text": _slack_text(report)}).encode()
        return f"HTTP {post_json(str(channel['url']), body, {}, settings)}"
    if kind == "webhook":
        secret = channel.get("secret") or settings.alerts.webhook_secret.get_secret_value()
        if not secret:
            raise DeliveryError(
                "no signing secret: set the channel's secret or alerts.webhook_secret"
            )
        body = json.dumps({"event": "report.weekly", **report.summary}, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}
        return f"HTTP {post_json(str(channel['url']), body, headers, settings)}"
    if kind == "email":
        return f"SMTP {send_email(_email(report, settings, list(channel['to'])), settings)}"
    raise DeliveryError(f"unknown channel type {kind!r}")


def deliver_report(
    *, session: Session, settings: Settings, report: WeeklyReport
) -> list[dict[str, Any]]:
    """Send the report once to each alert channel (email: HTML body; Slack: summary and link).

    Each attempt is a Delivery row keyed by week and channel; a channel that already got this
    week's report is skipped, so a repeated task sends nothing twice. The caller commits.
    """
    out = []
    for channel in report_channels(session=session):
        key = f"{report.week.replace('-', '')}:{channel_key(channel)}"
        past = list(
            session.exec(
                select(Delivery).where(Delivery.alert_id.is_(None), Delivery.channel_key == key)  # type: ignore[union-attr]
            )
        )
        target = redacted_target(channel)
        if any(d.status in TERMINAL for d in past):
            out.append({"channel": channel.get("type"), "target": target, "status": "skipped"})
            continue
        try:
            note, status = _send(report, channel, settings), "sent"
        except RefusedTarget as e:
            note, status = str(e), "refused"
        except TRANSIENT as e:
            last = len(past) + 1 >= settings.alerts.max_attempts
            note, status = f"{type(e).__name__}: {e}"[:500], "failed" if last else "retrying"
        except (DeliveryError, smtplib.SMTPException, OSError) as e:
            note, status = f"{type(e).__name__}: {e}"[:500], "failed"
        session.add(
            Delivery(
                alert_id=None,
                channel=str(channel.get("type")),
                channel_key=key,
                target=target,
                attempt=len(past) + 1,
                status=status,
                response=note,
            )
        )
        log.info("report.delivery", week=report.week, channel=channel.get("type"), status=status)
        out.append({"channel": channel.get("type"), "target": target, "status": status})
    return out


def load_report(*, root: Path, week: str) -> WeeklyReport:
    """A stored report read back (to send it again, or from a task after it was written)."""
    folder = root / _check_week(week)
    if not (folder / "summary.json").is_file():
        raise NotFound(f"no stored report for {week}")
    files = {n: (folder / n).read_bytes() for n in FILES if (folder / n).is_file()}
    return WeeklyReport(week=week, summary=json.loads(files["summary.json"]), files=files)
