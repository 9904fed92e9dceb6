"""The findings timeline: one bar per finding from its onset to its end (or now), config changes as lines.

Seen on one time axis, "the errors started right after that DestinationRule
changed" needs no arithmetic; the bar starts at the current episode's onset
(`opened_at`, the one the changes are ranked against), not the first time the
finding was ever seen.
"""
from __future__ import annotations

import html as _html
from typing import Any

from dashboard.components.change_marks import mark, window_changes
from dashboard.components.charts import axis_time
from dashboard.components.graph_style import COLORS

SEVERITY_COLORS = {"error": COLORS["failing"], "warning": "#d97706", "info": "#2563eb"}
MAX_BARS = 40  # the most recent ones; the table below has every finding
MIN_SPAN_S = 600.0  # a short incident still shows the changes of the minutes before it


def _label(f: dict[str, Any]) -> str:
    r = f.get("resource") or {}
    where = f"{r.get('kind', '')} {r.get('namespace') or ''}/{r.get('name', '')}" if r else ""
    return f"{f.get('code', '')} {where}".strip()


def timeline(source: Any, findings: list[dict[str, Any]], now: float, span_s: float | None = None) -> dict[str, Any]:
    """A plotly figure dict: bars from onset to resolution (open ones to now), changes in the span marked.

    `span_s` (a page's chosen window) fixes the axis to [now - span_s, now] and keeps the findings that overlap it."""
    timed = [f for f in findings if f.get("opened_at") or f.get("first_seen")]
    if span_s:
        timed = [f for f in timed if not (f.get("status") == "resolved" and f.get("resolved_at")
                                          and float(f["resolved_at"]) < now - span_s)]
    timed.sort(key=lambda f: f.get("opened_at") or f["first_seen"])
    timed = timed[-MAX_BARS:]
    labels: list[str] = []
    for f in timed:  # two findings of one code on one object (another edge) stay two rows
        label, n = _label(f), 2
        base = label
        while label in labels:
            label, n = f"{base} ({n})", n + 1
        labels.append(label)
    data = []
    for f, label in zip(timed, labels):
        start = float(f.get("opened_at") or f["first_seen"])
        end = float(f.get("resolved_at") or now) if f.get("status") == "resolved" else now
        data.append({"type": "scatter", "mode": "lines", "x": [axis_time(start), axis_time(max(end, start + 1))],
                     "y": [_html.escape(label)] * 2, "name": _html.escape(label), "showlegend": False,
                     "line": {"width": 10, "color": SEVERITY_COLORS.get(f.get("severity"), "#6b7280")},
                     "opacity": 0.45 if f.get("status") == "resolved" else 1.0, "hoverinfo": "text",
                     "text": [_html.escape(f"{label}: {f.get('message', '')} ({f.get('status', '')})")] * 2})
    span_start = min((float(f.get("opened_at") or f["first_seen"]) for f in timed), default=now) - 60.0
    span_start = min(span_start, now - MIN_SPAN_S) if not span_s else now - span_s
    fig = {"data": data, "layout": {
        "height": max(140, 40 + 22 * len(timed)), "margin": {"l": 260, "r": 10, "t": 24, "b": 30},
        "title": {"text": "timeline (config changes dashed)", "x": 0.02, "font": {"size": 13}},
        "xaxis": {"range": [axis_time(span_start), axis_time(now)], "gridcolor": "#e5e7eb"},
        "yaxis": {"automargin": True, "autorange": "reversed"}, "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"size": 11, "color": "#374151"}}}
    return mark(fig, window_changes(source, span_start, now))
