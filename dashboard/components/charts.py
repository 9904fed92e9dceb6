"""Plotly figures the pages share: golden metrics, breakdowns, trace waterfall, error budget.

Each takes data as the source returns it and only arranges it; no statistics here.
Plotly reads titles, trace names and category labels as HTML of its own (`<a href>`,
`<b>`, `<span style>`), and span names carry request paths anyone can send: every text
that comes from data is escaped here (`_text`), so it shows as written.
Figures are plain dicts, not `plotly.graph_objects`: building validated figure
objects cost 50-80 ms each, most of a side-panel click; plotly.js validates anyway.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

from dashboard.components.graph_style import COLORS

Figure = dict[str, Any]
DEPTH_MARK = "\u203a "  # one per level of call depth in the waterfall
_AXIS = {"gridcolor": "#e5e7eb", "zerolinecolor": "#d1d5db", "linecolor": "#d1d5db"}


def _text(value: Any) -> str:
    """Data as text Plotly shows literally (its `<a href>`/`<b>` markup escaped)."""
    return html.escape(str(value), quote=False)


def _layout(title: str | None = None, height: int = 190, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "margin": {"l": 40, "r": 10, "t": 28, "b": 40}, "height": height, "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff", "font": {"size": 11, "color": "#374151"}, "legend": {"orientation": "h", "y": -0.25},
        "xaxis": dict(_AXIS), "yaxis": dict(_AXIS)}
    if title:
        layout["title"] = {"text": _text(title), "x": 0.02, "font": {"size": 13}}
    for key, value in extra.items():
        layout[key] = {**layout.get(key, {}), **value} if isinstance(value, dict) else value
    return layout


def axis_time(t: float) -> str:
    """An epoch second as the charts' time-axis value (ISO 8601, UTC), so marks and lines share one axis."""
    return datetime.fromtimestamp(float(t), tz=timezone.utc).isoformat()


def _times(series: dict[str, Any]) -> list[str]:
    return [axis_time(t) for t in series.get("t", [])]


def _line(x: list, y: list, name: str, color: str | None = None, **extra: Any) -> dict[str, Any]:
    trace = {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": _text(name), **extra}
    if color:
        trace["line"] = {"color": color}
    return trace


def golden(series: dict[str, Any] | None, title_prefix: str = "") -> list[Figure]:
    """Request rate, error % and latency p50/p95/p99 stacked on one time axis.

    One figure with three rows, not three figures: plotly.js pays its setup once, so a
    side-panel click draws in about a third of the time, and the rows line up in time.
    """
    if not series:
        return []
    t = _times(series)
    traces = [_line(t, series.get("rps", []), "requests/s", "#2563eb", yaxis="y3"),
              _line(t, series.get("error_pct", []), "errors %", COLORS["failing"], yaxis="y2"),
              *[_line(t, series.get(k, []), f"{k} ms", c) for k, c in (("p50", "#16a34a"), ("p95", "#d97706"),
                                                                          ("p99", "#7c3aed"))]]
    layout = _layout(f"{title_prefix}requests/s, errors %, latency ms", height=380)
    layout.update({"yaxis": {**_AXIS, "domain": [0.0, 0.28], "title": {"text": "ms"}},
                   "yaxis2": {**_AXIS, "domain": [0.36, 0.64], "title": {"text": "err %"}, "rangemode": "tozero"},
                   "yaxis3": {**_AXIS, "domain": [0.72, 1.0], "title": {"text": "rps"}, "rangemode": "tozero"},
                   "legend": {"orientation": "h", "y": -0.12}})
    return [{"data": traces, "layout": layout}]


def by_version(per_version: dict[str, dict[str, Any]], metric: str, title: str) -> Figure:
    return {"data": [_line(_times(s), s.get(metric, []), v) for v, s in sorted(per_version.items())],
            "layout": _layout(title)}


def breakdown(counts: dict[str, float], title: str) -> Figure:
    """Horizontal bars of rate per response code (class) or response flag."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    colors = [COLORS["failing"] if str(k)[:1] in "45-" or str(k).isalpha() else COLORS["healthy"] for k, _ in items]
    return {"data": [{"type": "bar", "orientation": "h", "x": [v for _, v in items], "y": [_text(k) for k, _ in items],
                      "marker": {"color": colors}}],
            "layout": _layout(title, height=60 + 26 * max(1, len(items)), xaxis={"title": {"text": "req/s"}},
                              yaxis={"type": "category"})}


def waterfall(spans: list[dict[str, Any]]) -> Figure:
    """One bar per span, offset from the trace start, red when the span failed.

    Tick labels are right-aligned, so call depth shows as a run of markers rather than an indent.
    """
    t0 = min(s["start_time"] for s in spans)
    labels = [_text(f"{DEPTH_MARK * s.get('depth', 0)}{'(parent missing) ' if s.get('orphan') else ''}"
                    f"{s['service_name']}: {s['name'][:60]} #{i}") for i, s in enumerate(spans)]
    bars = {"type": "bar", "orientation": "h", "y": labels, "x": [s["duration_ms"] for s in spans],
            "base": [(s["start_time"] - t0) * 1000 for s in spans], "customdata": [s["span_id"] for s in spans],
            "marker": {"color": [COLORS["failing"] if s["status_code"] == "ERROR" else "#2563eb" for s in spans]},
            "hovertemplate": "%{y}<br>start +%{base:.1f} ms, %{x:.1f} ms<extra></extra>"}
    return {"data": [bars], "layout": _layout(None, height=80 + 28 * len(spans), margin={"l": 10, "r": 10, "t": 10, "b": 30},
                                              yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
                                              xaxis={"title": {"text": "ms since trace start"}})}


def budget(slo: dict[str, Any]) -> Figure:
    """Budget remaining over time; the series is [[t, remaining], ...] (SLO engine) or {"t": [...], "remaining": [...]}."""
    raw = slo.get("budget_series") or []
    if isinstance(raw, dict):
        t, remaining = raw.get("t", []), raw.get("remaining", [])
    else:
        t, remaining = [p[0] for p in raw], [p[1] for p in raw]
    y = [None if v is None else 100 * v for v in remaining]
    area = _line(_times({"t": t}), y, "budget remaining %", "#2563eb", fill="tozeroy")
    low = min([v for v in y if v is not None] or [0.0])
    return {"data": [area], "layout": _layout(f"{slo.get('name')}: error budget remaining %",
                                              yaxis={"range": [min(0.0, low), 100]})}
