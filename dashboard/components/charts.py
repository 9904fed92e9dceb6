"""Plotly figures the pages share: golden metrics, breakdowns, trace waterfall, error budget.

Each takes data as the source returns it and only arranges it; no statistics here.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import plotly.graph_objects as go

from dashboard.components.graph_style import COLORS

_LAYOUT = dict(margin=dict(l=40, r=10, t=28, b=28), height=190, template="plotly_white",
               legend=dict(orientation="h", y=-0.25), font=dict(size=11))


def _times(series: dict[str, Any]) -> list[datetime]:
    return [datetime.fromtimestamp(t, tz=timezone.utc) for t in series.get("t", [])]


def golden(series: dict[str, Any] | None, title_prefix: str = "") -> list[go.Figure]:
    """Three small charts: request rate, error %, latency p50/p95/p99."""
    if not series:
        return []
    t = _times(series)
    rate = go.Figure(go.Scatter(x=t, y=series.get("rps", []), name="rps", line=dict(color="#2563eb")))
    rate.update_layout(title=f"{title_prefix}requests/s", **_LAYOUT)
    err = go.Figure(go.Scatter(x=t, y=series.get("error_pct", []), name="error %", line=dict(color=COLORS["failing"])))
    err.update_layout(title=f"{title_prefix}errors %", **_LAYOUT)
    lat = go.Figure([go.Scatter(x=t, y=series.get(k, []), name=k) for k in ("p50", "p95", "p99")])
    lat.update_layout(title=f"{title_prefix}latency ms", **_LAYOUT)
    return [rate, err, lat]


def by_version(per_version: dict[str, dict[str, Any]], metric: str, title: str) -> go.Figure:
    fig = go.Figure([go.Scatter(x=_times(s), y=s.get(metric, []), name=v) for v, s in sorted(per_version.items())])
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def breakdown(counts: dict[str, float], title: str) -> go.Figure:
    """Horizontal bars of rate per response code or response flag."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    colors = [COLORS["failing"] if str(k)[:1] in "45" or str(k).isalpha() else COLORS["healthy"] for k, _ in items]
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[str(k) for k, _ in items], orientation="h", marker_color=colors))
    fig.update_layout(title=title, **{**_LAYOUT, "height": 60 + 26 * max(1, len(items))})
    fig.update_xaxes(title_text="req/s")
    return fig


def waterfall(spans: list[dict[str, Any]]) -> go.Figure:
    """One bar per span, offset from the trace start, indented by depth, red when the span failed."""
    t0 = min(s["start_time"] for s in spans)
    # tick labels are right-aligned, so depth shows as a run of markers rather than an indent
    labels = [f"{'› ' * s.get('depth', 0)}{s['service_name']}: {s['name'][:60]} #{i}" for i, s in enumerate(spans)]
    fig = go.Figure(go.Bar(
        y=labels, x=[s["duration_ms"] for s in spans], base=[(s["start_time"] - t0) * 1000 for s in spans],
        orientation="h", customdata=[s["span_id"] for s in spans],
        marker_color=[COLORS["failing"] if s["status_code"] == "ERROR" else "#2563eb" for s in spans],
        hovertemplate="%{y}<br>start +%{base:.1f} ms, %{x:.1f} ms<extra></extra>"))
    fig.update_layout(**{**_LAYOUT, "height": 80 + 28 * len(spans), "margin": dict(l=10, r=10, t=10, b=30)})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title_text="ms since trace start")
    return fig


def budget(slo: dict[str, Any]) -> go.Figure:
    s = slo.get("budget_series") or {}
    fig = go.Figure(go.Scatter(x=_times(s), y=[100 * v for v in s.get("remaining", [])], fill="tozeroy",
                               name="budget remaining %", line=dict(color="#2563eb")))
    fig.update_layout(title=f"{slo.get('name')}: error budget remaining %", **_LAYOUT)
    fig.update_yaxes(range=[0, 100])
    return fig
