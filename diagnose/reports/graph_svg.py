"""The topology picture: Cytoscape elements -> one static inline SVG (no script, no network).

Nodes are placed in layers left to right (callers before callees, as Kiali's
dagre layout reads) with networkx's multipartite layout; colours follow node and
edge health. A big mesh is cut down to the `max_nodes` most interesting nodes
(unhealthy first, then the busiest) and the picture says so, because a
thousand-node hairball helps nobody in a PDF.
"""
from __future__ import annotations

from html import escape
from typing import Any

import networkx as nx

from diagnose.reports import elements as E
from diagnose.reports.elements import node_label
from diagnose.reports.view import HEALTH_COLORS

MAX_NODES = 150
_HEALTH_RANK = {"failing": 4, "degraded": 3, "unknown": 1, "healthy": 1, "idle": 0}
_LAYER_W, _ROW_H, _PAD = 170, 34, 70
_MAX_PER_COLUMN = 24


def to_graph(elements: list[dict[str, Any]]) -> nx.DiGraph:
    g = nx.DiGraph()
    nodes, edges = E.split(elements)
    for d in nodes:
        g.add_node(str(d["id"]), **d)
    for d in edges:
        s, t = str(d["source"]), str(d["target"])
        for n in (s, t):
            if n not in g:
                g.add_node(n, id=n)
        if g.has_edge(s, t):  # several protocols between the same pair: one arrow, summed
            prev = g.edges[s, t]
            merged = dict(d, rps=E.request_rate(prev) + E.request_rate(d), protocol="http")
            merged["health"] = max((prev.get("health"), d.get("health")), key=lambda h: _HEALTH_RANK.get(E.health({"health": h}), 1))
            g.add_edge(s, t, **merged)
        else:
            g.add_edge(s, t, **d)
    return g


def select_nodes(g: nx.DiGraph, max_nodes: int) -> nx.DiGraph:
    """At most `max_nodes`, chosen by edges so the picture stays connected: unhealthy edges (and edges
    into unhealthy nodes) first, busiest first within a class; then lone nodes, unhealthy first."""
    if g.number_of_nodes() <= max_nodes:
        return g

    def rank(h: str) -> int:
        return _HEALTH_RANK.get(h, 1)

    def edge_score(e: tuple) -> tuple:
        s, t, d = e
        worst = max(rank(E.health(d)), rank(E.health(g.nodes[s])), rank(E.health(g.nodes[t])))
        return (-worst, -E.request_rate(d), s, t)

    keep: dict[str, None] = {}
    for s, t, _ in sorted(g.edges(data=True), key=edge_score):
        new = [n for n in (s, t) if n not in keep]
        if len(keep) + len(new) > max_nodes:
            continue
        keep.update(dict.fromkeys(new))
        if len(keep) >= max_nodes:
            break
    if len(keep) < max_nodes:
        rest = sorted((n for n in g.nodes if n not in keep), key=lambda n: (-rank(E.health(g.nodes[n])), n))
        keep.update(dict.fromkeys(rest[: max_nodes - len(keep)]))
    return g.subgraph(keep).copy()


def _layers(g: nx.DiGraph) -> dict[str, int]:
    """Longest path from a root, computed on the condensation so cycles do not break it."""
    cond = nx.condensation(g)
    depth: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        depth[c] = max((depth[p] + 1 for p in cond.predecessors(c)), default=0)
    mapping = cond.graph["mapping"]
    return {n: depth[mapping[n]] for n in g.nodes}


def _columns(g: nx.DiGraph) -> dict[str, int]:
    """Layer -> column, a tall layer wrapped into several columns, nodes without edges in trailing columns."""
    layer = _layers(g)
    lone = [n for n in g.nodes if g.degree(n) == 0]
    for n in lone:
        layer[n] = -1
    by_layer: dict[int, list[str]] = {}
    key = lambda n: (str(g.nodes[n].get("namespace", "")), node_label(g.nodes[n]), n)  # noqa: E731
    for n in sorted(g.nodes, key=key):
        by_layer.setdefault(layer[n], []).append(n)
    column, col = {}, 0
    for lay in sorted(by_layer, key=lambda v: (v < 0, v)):
        members = by_layer[lay]
        for i, n in enumerate(members):
            column[n] = col + i // _MAX_PER_COLUMN
        col += -(-len(members) // _MAX_PER_COLUMN)
    return column


def layout(g: nx.DiGraph) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Pixel positions, width and height for `g`."""
    if g.number_of_nodes() == 0:
        return {}, 400.0, 80.0
    column = _columns(g)
    ordered = nx.DiGraph()
    for n, c in column.items():  # insertion order = top to bottom within a column
        ordered.add_node(n, column=c)
    pos = nx.multipartite_layout(ordered, subset_key="column", align="vertical")
    n_cols = max(column.values()) + 1
    tallest = max(sum(1 for v in column.values() if v == i) for i in range(n_cols))
    width = max(480.0, (n_cols - 1) * _LAYER_W + 2 * _PAD + 60)
    height = max(220.0, (tallest - 1) * _ROW_H + 2 * 40)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    def sx(x: float) -> float:
        return width / 2 if x1 == x0 else _PAD + (x - x0) / (x1 - x0) * (width - 2 * _PAD - 60)
    def sy(y: float) -> float:
        return height / 2 if y1 == y0 else 40 + (y1 - y) / (y1 - y0) * (height - 80)
    return {n: (sx(p[0]), sy(p[1])) for n, p in pos.items()}, width, height


def topology_svg(elements: list[dict[str, Any]], max_nodes: int = MAX_NODES) -> tuple[str, str | None]:
    """(svg markup, note about what was left out or None)."""
    full = to_graph(elements)
    g = select_nodes(full, max_nodes)
    note = None
    if g.number_of_nodes() < full.number_of_nodes():
        note = (f"Showing {g.number_of_nodes()} of {full.number_of_nodes()} nodes "
                "(the unhealthy edges first, then the busiest); every finding below still names its resource.")
    if g.number_of_nodes() == 0:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="60" role="img" aria-label="empty graph">'
                '<text x="10" y="35" font-size="14" fill="#6a6e73">No traffic in this window.</text></svg>'), note
    pos, width, height = layout(g)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" role="img" aria-label="service graph" class="topology" font-family="sans-serif">', "<defs>"]
    for name, color in HEALTH_COLORS.items():
        out.append(f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" '
                   f'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    for s, t, d in g.edges(data=True):
        (x1, y1), (x2, y2) = pos[s], pos[t]
        h = E.health(d)
        dx, dy = x2 - x1, y2 - y1
        dist = max((dx * dx + dy * dy) ** 0.5, 1.0)
        ex, ey = x2 - dx / dist * 9, y2 - dy / dist * 9  # stop at the node's rim
        tip = f"{node_label(g.nodes[s])} → {node_label(g.nodes[t])}"
        rps, err = E.request_rate(d), E.error_rate(d)
        tip += f": {rps:.3g} rps" + (f", {100 * err:.1f}% errors" if err else "")
        width_px = 1.2 + min(3.0, rps ** 0.5 / 3)
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{HEALTH_COLORS[h]}" '
                   f'stroke-width="{width_px:.1f}" marker-end="url(#arrow-{h})" opacity="0.85"><title>{escape(tip)}</title></line>')
    for n, d in g.nodes(data=True):
        x, y = pos[n]
        h = E.health(d)
        color = HEALTH_COLORS[h]
        label = node_label(d)
        tip = f"{E.node_type(d) or 'node'} {d.get('namespace', '')}/{label} ({h})"
        out.append(f'<g class="node node-{escape(h)}"><title>{escape(tip)}</title>')
        if E.node_type(d) == "service":
            out.append(f'<polygon points="{x:.1f},{y - 9:.1f} {x + 9:.1f},{y + 7:.1f} {x - 9:.1f},{y + 7:.1f}" fill="{color}" stroke="#333" stroke-width="0.6"/>')
        else:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="{color}" stroke="#333" stroke-width="0.6"/>')
        short = label if len(label) <= 28 else label[:27] + "…"
        out.append(f'<text x="{x:.1f}" y="{y + 20:.1f}" font-size="10" text-anchor="middle" fill="#151515">{escape(short)}</text></g>')
    out.append("</svg>")
    return "".join(out), note
