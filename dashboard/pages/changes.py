"""Changes: the config journal as a timeline, filtered by window, namespace, kind and name.

Each entry opens to its diff as YAML (removed lines marked `-`, added `+`), so
"what changed?" is answered without leaving the UI. Gap markers say where the
journal may have missed changes. Every string is data to Dash, never markup.
"""
from __future__ import annotations

import difflib
from datetime import datetime, timezone
from typing import Any

import yaml
from dash import Input, Output, dcc, html

from dashboard.query import DataSource, Unavailable

PATH = "/changes"
TITLE = "Changes"
WINDOWS = {"15 min": 900, "1 h": 3600, "6 h": 6 * 3600, "24 h": 86400, "7 d": 7 * 86400}
DEFAULT_WINDOW = 86400
LIMIT = 500


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def diff_lines(change: dict[str, Any]) -> list[tuple[str, str]]:
    """(mark, text) per YAML line of before -> after; mark is '-', '+' or ' '."""
    before = yaml.safe_dump(change.get("before") or {}, sort_keys=True).splitlines() if change.get("before") else []
    after = yaml.safe_dump(change.get("after") or {}, sort_keys=True).splitlines() if change.get("after") else []
    out = []
    for line in difflib.ndiff(before, after):
        if line.startswith("? "):
            continue
        out.append((line[0], line[2:]))
    return out


def _entry(c: dict[str, Any]) -> html.Details | html.Div:
    from mesh.journal import summary
    if c.get("op") == "gap":
        return html.Div(className="change-gap", children=[html.Span(_when(c["time"]), className="muted"),
                                                          html.Strong(" gap "), html.Span(c.get("note", ""))])
    head = [html.Span(_when(c["time"]), className="muted"), " ",
            html.Span(c.get("op", ""), className=f"change-op op-{c.get('op', '')}"), " ",
            html.Strong(c.get("ref", "")), " ", html.Span(summary(c)),
            html.Span(f"  by {c['who']}", className="muted") if c.get("who") else None,
            html.Span(f"  rv {c['resource_version']}", className="muted") if c.get("resource_version") else None,
            html.Span("  (first listing)", className="muted") if c.get("initial") else None,
            html.Span(f"  {c['note']}", className="warn") if c.get("note") else None]
    if c.get("too_large"):
        body: Any = html.P("Content too large to diff; only the change itself is recorded.", className="muted")
    else:
        body = html.Pre(className="yaml change-diff", children=[
            html.Span(f"{mark} {text}", className={"-": "yaml-line del", "+": "yaml-line add"}.get(mark, "yaml-line"))
            for mark, text in diff_lines(c)])
    return html.Details(className="change", children=[html.Summary(head), body])


def timeline(source: DataSource, window_s: float, namespace: str | None, kind: str | None,
             name: str | None) -> list[Any]:
    changes = getattr(source, "changes", None)
    if changes is None:
        return [html.P("This source keeps no config journal.", className="muted")]
    try:
        rows = changes(since=source.now() - window_s, namespace=namespace or None, kind=kind or None,
                       name=name or None, limit=LIMIT)
    except Unavailable as exc:
        return [html.P(str(exc), className="muted")]
    if not rows:
        return [html.P("No changes in this window.", className="muted")]
    return [html.P(f"{len(rows)} entries, newest first" + (f" (the newest {LIMIT})" if len(rows) == LIMIT else ""),
                   className="muted"), *[_entry(c) for c in rows]]


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    try:
        window = float(query.get("window") or DEFAULT_WINDOW)
    except ValueError:
        window = DEFAULT_WINDOW
    window = window if window in WINDOWS.values() else DEFAULT_WINDOW
    ns, kind, name = (query.get(k, "")[:253] for k in ("namespace", "kind", "name"))
    return html.Div(className="changes", children=[
        html.H2("Changes"),
        html.Div(className="filters", children=[
            dcc.Dropdown(id="chg-window", options=[{"label": k, "value": v} for k, v in WINDOWS.items()],
                         value=window, clearable=False, style={"width": "8em", "display": "inline-block"}),
            dcc.Input(id="chg-namespace", placeholder="namespace", value=ns, debounce=True),
            dcc.Input(id="chg-kind", placeholder="kind", value=kind, debounce=True),
            dcc.Input(id="chg-name", placeholder="name", value=name, debounce=True),
        ]),
        html.Div(id="chg-timeline", children=timeline(source, window, ns, kind, name)),
    ])


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("chg-timeline", "children"), Input("chg-window", "value"), Input("chg-namespace", "value"),
                  Input("chg-kind", "value"), Input("chg-name", "value"), prevent_initial_call=True)
    def refresh(window, ns, kind, name):  # noqa: ANN001, ANN202
        return timeline(source, float(window or DEFAULT_WINDOW), ns, kind, name)
