"""Small static SVG charts (error budget over time) that HTML and PDF both embed inline."""
from __future__ import annotations

from html import escape
from typing import Any

from diagnose.reports.view import HEALTH_COLORS, when


def budget_chart_svg(series: list[Any], width: int = 300, height: int = 84, title: str = "") -> str:
    """Remaining error budget (1 = untouched, 0 = spent, below 0 = overspent) against time."""
    pts = []
    for p in series or []:
        try:
            t, v = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            continue  # a malformed point is skipped, the rest is still drawn
        pts.append((t, v))
    label = escape(title or "error budget remaining")
    if len(pts) < 2:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}">'
                f'<text x="8" y="{height // 2}" font-size="11" fill="#6a6e73">not enough history</text></svg>')
    pts.sort()
    left, right, top, bottom = 34, 6, 6, 18
    t0, t1 = pts[0][0], pts[-1][0]
    lo, hi = min(0.0, min(v for _, v in pts)), max(1.0, max(v for _, v in pts))
    def x(t: float) -> float:
        return left + (t - t0) / ((t1 - t0) or 1) * (width - left - right)
    def y(v: float) -> float:
        return top + (hi - v) / ((hi - lo) or 1) * (height - top - bottom)
    last = pts[-1][1]
    color = HEALTH_COLORS["failing"] if last <= 0 else HEALTH_COLORS["degraded"] if last < 0.25 else HEALTH_COLORS["healthy"]
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
    area = f"{x(t0):.1f},{y(0):.1f} {line} {x(t1):.1f},{y(0):.1f}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}" class="budget-chart" font-family="sans-serif"><title>{label}</title>'
        f'<line x1="{left}" y1="{y(1):.1f}" x2="{width - right}" y2="{y(1):.1f}" stroke="#d2d2d2" stroke-dasharray="2,2"/>'
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#6a6e73"/>'
        f'<polygon points="{area}" fill="{color}" opacity="0.18"/>'
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.8"/>'
        f'<text x="{left - 3}" y="{y(1) + 4:.1f}" font-size="9" text-anchor="end" fill="#6a6e73">100%</text>'
        f'<text x="{left - 3}" y="{y(0) + 4:.1f}" font-size="9" text-anchor="end" fill="#6a6e73">0%</text>'
        f'<text x="{left}" y="{height - 4}" font-size="9" fill="#6a6e73">{escape(when(t0)[5:16])}</text>'
        f'<text x="{width - right}" y="{height - 4}" font-size="9" text-anchor="end" fill="#6a6e73">{escape(when(t1)[5:16])}</text>'
        "</svg>"
    )
