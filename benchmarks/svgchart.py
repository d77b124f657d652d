"""Two small SVG charts, written by hand so the benchmark needs no plotting library.

* :func:`bar_panels`: one panel per case, a horizontal bar per contender at its
  median with a p10-p90 whisker; eyeshim's bars stand out.
* :func:`log_lines`: a line per contender over categories (the scaling
  scenario's N), on a logarithmic axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Optional

__all__ = ["Bar", "Panel", "bar_panels", "log_lines"]

FONT = "font-family='DejaVu Sans, Arial, sans-serif'"
EYESHIM = "#d9480f"
OTHER = "#4c6ef5"
COLORS = {
    "stock": "#868e96",
    "eyeshim": EYESHIM,
    "eyeshim (history)": "#f59f00",
    "asyncio": "#4c6ef5",
    "aiohappyeyeballs": "#15aabf",
    "urllib3.future": "#7048e8",
    "curl": "#37b24d",
}


class Bar:
    def __init__(self, label: str, median: float, low: float, high: float) -> None:
        self.label, self.median, self.low, self.high = label, median, low, high


class Panel:
    def __init__(self, title: str, unit: str, bars: Sequence[Bar]) -> None:
        self.title, self.unit, self.bars = title, unit, list(bars)


def _text(x: float, y: float, content: str, size: int = 12, anchor: str = "start",
          weight: str = "normal", fill: str = "#212529") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}'>{escape(content)}</text>")


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def bar_panels(title: str, panels: Sequence[Panel], width: int = 760) -> str:
    label_w, value_w, row_h, top = 190, 130, 20, 40
    plot_w = width - label_w - value_w - 20
    parts: list[str] = []
    y = top
    for panel in panels:
        if not panel.bars:
            continue
        parts.append(_text(10, y + 14, f"{panel.title} ({panel.unit})", 13, weight="bold"))
        y += 24
        scale_max = max(max(b.high, b.median) for b in panel.bars) or 1.0
        for bar in panel.bars:
            color = EYESHIM if bar.label.startswith("eyeshim") else OTHER
            w = plot_w * bar.median / scale_max
            x0 = label_w
            parts.append(_text(label_w - 8, y + 14, bar.label, 12, anchor="end"))
            parts.append(f"<rect x='{x0}' y='{y + 3}' width='{max(w, 1):.1f}' height='{row_h - 6}'"
                         f" fill='{color}' opacity='0.85'/>")
            lo = x0 + plot_w * bar.low / scale_max
            hi = x0 + plot_w * bar.high / scale_max
            mid = y + row_h / 2
            parts.append(f"<line x1='{lo:.1f}' y1='{mid:.1f}' x2='{hi:.1f}' y2='{mid:.1f}' "
                         "stroke='#212529' stroke-width='1.2'/>")
            for edge in (lo, hi):
                parts.append(f"<line x1='{edge:.1f}' y1='{mid - 4:.1f}' x2='{edge:.1f}' "
                             f"y2='{mid + 4:.1f}' stroke='#212529' stroke-width='1.2'/>")
            parts.append(_text(x0 + plot_w + 8, y + 14, _fmt(bar.median), 12))
            y += row_h
        y += 14
    height = y + 10
    head = _text(10, 22, title, 15, weight="bold")
    note = _text(width - 10, 22, "bar: median, whisker: p10-p90", 11, anchor="end",
                 fill="#495057")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'><rect width='100%' height='100%' fill='white'/>"
            + head + note + "".join(parts) + "</svg>\n")


def log_lines(title: str, unit: str, categories: Sequence[str],
              series: dict[str, Sequence[Optional[float]]], width: int = 760,
              height: int = 380) -> str:
    left, right, top, bottom = 70, 170, 56, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series.values() for v in s if v is not None and v > 0]
    if not values:
        return ""
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    span = math.log10(hi) - math.log10(lo) or 1.0

    def ypos(v: float) -> float:
        return top + plot_h * (1 - (math.log10(v) - math.log10(lo)) / span)

    def xpos(i: int) -> float:
        return left + plot_w * (i / max(len(categories) - 1, 1))

    parts = [_text(10, 22, title, 15, weight="bold")]
    decade = lo
    while decade <= hi * 1.0001:
        yy = ypos(decade)
        parts.append(f"<line x1='{left}' y1='{yy:.1f}' x2='{left + plot_w}' y2='{yy:.1f}' "
                     "stroke='#dee2e6'/>")
        parts.append(_text(left - 6, yy + 4, _fmt(decade), 11, anchor="end"))
        decade *= 10
    for i, category in enumerate(categories):
        parts.append(_text(xpos(i), top + plot_h + 18, category, 12, anchor="middle"))
    parts.append(_text(left + plot_w / 2, height - 10, "addresses (N)", 12, anchor="middle"))
    parts.append(_text(14, top - 10, unit, 11))
    for k, (name, points) in enumerate(series.items()):
        color = COLORS.get(name, "#e64980")
        coords = [(xpos(i), ypos(v)) for i, v in enumerate(points) if v is not None and v > 0]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        dash = " stroke-dasharray='5,3'" if "history" in name else ""
        parts.append(f"<polyline points='{path}' fill='none' stroke='{color}' "
                     f"stroke-width='2'{dash}/>")
        for x, y in coords:
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{color}'/>")
        ly = top + 14 + 18 * k
        parts.append(f"<line x1='{left + plot_w + 14}' y1='{ly - 4}' x2='{left + plot_w + 34}' "
                     f"y2='{ly - 4}' stroke='{color}' stroke-width='2'{dash}/>")
        parts.append(_text(left + plot_w + 40, ly, name, 12))
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'><rect width='100%' height='100%' fill='white'/>"
            + "".join(parts) + "</svg>\n")
