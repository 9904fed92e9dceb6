"""The topology page's problem-first views (issue #17): grouped above a size threshold, expand in place, incident view.

The page keeps one `topo-view` store ({"collapse": auto|none|namespace|app, "expand": [ids],
"focus": id|None, "hops": k}); the graph callback hands it to `apply` (the API's own
`dashboard.graph_view.apply_view`), so the page draws what `GET /api/v1/graph` serves. `auto` groups by
namespace when the graph has more than `threshold()` nodes (MESHSCOPE_AGGREGATE_ABOVE, default 300):
below it nothing changes. A click on an aggregate opens it where it was drawn: its members are placed
around its remembered position before the layout places anything else, and every other node keeps its own.

Find and hide reach inside groups: in a grouped or incident view the page hands its find/hide
expressions to the server (`dashboard.graph_find`), so a hidden workload leaves its group's roll-up
and a find highlights and counts the groups holding matches, with a button that opens them. A plain
graph keeps find/hide as pure stylesheet rules (nothing re-sent).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dash import Input, Output, State, callback_context, dcc, html, no_update

from dashboard.components.graph_style import COLORS
from dashboard.components.widgets import badge
from dashboard.components.find_hide import ExpressionError, parse
from dashboard.graph_view import DEFAULT_HOPS, View, apply_view
from dashboard.query import DataSource, GraphResult
from topology.aggregate import app_id, namespace_id
from topology.focus import MAX_HOPS

DEFAULT_THRESHOLD = 300
GROUPS = [("auto", "auto"), ("none", "none"), ("namespace", "namespaces"), ("app", "apps")]
MEMBER_GAP = 70.0  # px between the members of an opened aggregate


def threshold() -> int:
    """Nodes above which the page opens grouped by namespace (env MESHSCOPE_AGGREGATE_ABOVE)."""
    try:
        return max(1, int(os.environ.get("MESHSCOPE_AGGREGATE_ABOVE", DEFAULT_THRESHOLD)))
    except ValueError:
        return DEFAULT_THRESHOLD


def initial(query: dict[str, str], reveal: list[str] | None = None) -> dict[str, Any]:
    """The view a URL asks for: ?group=namespace|app|none, ?focus=ID&hops=K (anything else: auto).

    `reveal`: element ids that must be visible (a highlighted finding's): their groups open.
    """
    group = query.get("group", "auto")
    try:
        hops = min(MAX_HOPS, max(0, int(query.get("hops", DEFAULT_HOPS))))
    except ValueError:
        hops = DEFAULT_HOPS
    return {"collapse": group if group in dict(GROUPS) else "auto", "expand": [], "focus": query.get("focus") or None,
            "hops": hops, "reveal": list(reveal or [])}


def _revealed(ids: list[str], result: GraphResult) -> list[str]:
    """The aggregates (namespace and app) holding these nodes, or these edges' ends."""
    wanted = set(ids)
    for e in result.elements:
        if "source" in e["data"] and e["data"]["id"] in wanted:
            wanted |= {e["data"]["source"], e["data"]["target"]}
    out = []
    for e in result.elements:
        d = e["data"]
        if "source" not in d and d["id"] in wanted and d.get("namespace"):
            out += [namespace_id(d["namespace"]), app_id(d["namespace"], d.get("app") or d.get("name") or "")]
    return out


def _resolved(view: dict[str, Any] | None, result: GraphResult) -> View:
    view = view or {}
    collapse = view.get("collapse") or "auto"
    if collapse == "auto":
        nodes = [e["data"] for e in result.elements if "source" not in e["data"] and e["data"].get("type") != "box"]
        if len(nodes) <= threshold() or view.get("focus"):
            collapse = "none"
        else:  # namespaces, or within one namespace (a one-namespace mesh, a namespace filter) its apps
            spans = {d.get("namespace") for d in nodes if d.get("namespace") not in (None, "", "unknown")}
            collapse = "namespace" if len(spans) > 1 else "app"
    expand = tuple(view.get("expand") or ())
    if view.get("reveal") and collapse != "none":
        expand = tuple(sorted(set(expand) | set(_revealed(view["reveal"], result))))
    out = View(None if collapse == "none" else collapse, expand, view.get("focus"), int(view.get("hops", DEFAULT_HOPS)))
    if not out.plain:  # a plain graph finds and hides by stylesheet in the browser
        out.find, out.hide = _valid(view.get("find")), _valid(view.get("hide"))
    return out


def _valid(expression: str | None) -> str | None:
    """The expression if it parses; a bad one is reported under the box (restyle) and ignored here."""
    try:
        return expression if parse(expression or "") else None
    except ExpressionError:
        return None


@dataclass
class Applied:
    result: GraphResult
    key: str  # position-memory key: grouped and focused graphs lay out apart
    grouped: bool  # find/hide are applied by the server (the view is not the plain graph)
    found: dict[str, Any] | None = None  # graph_find.Found.to_dict() when a find ran on the server

    def state(self) -> dict[str, Any]:
        """The page's `topo-found` store."""
        return {"grouped": self.grouped, "found": self.found}


def show(source: DataSource, result: GraphResult, view: dict[str, Any] | None) -> Applied:
    """The result in the view (find/hide inside groups included)."""
    resolved = _resolved(view, result)
    if resolved.plain:
        return Applied(result, result.graph_type, False)
    shown = apply_view(source, result, resolved, strict=False)
    key = f"{result.graph_type}|{resolved.collapse or ''}|{resolved.focus or ''}"
    return Applied(shown.result, key, True, shown.found.to_dict() if shown.found else None)


def apply(source: DataSource, result: GraphResult, view: dict[str, Any] | None) -> tuple[GraphResult, str]:
    """(the result in the view, the position-memory key of that view)."""
    applied = show(source, result, view)
    return applied.result, applied.key


def found_message(state: dict[str, Any] | None) -> tuple[str, bool]:
    """(the line saying what a find matched inside groups, whether to offer opening them)."""
    found = (state or {}).get("found")
    if not found:
        return "", False
    groups = found.get("groups") or []
    if not groups:
        return f"find: {found.get('shown', 0)} shown, none inside collapsed groups", False
    where = ", ".join(f"{g['name']} {g['nodes'] + g['edges']}" for g in groups[:4])
    more = f", +{len(groups) - 4} more" if len(groups) > 4 else ""
    return (f"find: {found.get('inside', 0)} inside {len(groups)} collapsed group(s) ({where}{more}), "
            f"{found.get('shown', 0)} shown"), bool(found.get("expand"))


def place_in_place(positions: Any, key: str, elements: list[dict[str, Any]]) -> None:
    """New nodes whose aggregate was drawn before go on a small grid around where it was."""
    known = positions.known(key)
    anchors: dict[str, list[str]] = {}
    for e in elements:
        d = e["data"]
        if "source" in d or d["id"] in known or not d.get("namespace"):
            continue
        for anchor in (app_id(d["namespace"], d.get("app") or d.get("name") or ""), namespace_id(d["namespace"])):
            if anchor in known and anchor != d["id"]:
                anchors.setdefault(anchor, []).append(d["id"])
                break
    placed: dict[str, dict[str, float]] = {}
    for anchor, ids in anchors.items():
        cx, cy = known[anchor]["x"], known[anchor]["y"]
        width = math.ceil(math.sqrt(len(ids)))
        for i, nid in enumerate(sorted(ids)):
            col, row = i % width, i // width
            placed[nid] = {"x": cx + (col - (width - 1) / 2) * MEMBER_GAP,
                           "y": cy + (row - (math.ceil(len(ids) / width) - 1) / 2) * MEMBER_GAP}
    if placed:
        positions.remember(key, placed)


def controls(view: dict[str, Any], state: dict[str, Any] | None = None) -> list[Any]:
    """Group dropdown, collapse-all, (in the incident view) hops and the way back, and what a find matched in groups."""
    focus = view.get("focus")
    message, offer = found_message(state)
    return [
        html.Span(" Group ", className="muted"),
        dcc.Dropdown(id="topo-group", options=[{"label": l, "value": v} for v, l in GROUPS], value=view["collapse"],
                     clearable=False, style={"width": "120px", "display": "inline-block", "verticalAlign": "middle"}),
        html.Button("Collapse all", id="topo-collapse-all", n_clicks=0, className="button small"),
        html.Span(className="topo-focus", style={} if focus else {"display": "none"}, children=[
            html.Span(" Incident view, hops ", className="muted"),
            dcc.Dropdown(id="topo-hops", options=list(range(MAX_HOPS + 1)), value=view["hops"], clearable=False,
                         style={"width": "60px", "display": "inline-block", "verticalAlign": "middle"}),
            dcc.Link(" show the whole graph", href="/topology", id="topo-unfocus")]),
        html.Span(message, id="topo-found-text", className="topo-found", title=message),
        html.Button("Expand them", id="topo-expand-found", n_clicks=0, className="button small",
                    style={} if offer else {"display": "none"}),
        dcc.Store(id="topo-view", data=view),
        dcc.Store(id="topo-found", data=state or {"grouped": False, "found": None}),
    ]


def focus_link(item_id: str, label: str = "Focus") -> dcc.Link:
    """A link to the incident view of a finding (fingerprint) or an incident (id)."""
    return dcc.Link(label, href=f"/topology?focus={quote(item_id, safe='')}", className="focus-link")


def styles() -> list[dict[str, Any]]:
    """Aggregates drawn bigger, blamed config objects as grey tags tied by dotted lines."""
    return [
        {"selector": "node.aggregate", "style": {"width": 46, "height": 46, "font-weight": "bold"}},
        {"selector": "node.config", "style": {"shape": "tag", "background-color": "#4b5563", "width": 34, "height": 22}},
        {"selector": "edge.proto-blames", "style": {"line-style": "dotted", "line-color": "#4b5563",
                                                    "target-arrow-color": "#4b5563", "width": 1.5, "label": ""}},
        # a find matched this element or, for an aggregate, some of its members (set by the server)
        {"selector": "[found > 0]", "style": {"overlay-color": COLORS["found"], "overlay-opacity": 0.3,
                                              "overlay-padding": 8}},
        {"selector": "node[found_label]", "style": {"label": "data(found_label)", "min-zoomed-font-size": 0}},
    ]


def aggregate_panel(data: dict[str, Any], source: DataSource | None = None) -> list[Any]:
    """The side panel of an aggregate: its roll-up, its worst members and the open findings in its namespace."""
    level = "apps" if data.get("level") == "namespace" else "workloads"
    counts = data.get("health_counts") or {}
    facts = {"health": data.get("health"), "why this colour": data.get("health_reason"),
             "members": data.get("members"), "by health": ", ".join(f"{h} {n}" for h, n in counts.items()),
             "inbound rps": data.get("rps_in"), "outbound rps": data.get("rps_out"),
             "inbound error %": data.get("error_pct"),
             "internal rps": ", ".join(f"{p} {v:.2f}" for p, v in (data.get("rps_internal") or {}).items()),
             "worst p95 ms (member edges)": data.get("p95_ms"), "mTLS %": data.get("mtls_pct"),
             "find matches (members and inner edges)": data.get("found")}
    worst = data.get("worst") or []
    return [
        html.H3(f"{data.get('level', '')} {data.get('name', '')}", id="panel-title"), badge(data.get("health", "na")),
        html.Table(className="kv", children=[html.Tbody([
            html.Tr([html.Th(k), html.Td(str(v))]) for k, v in facts.items() if v not in (None, "")])]),
        html.P(f"Click the node to open it in place and show its {level}.", className="muted"),
        html.H4(f"Worst members ({len(worst)})"),
        html.Ul(id="panel-worst", children=[html.Li([badge(w["health"]), f" {w['name']}  {w['error_pct']}% errors, "
                                                     f"{w['rps_in']} rps in"]) for w in worst]),
        *_namespace_findings(source, data.get("namespace") or ""),
    ]


def _namespace_findings(source: DataSource | None, namespace: str, limit: int = 10) -> list[Any]:
    if source is None or not namespace:
        return []
    try:
        found = source.findings({"namespace": namespace, "status": "open"})
    except Exception:  # noqa: BLE001 - the roll-up must show even when findings cannot be read
        return []
    return [html.H4(f"Open findings in {namespace} ({len(found)})"), html.Ul(id="panel-agg-findings", children=[
        html.Li([badge(f["severity"]), " ", dcc.Link(f["code"], href=f"/findings?fp={quote(f['fingerprint'], safe='')}"),
                 " ", html.Span(f["message"]), " ", focus_link(f["fingerprint"])]) for f in found[:limit]])] if found else []


def register(app: Any) -> None:
    @app.callback(Output("topo-view", "data"), Input("topo-group", "value"), Input("topo-collapse-all", "n_clicks"),
                  Input("topo-hops", "value"), Input("topo-graph", "tapNodeData"),
                  Input("topo-expand-found", "n_clicks"), State("topo-view", "data"), State("topo-found", "data"),
                  prevent_initial_call=True)
    def update_view(group, _collapse_all, hops, tapped, _expand_found, view, state):  # noqa: ANN001, ANN202
        view = dict(view or {})
        trigger = callback_context.triggered_id
        if trigger == "topo-expand-found":  # open every group holding a match of the find
            wanted = ((state or {}).get("found") or {}).get("expand") or []
            if not wanted:
                return no_update
            view["expand"] = sorted(set(view.get("expand") or []) | set(wanted))
        elif trigger == "topo-group":
            view.update(collapse=group, expand=[])
        elif trigger == "topo-collapse-all":
            view.update(expand=[], reveal=[])
        elif trigger == "topo-hops":
            view["hops"] = int(hops)
        elif trigger == "topo-graph":
            if not tapped or tapped.get("type") != "aggregate":
                return no_update
            view["expand"] = sorted(set(view.get("expand") or []) | {tapped["id"]})
        return view

    @app.callback(Output("topo-found-text", "children"), Output("topo-found-text", "title"),
                  Output("topo-expand-found", "style"), Input("topo-found", "data"), prevent_initial_call=True)
    def found_line(state):  # noqa: ANN001, ANN202
        message, offer = found_message(state)
        return message, message, {} if offer else {"display": "none"}
