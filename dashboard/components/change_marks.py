"""Config changes on time axes and beside the things they touched (issue #14).

Every chart with a time axis gets a dashed line at each config change inside its
range (hover names the object, the field change and who made it), so "the error
rate rose right after X changed" is seen, not worked out. The side panel lists
what changed around the clicked node or edge, ranked by the same rules that rank
changes against findings (diagnose.changes), so both agree on "related".
All text a change carries is untrusted (names, values, who): it is escaped for
plotly's HTML-ish labels, and Dash renders the rest as text.
"""
from __future__ import annotations

import html as _html
from datetime import datetime, timezone
from typing import Any

from dash import html

from dashboard.components.charts import axis_time
from diagnose.changes import rank
from mesh.journal import summary

MAX_MARKS = 30  # more lines than this on one chart hide the data; the Changes page has them all
MARK_COLOR = "#7c3aed"


def window_changes(source: Any, start: float, end: float, limit: int = 200) -> list[dict[str, Any]]:
    """The journal's changes in [start, end] (gap markers included: a gap is worth seeing on an axis);
    [] when the source keeps no journal or it cannot answer (a marker is a hint, never a reason to fail a page)."""
    changes = getattr(source, "changes", None)
    if changes is None:
        return []
    try:
        rows = changes(since=start, until=end, limit=limit)
    except Exception:  # noqa: BLE001 - Unavailable, a broken journal: the chart still draws
        return []
    return [c for c in rows if not c.get("initial") and start <= float(c.get("time") or 0.0) <= end]


def ref_of(ch: dict[str, Any]) -> str:
    ns = ch.get("namespace")
    return f"{ch.get('kind')} {ns}/{ch.get('name')}" if ns else f"{ch.get('kind')} {ch.get('name')}"


def _label(ch: dict[str, Any]) -> str:
    if ch.get("op") == "gap":
        return "watch gap: changes may be missing here"
    by = f" by {ch['who']}" if ch.get("who") else ""
    return f"{ch.get('op')} {ref_of(ch)}: {summary(ch)}{by}"


def mark(figure: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Add a dashed vertical line per change (and a hover point naming it) to a plotly figure dict whose x axis
    is time (ISO strings, as dashboard.components.charts draws them). Returns the figure (changed in place)."""
    shown = sorted(changes, key=lambda c: float(c.get("time") or 0.0))[-MAX_MARKS:]
    if not shown:
        return figure
    layout = figure.setdefault("layout", {})
    shapes = list(layout.get("shapes") or [])
    for ch in shown:
        gap = ch.get("op") == "gap"
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": axis_time(ch["time"]), "x1": axis_time(ch["time"]),
                       "y0": 0, "y1": 1, "line": {"color": "#9ca3af" if gap else MARK_COLOR, "width": 1,
                                                  "dash": "dot" if gap else "dash"}})
    layout["shapes"] = shapes
    # the hover text rides on invisible points at the top of the plot (shapes have no hover of their own)
    figure.setdefault("data", []).append({
        "type": "scatter", "mode": "markers", "name": "config changes", "x": [axis_time(c["time"]) for c in shown],
        "y": [1.0] * len(shown), "yaxis": "y99", "showlegend": False, "hoverinfo": "text",
        "text": [_html.escape(_label(c)) for c in shown],
        "marker": {"symbol": "triangle-down", "size": 9, "color": MARK_COLOR}})
    layout["yaxis99"] = {"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True}
    return figure


def _scope_finding(data: dict[str, Any], is_edge: bool) -> dict[str, Any]:
    """The clicked element as the shape of finding diagnose.changes ranks against: its service and workloads."""
    if is_edge:
        app, ns = data.get("target_app") or "", data.get("target_namespace") or data.get("namespace") or ""
        workloads = [str(x) for x in (data.get("source_label"), data.get("target_label")) if x]
    else:
        app, ns = data.get("app") or data.get("name") or "", data.get("namespace") or ""
        workloads = [str(data.get("name") or "")]
    host = f"{app}.{ns}.svc.cluster.local" if app and ns else ""
    return {"resource": {"kind": "Service", "name": app, "namespace": ns} if app else None, "related": [],
            "evidence": {"edge_key": host, "edges": [{"workload": w} for w in workloads if w]}}


def related_changes(source: Any, data: dict[str, Any], is_edge: bool, start: float, end: float,
                    top: int = 5) -> list[dict[str, Any]]:
    """Changes in [start, end] touching the element (its service, host, workloads or namespace), most direct first."""
    rows = [c for c in window_changes(source, start, end, limit=2000) if c.get("op") != "gap"]
    if not rows:
        return []
    ranked = rank(_scope_finding(data, is_edge), rows, onset=end, lookback_s=end - start, top=len(rows))
    return [r for r in ranked if r["tier"] >= 2][:top]


def what_changed(source: Any, data: dict[str, Any], is_edge: bool, start: float, end: float) -> list[Any]:
    """The side panel's "What changed" section: related changes in the window, or a plain 'none'."""
    found = related_changes(source, data, is_edge, start, end)
    out: list[Any] = [html.H4(f"What changed ({len(found)})")]
    if not found:
        out.append(html.P("No config change touching this in the window.", className="muted", id="panel-changes"))
        return out
    out.append(html.Ul(id="panel-changes", children=[html.Li([
        html.Span(datetime.fromtimestamp(r["time"], tz=timezone.utc).strftime("%H:%M:%S"), className="muted"), " ",
        html.B(f"{r['op']} {r['ref']}"), f" ({r['relation']}): {r['summary']}",
        html.Span(f" by {r['who']}" if r.get("who") else "", className="muted")]) for r in found]))
    return out


def _x_range(figures: list[dict[str, Any]]) -> tuple[float, float] | None:
    xs: list[float] = []
    for fig in figures:
        for trace in fig.get("data") or []:
            for x in (trace.get("x") or [])[:1] + (trace.get("x") or [])[-1:]:
                try:
                    xs.append(datetime.fromisoformat(str(x)).timestamp())
                except ValueError:
                    continue
    return (min(xs), max(xs)) if xs else None


def mark_figures(source: Any, figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the changes inside the figures' common time range on each (one journal query for all of them)."""
    span = _x_range(figures)
    if span is None:
        return figures
    changes = window_changes(source, *span)
    for fig in figures:
        mark(fig, changes)
    return figures
