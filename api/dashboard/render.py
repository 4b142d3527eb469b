"""Jinja2 rendering for the dashboard: autoescape on, a few filters, the shared page context."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from api.dashboard.auth import DashboardUser
from core.taxonomy import Taxonomy
from trends.charts import theme_colors

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html", "svg"), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def _signed(v: float | None, unit: str = "") -> str:
    return "–" if v is None else f"{v:+.1f}{unit}"


def _when(v: datetime | str | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v.strftime("%Y-%m-%d %H:%M UTC")


def highlight(text: str, phrases: list[str] | None) -> Markup:
    """``text`` escaped, with the evidence phrases wrapped in <mark> (phrases escaped too)."""
    words = sorted({p for p in (phrases or []) if p and p.strip()}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(Markup("<mark>") + escape(m.group(0)) + Markup("</mark>"))
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


env.filters["pct"] = _pct
env.filters["signed"] = _signed
env.filters["when"] = _when
env.globals["highlight"] = highlight


def svg(chart_svg: str) -> Markup:
    """A chart drawn by trends.charts (which escapes every text it places) as markup."""
    return Markup(chart_svg)  # noqa: S704 - trends.charts escapes all text it emits


env.globals["svg"] = svg


def page(
    request: Request,
    template: str,
    *,
    user: DashboardUser | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the shared context (user, CSRF token, taxonomy and colours)."""
    taxonomy: Taxonomy = request.app.state.taxonomy
    html = env.get_template(template).render(
        request=request,
        user=user,
        csrf=user.csrf if user else "",
        themes=taxonomy.themes,
        theme_labels={t.key: t.label for t in taxonomy.themes},
        colors=theme_colors(taxonomy.theme_keys),
        products=taxonomy.products,
        platforms=("reddit", "hackernews", "bluesky", "mastodon", "x", "rss"),
        path=request.url.path,
        **context,
    )
    headers = {
        # Everything is served from here: no CDN, no inline script, no framing by other sites.
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)
