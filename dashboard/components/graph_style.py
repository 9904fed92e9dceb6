"""The Cytoscape stylesheet: shapes by node type, Kiali's health colours, mTLS marks, labels.

Everything that changes with a user toggle (edge label fields, find, hide,
highlight) is a stylesheet rule, so toggling never re-sends the elements.
"""
from __future__ import annotations

from typing import Any

COLORS = {"healthy": "#3f9c35", "degraded": "#f0ab00", "failing": "#c9190b", "idle": "#8a8d90",
          "na": "#8a8d90", "tcp": "#0066cc", "found": "#7c3aed", "highlight": "#ec4899"}
SHAPES = {"workload": "ellipse", "app": "round-rectangle", "service": "diamond", "serviceentry": "rhomboid",
          "aggregate": "hexagon", "unknown": "triangle"}
LABEL_FIELDS = {"rps": "label_rps", "err": "label_err", "p95": "label_p95"}


def _edge_label_rules(fields: list[str], large: bool = False) -> list[dict[str, Any]]:
    """Cytoscape draws one data field per label, so the rule points at the field that
    `edge_label_data` pre-joined for exactly this combination of toggles. The large sheet sets the
    label's font only once labels are asked for (every property costs on every edge)."""
    key = "lbl_" + "_".join(f for f in LABEL_FIELDS if f in fields) if fields else ""
    if not key:
        return []
    font = {"font-size": 9, "color": "#374151", "text-margin-y": -7} if large else {}
    return [{"selector": "edge", "style": {"label": f"data({key})", **font}}]


def edge_label_data(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add one joined label per field combination (`lbl_rps_err`, ...), prefixed with the mTLS mark."""
    combos = [[f for j, f in enumerate(LABEL_FIELDS) if mask >> j & 1] for mask in range(1, 8)]
    out = []
    for e in elements:
        d = e["data"]
        if "source" not in d:
            out.append(e)
            continue
        d = dict(d)
        for combo in combos:
            parts = [d.get(LABEL_FIELDS[f]) for f in combo]
            text = " | ".join(p for p in parts if p)
            d["lbl_" + "_".join(combo)] = f"{d.get('lock')} {text}".strip() if d.get("lock") else text
        out.append(dict(e, data=d))
    return out


LARGE_GRAPH_EDGES = 300  # above this, draw for speed: straight edges, no label rotation, labels off by default
# level of detail on large graphs: a label is drawn only once it would be this many pixels tall on screen,
# so a whole-mesh view draws shapes and colours, and names appear as the user zooms in
LARGE_LABEL_MIN_PX = 10


def _large_rules() -> list[dict[str, Any]]:
    """What a 10,000-node frame can afford: every property a rule sets is applied to, and checked on,
    every element it matches, so the big graph's sheet sets few (measured: bench ui, docs/ui.md).
    No outlines, borders, label margins or widths (Cytoscape's defaults are used); straight edges;
    labels drawn only once legible (level of detail); the mTLS mark only where it is not full (the
    exception on a big mesh; the side panel still says "full")."""
    return [
        {"selector": "node", "style": {"label": "data(label)", "text-valign": "bottom", "font-size": 11,
                                       "background-color": COLORS["healthy"],
                                       "min-zoomed-font-size": LARGE_LABEL_MIN_PX}},
        *[{"selector": f"node.{t}", "style": {"shape": s}} for t, s in SHAPES.items() if t != "workload"],
        *_health_rules(),
        *_node_marks(),
        {"selector": "edge", "style": {"curve-style": "straight", "target-arrow-shape": "triangle",
                                       "line-color": COLORS["healthy"], "target-arrow-color": COLORS["healthy"],
                                       "min-zoomed-font-size": LARGE_LABEL_MIN_PX}},
        *_edge_health_rules(),
        *_edge_marks(),
    ]


def _node_marks() -> list[dict[str, Any]]:
    """Boxes, outsiders and config badges: few elements carry them, so both sheets keep them."""
    return [
        {"selector": "node.box", "style": {"shape": "round-rectangle", "background-color": "#f3f4f6",
                                           "background-opacity": 0.6, "border-color": "#9ca3af", "border-width": 1,
                                           "text-valign": "top", "padding": 12}},
        {"selector": "node[?outsider]", "style": {"opacity": 0.55}},
        {"selector": "node.badge-vs, node.badge-dr, node.badge-cb", "style": {"border-color": "#1f2937",
                                                                              "border-style": "double", "border-width": 4}},
        # a canary version's live verdict (diagnose.canary.marks): dashed red = roll back, dashed green = promote
        {"selector": "node.badge-canary-rollback", "style": {"border-color": COLORS["failing"], "border-style": "dashed",
                                                             "border-width": 5}},
        {"selector": "node.badge-canary-promote", "style": {"border-color": COLORS["healthy"], "border-style": "dashed",
                                                            "border-width": 5}},
    ]


def _health_rules() -> list[dict[str, Any]]:
    return [{"selector": "node.unknown", "style": {"background-color": "#6b7280"}},
            {"selector": "node.health-degraded", "style": {"background-color": COLORS["degraded"]}},
            {"selector": "node.health-failing", "style": {"background-color": COLORS["failing"]}},
            {"selector": "node.health-idle, node.health-na", "style": {"background-color": COLORS["idle"]}}]


def _edge_health_rules() -> list[dict[str, Any]]:
    return [{"selector": "edge.health-degraded", "style": {"line-color": COLORS["degraded"],
                                                           "target-arrow-color": COLORS["degraded"]}},
            {"selector": "edge.health-failing", "style": {"line-color": COLORS["failing"],
                                                          "target-arrow-color": COLORS["failing"], "width": 3}},
            {"selector": "edge.health-idle, edge.health-na", "style": {"line-color": COLORS["idle"],
                                                                       "target-arrow-color": COLORS["idle"]}},
            {"selector": "edge.proto-tcp", "style": {"line-color": COLORS["tcp"], "target-arrow-color": COLORS["tcp"]}}]


def _edge_marks() -> list[dict[str, Any]]:
    """Partial or mismatched mTLS and a tripped circuit breaker: the exceptions, marked on every graph."""
    return [
        {"selector": "edge.mtls-partial", "style": {"source-arrow-shape": "square", "source-arrow-fill": "hollow",
                                                    "source-arrow-color": "#1f2937"}},
        {"selector": "edge.mtls-mismatch", "style": {"line-style": "dashed", "source-arrow-shape": "diamond",
                                                     "source-arrow-color": COLORS["degraded"]}},
        {"selector": "edge.cb-tripped", "style": {"width": 4, "line-style": "dotted"}},
    ]


def _full_rules() -> list[dict[str, Any]]:
    """Outlined labels, borders, bezier edges and every mTLS mark: what a graph of hundreds draws."""
    return [
        {"selector": "node", "style": {
            "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
            "width": 26, "height": 26, "background-color": COLORS["healthy"], "border-width": 2,
            "border-color": "#ffffff", "color": "#1f2937", "text-outline-color": "#ffffff", "text-outline-width": 2,
            "min-zoomed-font-size": 7}},
        *[{"selector": f"node.{t}", "style": {"shape": s}} for t, s in SHAPES.items()],
        {"selector": "node.service", "style": {"width": 30, "height": 30}},
        *_health_rules(),
        *_node_marks(),
        {"selector": "edge", "style": {
            "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 2, "arrow-scale": 0.9,
            "line-color": COLORS["healthy"], "target-arrow-color": COLORS["healthy"], "font-size": 9,
            # the label sits just above the line, outlined rather than boxed, so it never hides the colour
            "text-outline-color": "#ffffff", "text-outline-width": 2, "text-margin-y": -7,
            "color": "#374151", "min-zoomed-font-size": 8, "text-rotation": "autorotate"}},
        *_edge_health_rules(),
        # mTLS: a square "lock" at the caller's end; filled = all traffic mTLS, hollow = partial; mismatch = dashed + amber mark
        {"selector": "edge.mtls-full", "style": {"source-arrow-shape": "square", "source-arrow-fill": "filled",
                                                 "source-arrow-color": "#1f2937"}},
        *_edge_marks(),
    ]


def stylesheet(label_fields: list[str], find: str = "", hide: str = "",
               highlight: list[str] | None = None, selected: str | None = None,
               large: bool = False) -> list[dict[str, Any]]:
    """`large` trades curve and label niceties for render time on big meshes (bezier edges and
    rotated labels are what Cytoscape spends most on when it fits 1,000+ elements)."""
    rules: list[dict[str, Any]] = [
        *(_large_rules() if large else _full_rules()),
        *_edge_label_rules(label_fields, large),
        {"selector": ":selected", "style": {"overlay-color": "#2563eb", "overlay-opacity": 0.2, "overlay-padding": 6}},
        # the clicked element: a class set in the browser (assets/topology_render.js), so a click restyles one element
        {"selector": ".ms-selected", "style": {"overlay-color": "#2563eb", "overlay-opacity": 0.25, "overlay-padding": 7}},
    ]
    if highlight:
        sel = ", ".join(f'[id = "{_quote(i)}"]' for i in highlight)
        rules.append({"selector": sel, "style": {"overlay-color": COLORS["highlight"], "overlay-opacity": 0.35,
                                                 "overlay-padding": 8, "z-index": 10}})
    if selected:
        rules.append({"selector": f'[id = "{_quote(selected)}"]', "style": {"overlay-color": "#2563eb",
                                                                           "overlay-opacity": 0.25, "overlay-padding": 7}})
    if find:
        rules.append({"selector": find, "style": {"overlay-color": COLORS["found"], "overlay-opacity": 0.3,
                                                  "overlay-padding": 8}})
    if hide:
        rules.append({"selector": hide, "style": {"display": "none"}})
    return rules


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')
