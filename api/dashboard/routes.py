"""Dashboard pages: thin handlers that read the same domain functions as the JSON API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.dashboard.auth import (
    LOGIN_COOKIE,
    DashboardUser,
    check_csrf,
    check_login_csrf,
    clear_session,
    current_user,
    issue_session,
    login_token,
)
from api.dashboard.render import page
from api.deps import PLATFORM, SessionDep
from api.downloads import export_response
from classify.loader import scoring_basis
from classify.review import correct_labels
from core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from core.keys import authenticate, require
from core.settings import Settings
from core.taxonomy import Taxonomy
from ingest.pipeline import source_status
from trends import charts, overview, report
from trends.alerts import acknowledge_alert, alert_detail, list_alerts, resolve_alert
from trends.compare import release_comparison, release_view
from trends.exports import FORMATS, ExportFilters
from trends.posts import get_post, list_posts, review_queue
from trends.releases import list_releases
from trends.rollups import recompute_bucket
from trends.series import series
from trends.weekly import parse_week, weekly_summary

router = APIRouter(include_in_schema=False)
ui = APIRouter(prefix="/ui", include_in_schema=False)


def _user(request: Request, session: SessionDep) -> DashboardUser:
    return current_user(request, session)


UserDep = Annotated[DashboardUser, Depends(_user)]
Opt = Annotated[str | None, Query(max_length=64)]


def _tax(request: Request) -> Taxonomy:
    taxonomy: Taxonomy = request.app.state.taxonomy
    return taxonomy


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _blank(v: str | None) -> str | None:
    return v.strip() or None if v else None


def _when(v: str | None, param: str) -> datetime | None:
    """A date or datetime from a form field (UTC when no zone is given)."""
    if not v or not v.strip():
        return None
    try:
        ts = datetime.fromisoformat(v.strip())
    except ValueError as e:
        raise InvalidInput(f"{param} {v!r} is not a date like 2026-10-20", param=param) from e
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WeekFilters:
    """What a weekly page asks for: the week (None: the newest with data), product, platform."""

    week: str | None
    product: str | None
    platform: str | None

    def span(self, session: SessionDep) -> tuple[str, datetime, datetime]:
        """The week shown, its first instant and the first instant after it."""
        week = self.week or overview.latest_week(session=session)
        start = parse_week(week)
        return week, start, start + timedelta(days=7)

    def nav(self, week: str) -> dict[str, Any]:
        """What the page's week links carry: the week, the weeks around it and the filters."""
        return {
            "week": week,
            "prev_week": overview.shift_week(week, -1),
            "next_week": overview.shift_week(week, 1),
            "product": self.product,
            "platform": self.platform,
        }


def _week_filters(
    week: Annotated[str | None, Query(pattern=r"^\d{4}-W\d{2}$")] = None,
    product: Opt = None,
    platform: Opt = None,
) -> WeekFilters:
    return WeekFilters(week=week, product=_blank(product), platform=_blank(platform))


WeekFiltersDep = Annotated[WeekFilters, Depends(_week_filters)]


@router.get("/")
def root() -> RedirectResponse:
    """The dashboard lives under /ui/."""
    return RedirectResponse("/ui/", status_code=303)


@ui.get("/login")
def login_form(request: Request, next: str = "/ui/", error: str | None = None) -> Response:
    """The sign-in form (an API key of any scope)."""
    token = login_token(request)
    resp = page(
        request, "login.html", user=None, login_csrf=token, next=_safe_next(next), error=error
    )
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/ui/login")
    return resp


def _safe_next(target: str) -> str:
    # Only paths inside the dashboard: never an open redirect to another site.
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


@ui.post("/login")
def login(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/ui/",
) -> Response:
    """Check the key; on success set the session cookie and go on."""
    check_login_csrf(request, csrf)
    try:
        row = authenticate(session=session, key=key.strip())
    except Unauthorized:
        return page(
            request,
            "login.html",
            user=None,
            login_csrf=login_token(request),
            next=_safe_next(next),
            error="That key is not valid or has been revoked.",
            status_code=401,
        )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    settings = _settings(request)
    # Secure over HTTPS, and whenever people reach the dashboard by https (TLS ending at a proxy
    # that does not pass X-Forwarded-Proto must not downgrade the cookie).
    secure = request.url.scheme == "https" or settings.public_url.lower().startswith("https://")
    issue_session(resp, settings=settings, key=row, secure=secure)
    resp.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return resp


@ui.post("/logout")
def logout(user: UserDep, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session."""
    check_csrf(user, csrf)
    resp = RedirectResponse("/ui/login", status_code=303)
    clear_session(resp)
    return resp


@ui.get("/")
def overview_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    filters: WeekFiltersDep,
) -> Response:
    """This week against last week per theme, the stacked series, breakdowns, alerts, coverage."""
    taxonomy = _tax(request)
    week, start, end = filters.span(session)
    product, platform = filters.product, filters.platform
    summary = weekly_summary(
        session=session, taxonomy=taxonomy, week=week, product=product, platform=platform
    )
    weekly = _eight_weeks(session, taxonomy, filters, end=end, granularity="week")
    daily = _eight_weeks(session, taxonomy, filters, end=end, granularity="day")
    colors = charts.theme_colors(taxonomy.theme_keys)
    labels = {t.key: t.label for t in taxonomy.themes}
    sparks = {
        k: charts.sparkline(
            [p["themes"][k]["count"] for p in weekly["points"]],
            color=colors[k],
            label=f"{labels[k]}, posts per week, last 8 weeks",
        ).svg()
        for k in taxonomy.theme_keys
    }
    days = [p["start"][:10] for p in daily["points"]]
    markers = _release_markers(session, days, product)
    stacked = charts.stacked_columns(
        labels=[d[5:] for d in days],
        series={k: [p["themes"][k]["count"] for p in daily["points"]] for k in taxonomy.theme_keys},
        colors=colors,
        names=labels,
        markers=markers,
        label="posts per day by theme, last 8 weeks",
    ).svg()
    split = overview.breakdown(
        session=session, start=start, end=end, product=product, platform=platform
    )
    by_product = sorted(split["product"].items(), key=lambda kv: -kv[1].get("*", 0))
    by_platform = sorted(split["platform"].items(), key=lambda kv: -kv[1].get("*", 0))
    return page(
        request,
        "overview.html",
        user=user,
        **filters.nav(week),
        summary=summary,
        sparks=sparks,
        stacked=stacked,
        by_product=by_product,
        by_platform=by_platform,
        product_bars=charts.hbars(
            items=[(p, c.get("*", 0), "#0072B2") for p, c in by_product],
            label="posts per product this week",
        ).svg(),
        platform_bars=charts.hbars(
            items=[(p, c.get("*", 0), "#009E73") for p, c in by_platform],
            label="posts per platform this week",
        ).svg(),
        alerts=_unresolved(session),
        coverage=overview.coverage(session=session, start=start, end=end),
    )


def _eight_weeks(
    session: SessionDep,
    taxonomy: Taxonomy,
    filters: WeekFilters,
    *,
    end: datetime,
    granularity: str,
    themes: list[str] | None = None,
) -> dict[str, Any]:
    """The series the pages chart: the eight weeks up to ``end``, with the page's filters."""
    return series(
        session=session,
        taxonomy=taxonomy,
        themes=themes,
        product=filters.product,
        platform=filters.platform,
        granularity=granularity,
        start=end - timedelta(weeks=8),
        end=end,
    )


def _unresolved(session: SessionDep) -> list[dict[str, Any]]:
    items = []
    for status in ("open", "acknowledged"):
        items += list_alerts(session=session, status=status, limit=20)["items"]
    return sorted(items, key=lambda a: a["opened_at"], reverse=True)


def _alerts_between(
    session: SessionDep, start: datetime, end: datetime, theme: str | None = None
) -> list[dict[str, Any]]:
    items = list_alerts(session=session, theme=theme, since=start, limit=500)["items"]
    return sorted(
        (a for a in items if datetime.fromisoformat(a["opened_at"]) < end),
        key=lambda a: a["opened_at"],
    )


def _release_markers(
    session: SessionDep, days: list[str], product: str | None
) -> list[charts.Marker]:
    index = {d: i for i, d in enumerate(days)}
    out = []
    for r in list_releases(session=session):
        i = index.get(r.date.date().isoformat())
        if i is not None and (product is None or r.product == product):
            out.append(charts.Marker(i, r.title, "release"))
    return out


@ui.get("/themes/{theme}")
def theme_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    theme: str,
    filters: WeekFiltersDep,
) -> Response:
    """One theme: daily series with alert, release and model-version markers; top examples."""
    taxonomy = _tax(request)
    if theme not in taxonomy.theme_keys:
        raise NotFound(f"no theme {theme!r}")
    week, start, end = filters.span(session)
    data = _eight_weeks(session, taxonomy, filters, end=end, granularity="day", themes=[theme])
    days = [p["start"][:10] for p in data["points"]]
    index = {d: i for i, d in enumerate(days)}
    markers = _release_markers(session, days, filters.product)
    alerts = _alerts_between(session, end - timedelta(weeks=8), end, theme)
    for a in alerts:
        i = index.get(a["opened_at"][:10])
        if i is not None:
            markers.append(charts.Marker(i, f"alert #{a['id']} ({a['status']})", "alert"))
    for i, p in enumerate(data["points"]):
        if "model_version_changed_to" in p:
            markers.append(
                charts.Marker(i, f"model {p['model_version_changed_to'][:16]}", "version")
            )
    color = charts.theme_colors(taxonomy.theme_keys)[theme]
    chart = charts.line_chart(
        labels=[d[5:] for d in days],
        values=[p["themes"][theme]["count"] for p in data["points"]],
        color=color,
        markers=markers,
        label=f"{taxonomy.theme(theme).label}: posts per day",
    ).svg()
    share = charts.line_chart(
        labels=[d[5:] for d in days],
        values=[round(p["themes"][theme]["share"] * 100, 2) for p in data["points"]],
        color=color,
        height=160,
        label=f"{taxonomy.theme(theme).label}: share of posts per day (%)",
    ).svg()
    examples = overview.top_examples(
        session=session,
        taxonomy=taxonomy,
        theme=theme,
        start=start,
        end=end,
        product=filters.product,
    )
    return page(
        request,
        "theme.html",
        user=user,
        theme=taxonomy.theme(theme),
        **filters.nav(week),
        chart=chart,
        share_chart=share,
        markers=markers,
        alerts=alerts,
        versions=data["model_versions"],
        examples=examples,
    )


@ui.get("/posts")
def posts_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    theme: Opt = None,
    product: Opt = None,
    platform: Opt = None,
    since: Opt = None,
    until: Opt = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Posts with the labels in force, filtered by theme, product, platform, time and text."""
    taxonomy = _tax(request)
    filters = {
        "theme": _blank(theme),
        "product": _blank(product),
        "platform": _blank(platform),
        "since": _blank(since),
        "until": _blank(until),
        "q": _blank(q),
    }
    error: str | None = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    total = 0
    try:
        since_ts, until_ts = _when(filters["since"], "since"), _when(filters["until"], "until")
        result = list_posts(
            session=session,
            taxonomy=taxonomy,
            theme=filters["theme"],
            product=filters["product"],
            platform=filters["platform"],
            since=since_ts,
            until=until_ts,
            text=filters["q"],
            cursor=_blank(cursor),
            limit=50,
        )
        total = overview.count_posts(
            session=session,
            theme=filters["theme"],
            product=filters["product"],
            platform=filters["platform"],
            since=since_ts,
            until=until_ts,
            text=filters["q"],
        )
    except InvalidInput as e:
        error = e.detail
    query = {k: v for k, v in filters.items() if v}
    next_url = (
        "/ui/posts?" + urlencode({**query, "cursor": result["next_cursor"]})
        if result["next_cursor"]
        else None
    )
    return page(
        request,
        "posts.html",
        user=user,
        filters=filters,
        posts=result["items"],
        total=total,
        next_url=next_url,
        error=error,
        status_code=422 if error else 200,
    )


@ui.get("/review")
def review_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    theme: Opt = None,
    product: Opt = None,
    platform: Opt = None,
) -> Response:
    """Unreviewed posts the model is least sure of, for a reviewer (scope label)."""
    require(user.key, "label")
    version, thresholds = scoring_basis(_settings(request))
    filters = {"theme": _blank(theme), "product": _blank(product), "platform": _blank(platform)}
    error: str | None = None
    result: dict[str, Any] = {"items": [], "scanned": 0}
    try:
        result = review_queue(
            session=session,
            taxonomy=_tax(request),
            model_version=version,
            thresholds=thresholds,
            theme=filters["theme"],
            product=filters["product"],
            platform=filters["platform"],
            limit=50,
        )
    except InvalidInput as e:
        error = e.detail
    return page(
        request,
        "review.html",
        user=user,
        filters=filters,
        posts=result["items"],
        scanned=result["scanned"],
        error=error,
        status_code=422 if error else 200,
    )


@ui.get("/posts/{post_id}")
def post_page(request: Request, session: SessionDep, user: UserDep, post_id: int) -> Response:
    """One post in its thread, with labels, scores and evidence; reviewers may correct it."""
    post = get_post(session=session, post_id=post_id)
    return page(request, "post.html", user=user, post=post, saved=request.query_params.get("saved"))


@ui.post("/posts/{post_id}/labels")
def post_labels(
    request: Request,
    session: SessionDep,
    user: UserDep,
    post_id: int,
    csrf: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=16)] = "correct",
    themes: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    """Accept the labels shown or replace them (scope label); counts are recomputed at once."""
    check_csrf(user, csrf)
    require(user.key, "label")
    taxonomy = _tax(request)
    chosen = themes or []
    if action == "accept":
        chosen = get_post(session=session, post_id=post_id)["themes"]
    _, bucket = correct_labels(
        session=session,
        taxonomy=taxonomy,
        post_id=post_id,
        themes=chosen,
        products=None,
        author=f"key:{user.key.name}",
        note=_blank(note),
    )
    # Recompute the post's hour now so the reviewer sees the counts change on the next page.
    recompute_bucket(session, bucket)
    # Commit before answering: the session dependency's own commit runs after the response is
    # sent, and the browser follows the redirect at once.
    session.commit()
    return RedirectResponse(f"/ui/posts/{post_id}?saved=1", status_code=303)


@ui.get("/alerts")
def alerts_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved|all)$")] = None,
) -> Response:
    """Alerts, newest first, with why each opened."""
    rows = list_alerts(
        session=session, status=None if status in (None, "all") else status, limit=200
    )["items"]
    return page(request, "alerts.html", user=user, alerts=rows, status=status or "all")


@ui.get("/alerts/{alert_id}")
def alert_page(request: Request, session: SessionDep, user: UserDep, alert_id: int) -> Response:
    """One alert: observed against expected, window, tail probability, example posts."""
    alert = alert_detail(session=session, alert_id=alert_id)
    examples = alert["details"].get("examples") or []
    return page(request, "alert.html", user=user, alert=alert, examples=examples)


@ui.post("/alerts/{alert_id}/{action}")
def alert_action(
    request: Request,
    session: SessionDep,
    user: UserDep,
    alert_id: int,
    action: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Acknowledge or resolve an alert."""
    check_csrf(user, csrf)
    if action not in ("acknowledge", "resolve"):
        raise NotFound(f"no action {action!r}")
    require(user.key, "label")
    by = f"key:{user.key.name}"
    if action == "acknowledge":
        acknowledge_alert(session=session, alert_id=alert_id, by=by)
    else:
        resolve_alert(session=session, alert_id=alert_id, by=by)
    session.commit()  # before the redirect is followed (see post_labels)
    back = request.headers.get("referer", "")
    target = "/ui/alerts" if "/ui/alerts/" not in back else f"/ui/alerts/{alert_id}"
    return RedirectResponse(target, status_code=303)


@ui.get("/releases")
def releases_page(
    request: Request, session: SessionDep, user: UserDep, id: int | None = None
) -> Response:
    """Releases, and for one of them the comparison with earlier launches."""
    taxonomy = _tax(request)
    releases = [release_view(r) for r in list_releases(session=session)]
    chosen = id or (releases[-1]["id"] if releases else None)
    comparison, chart = None, None
    if chosen is not None:
        comparison = release_comparison(session=session, taxonomy=taxonomy, release_id=chosen)
        colors = charts.theme_colors(taxonomy.theme_keys)
        labels = {t.key: t.label for t in taxonomy.themes}
        daily = comparison["daily"]
        zero = next((i for i, d in enumerate(daily) if d["offset"] == 0), 0)
        chart = charts.stacked_columns(
            labels=[f"{d['offset']:+d}" for d in daily],
            series={k: [d["counts"][k] for d in daily] for k in taxonomy.theme_keys},
            colors=colors,
            names=labels,
            markers=[charts.Marker(zero, comparison["release"]["title"], "release")],
            label="posts per day around the release, by theme",
        ).svg()
    return page(
        request,
        "releases.html",
        user=user,
        releases=releases,
        chosen=chosen,
        comparison=comparison,
        chart=chart,
    )


@ui.get("/sources")
def sources_page(request: Request, session: SessionDep, user: UserDep) -> Response:
    """Every source's health and what it collected this week."""
    week = overview.latest_week(session=session)
    start = parse_week(week)
    return page(
        request,
        "sources.html",
        user=user,
        week=week,
        sources=source_status(session=session),
        coverage=overview.coverage(session=session, start=start, end=start + timedelta(days=7)),
    )


@ui.get("/exports")
def exports_page(request: Request, user: UserDep) -> Response:
    """A form for an export of labeled posts."""
    return page(request, "exports.html", user=user, formats=FORMATS)


@ui.get("/exports/download")
def export_download(
    request: Request,
    user: UserDep,
    format: Annotated[str, Query(max_length=16)] = "csv",
    theme: Opt = None,
    product: Opt = None,
    platform: Opt = None,
    since: Opt = None,
    until: Opt = None,
    handles: bool = False,
) -> Response:
    """Stream the export through the same function as GET /v1/exports (scope export)."""
    require(user.key, "export")
    if handles and not user.can("admin"):
        raise Forbidden("author handles need an admin key")
    platform = _blank(platform)
    # Checked before the stream starts, as the API's pattern does: a value the database
    # refuses (a NUL byte) would otherwise break the download after its 200 was sent.
    if platform and not re.fullmatch(PLATFORM, platform):
        raise InvalidInput(f"platform {platform!r} is not a platform name", param="platform")
    filters = ExportFilters(
        theme=_blank(theme),
        product=_blank(product),
        platform=platform,
        since=_when(since, "since"),
        until=_when(until, "until"),
    )
    return export_response(request, fmt=format, filters=filters, with_handle=handles)


@ui.get("/reports")
def reports_page(request: Request, user: UserDep) -> Response:
    """Weekly reports generated so far, newest first."""
    return page(
        request,
        "reports.html",
        user=user,
        reports=report.list_reports(root=report.reports_root(_settings(request))),
    )


@ui.get("/reports/{week}/{name}")
def report_file(request: Request, user: UserDep, week: str, name: str) -> Response:
    """One file of a stored report (HTML, Markdown, CSV or a PNG chart)."""
    path = report.report_file(root=report.reports_root(_settings(request)), week=week, name=name)
    headers: dict[str, Any] = {"X-Content-Type-Options": "nosniff"}
    if path.suffix == ".html":
        # The report is self-contained: inline SVG and styles, no script.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
        )
    return FileResponse(path, media_type=report.media_type(path), headers=headers)


router.include_router(ui)
