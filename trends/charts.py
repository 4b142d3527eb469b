"""Charts drawn on the server: SVG for the dashboard and web report, PNG for email (stdlib only).

A chart is first laid out as shapes (rectangles, lines, text); SVG renders all of them, the PNG
rasterizer renders rectangles and lines (mail clients strip inline SVG, and a few kilobytes of
PNG need no imaging library). Every text that reaches SVG goes through ``html.escape``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; one per theme.
OKABE_ITO = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#F0E442",
    "#000000",
)
GRID = "#d0d4da"
INK = "#333a44"
ALERT = "#D55E00"
RELEASE = "#0072B2"
VERSION = "#7a7f87"


def theme_colors(theme_keys: Sequence[str]) -> dict[str, str]:
    """A stable colour per theme, in taxonomy order."""
    return {k: OKABE_ITO[i % len(OKABE_ITO)] for i, k in enumerate(theme_keys)}


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str = ""


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float = 1.0
    dash: str = ""
    title: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    size: int = 11
    fill: str = INK


@dataclass
class Chart:
    width: int
    height: int
    label: str
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    paths: list[tuple[str, str, float]] = field(default_factory=list)  # (d, stroke, width)
    css_class: str = "chart"

    def svg(self) -> str:
        """The chart as an inline SVG element (responsive: it scales to its container)."""
        out = [
            f'<svg class="{escape(self.css_class)}" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" preserveAspectRatio="xMinYMin meet" '
            f'role="img" aria-label="{escape(self.label)}" xmlns="http://www.w3.org/2000/svg">'
        ]
        for r in self.rects:
            tip = f"<title>{escape(r.title)}</title>" if r.title else ""
            out.append(
                f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{max(r.w, 0):.1f}" '
                f'height="{max(r.h, 0):.1f}" fill="{r.fill}">{tip}</rect>'
            )
        for ln in self.lines:
            dash = f' stroke-dasharray="{ln.dash}"' if ln.dash else ""
            tip = f"<title>{escape(ln.title)}</title>" if ln.title else ""
            out.append(
                f'<line x1="{ln.x1:.1f}" y1="{ln.y1:.1f}" x2="{ln.x2:.1f}" y2="{ln.y2:.1f}" '
                f'stroke="{ln.stroke}" stroke-width="{ln.width}"{dash}>{tip}</line>'
            )
        for d, stroke, width in self.paths:
            out.append(
                f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}" '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        for t in self.texts:
            out.append(
                f'<text x="{t.x:.1f}" y="{t.y:.1f}" text-anchor="{t.anchor}" '
                f'font-size="{t.size}" fill="{t.fill}">{escape(t.text)}</text>'
            )
        out.append("</svg>")
        return "".join(out)

    def png(self, scale: int = 1) -> bytes:
        """The rectangles and lines as a PNG (text is left to the surrounding HTML)."""
        w, h = self.width * scale, self.height * scale
        canvas = bytearray(b"\xff" * (w * h * 3))

        def fill(x0: float, y0: float, x1: float, y1: float, rgb: bytes) -> None:
            xa, xb = max(0, round(x0 * scale)), min(w, round(x1 * scale))
            ya, yb = max(0, round(y0 * scale)), min(h, round(y1 * scale))
            if xb <= xa or yb <= ya:
                return
            row = rgb * (xb - xa)
            for y in range(ya, yb):
                start = (y * w + xa) * 3
                canvas[start : start + len(row)] = row

        for r in self.rects:
            fill(r.x, r.y, r.x + max(r.w, 0), r.y + max(r.h, 0), _rgb(r.fill))
        for ln in self.lines:
            half = max(ln.width, 1) / 2
            fill(
                min(ln.x1, ln.x2) - half,
                min(ln.y1, ln.y2) - half,
                max(ln.x1, ln.x2) + half,
                max(ln.y1, ln.y2) + half,
                _rgb(ln.stroke),
            )
        raw = b"".join(b"\x00" + bytes(canvas[y * w * 3 : (y + 1) * w * 3]) for y in range(h))
        return _png(w, h, raw)


def _rgb(color: str) -> bytes:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return bytes.fromhex(c[:6])


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if v <= step:
            return float(step)
    return float(int(v * 1.1) + 1)


def sparkline(values: Sequence[float], *, color: str, label: str, width: int = 110) -> Chart:
    """A small line of ``values`` with the last point marked; flat when all are zero."""
    height, pad = 26, 3
    chart = Chart(width, height, label, css_class="spark")
    n = len(values)
    if n == 0:
        return chart
    top = max(values) or 1.0
    step = (width - 2 * pad) / max(n - 1, 1)
    pts = [
        (pad + i * step, height - pad - (v / top) * (height - 2 * pad))
        for i, v in enumerate(values)
    ]
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    chart.lines.append(Line(pad, height - pad, width - pad, height - pad, GRID, 1))
    chart.paths.append((d, color, 1.8))
    x, y = pts[-1]
    chart.rects.append(Rect(x - 2, y - 2, 4, 4, color, f"{values[-1]:g}"))
    return chart


@dataclass(frozen=True)
class Marker:
    """A vertical mark on a time chart at bucket ``index``."""

    index: float
    label: str
    kind: str  # "release" | "alert" | "version"


_MARK_STYLE = {"release": (RELEASE, "5,3"), "alert": (ALERT, ""), "version": (VERSION, "2,3")}


def stacked_columns(
    *,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    colors: dict[str, str],
    names: dict[str, str] | None = None,
    markers: Sequence[Marker] = (),
    width: int = 760,
    height: int = 260,
    label: str = "stacked series",
) -> Chart:
    """One column per bucket, stacked by series key (legend is left to the page)."""
    left, right, top, bottom = 40, 10, 14, 34
    chart = Chart(width, height, label, css_class="chart wide")
    n = len(labels)
    totals = [sum(float(s[i]) for s in series.values()) for i in range(n)]
    ymax = _nice_max(max(totals, default=0))
    plot_w, plot_h = width - left - right, height - top - bottom
    _axes(chart, left, top, plot_w, plot_h, ymax)
    if n == 0:
        return chart
    slot = plot_w / n
    bar = max(1.0, slot * 0.78)
    for i in range(n):
        y: float = top + plot_h
        for key, values in series.items():
            v = float(values[i])
            if v <= 0:
                continue
            h = v / ymax * plot_h
            y -= h
            name = (names or {}).get(key, key)
            chart.rects.append(
                Rect(
                    left + i * slot + (slot - bar) / 2,
                    y,
                    bar,
                    h,
                    colors[key],
                    f"{labels[i]} {name}: {v:g}",
                )
            )
    _x_ticks(chart, labels, left, top + plot_h, slot)
    _markers(chart, markers, left, top, slot, plot_h)
    return chart


def line_chart(
    *,
    labels: Sequence[str],
    values: Sequence[float],
    color: str,
    markers: Sequence[Marker] = (),
    width: int = 760,
    height: int = 240,
    label: str = "series",
) -> Chart:
    """Columns of ``values`` with a line over them and vertical markers (releases, alerts, versions)."""
    left, right, top, bottom = 40, 10, 14, 34
    chart = Chart(width, height, label, css_class="chart wide")
    n = len(labels)
    ymax = _nice_max(max(values, default=0))
    plot_w, plot_h = width - left - right, height - top - bottom
    _axes(chart, left, top, plot_w, plot_h, ymax)
    if n == 0:
        return chart
    slot = plot_w / n
    bar = max(1.0, slot * 0.7)
    pts = []
    for i, v in enumerate(values):
        h = float(v) / ymax * plot_h
        x = left + i * slot
        chart.rects.append(
            Rect(
                x + (slot - bar) / 2, top + plot_h - h, bar, h, color + "55", f"{labels[i]}: {v:g}"
            )
        )
        pts.append((x + slot / 2, top + plot_h - h))
    chart.paths.append(("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts), color, 2))
    _x_ticks(chart, labels, left, top + plot_h, slot)
    _markers(chart, markers, left, top, slot, plot_h)
    return chart


def hbars(
    *,
    items: Sequence[tuple[str, float, str]],
    width: int = 360,
    label: str = "bars",
    fmt: str = "{:g}",
) -> Chart:
    """Horizontal bars: (name, value, colour) per row, value printed at the end."""
    row, left, right = 22, 110, 50
    height = max(row * len(items) + 8, 30)
    chart = Chart(width, height, label, css_class="chart bars")
    top = max((v for _, v, _ in items), default=0) or 1.0
    plot_w = width - left - right
    for i, (name, value, color) in enumerate(items):
        y = 4 + i * row
        chart.texts.append(Text(left - 6, y + 14, name, anchor="end"))
        w = max(value / top * plot_w, 1.0 if value else 0.0)
        chart.rects.append(Rect(left, y + 3, w, row - 8, color, f"{name}: {fmt.format(value)}"))
        chart.texts.append(Text(left + w + 4, y + 14, fmt.format(value)))
    return chart


def paired_bars(
    *,
    items: Sequence[tuple[str, float, float, str]],
    width: int = 560,
    label: str = "this week against last week",
) -> Chart:
    """Per row a pale bar for last week and a full bar for this week (values are shares, 0-1)."""
    row, left, right = 28, 170, 60
    height = max(row * len(items) + 8, 30)
    chart = Chart(width, height, label, css_class="chart bars")
    top = max((max(a, b) for _, a, b, _ in items), default=0) or 1.0
    plot_w = width - left - right
    for i, (name, prev, cur, color) in enumerate(items):
        y = 4 + i * row
        chart.texts.append(Text(left - 6, y + 17, name, anchor="end"))
        chart.rects.append(
            Rect(left, y + 3, prev / top * plot_w, 8, "#bfc5cc", f"{name} last week: {prev:.1%}")
        )
        chart.rects.append(
            Rect(
                left,
                y + 12,
                max(cur / top * plot_w, 1.0 if cur else 0),
                11,
                color,
                f"{name} this week: {cur:.1%}",
            )
        )
        chart.texts.append(Text(left + cur / top * plot_w + 4, y + 22, f"{cur:.1%}"))
    return chart


def _axes(chart: Chart, left: float, top: float, plot_w: float, plot_h: float, ymax: float) -> None:
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h - frac * plot_h
        chart.lines.append(Line(left, y, left + plot_w, y, GRID, 1))
        chart.texts.append(Text(left - 4, y + 4, f"{ymax * frac:g}", anchor="end", size=10))


def _x_ticks(chart: Chart, labels: Sequence[str], left: float, base: float, slot: float) -> None:
    n = len(labels)
    every = max(1, round(n / 8))
    for i in range(0, n, every):
        chart.texts.append(
            Text(left + i * slot + slot / 2, base + 14, labels[i], anchor="middle", size=10)
        )


def _markers(
    chart: Chart, markers: Sequence[Marker], left: float, top: float, slot: float, plot_h: float
) -> None:
    for m in markers:
        color, dash = _MARK_STYLE.get(m.kind, (INK, ""))
        x = left + m.index * slot + slot / 2
        chart.lines.append(Line(x, top, x, top + plot_h, color, 2, dash, f"{m.kind}: {m.label}"))
        if m.kind == "alert":
            chart.rects.append(Rect(x - 4, top - 6, 8, 8, color, f"alert: {m.label}"))
        else:
            chart.texts.append(Text(x + 3, top + plot_h + 28, m.label[:24], size=9, fill=color))
