"""When the topology page draws with its own canvas renderer (assets/big_graph.js) instead of Cytoscape.

Cytoscape resolves a style for, and hit-tests, every element: a 10,000-workload expanded graph took
~30 s to its first view and ~220 ms a pan frame (docs/ui.md). Above `threshold()` elements a plain
(ungrouped) graph goes to the `topo-big` store, which the canvas renderer draws from the same lean
elements and server-side positions; grouped views and smaller graphs stay on Cytoscape.

Find and hide on a plain graph are Cytoscape selectors, which the canvas cannot run: for a canvas
graph the server evaluates the same clauses (`find_hide.node_mask`/`edge_mask`) over the elements it
sent, remembered by their digest (the topology page keeps a `lean.Recent` of them), and hands the browser the matching ids.
"""
from __future__ import annotations

import os
from typing import Any

from dashboard.components.find_hide import ExpressionError, edge_mask, node_mask, parse
from dashboard.components.graph_style import COLORS

DEFAULT_THRESHOLD = 2000  # elements: where Cytoscape already needs its texture options; `bench ui` (docs/ui.md)
RENDERERS = ("auto", "canvas", "cytoscape")


def threshold() -> int:
    """Elements above which a plain graph is drawn on the canvas (env MESHSCOPE_CANVAS_ABOVE)."""
    try:
        return max(1, int(os.environ.get("MESHSCOPE_CANVAS_ABOVE", DEFAULT_THRESHOLD)))
    except ValueError:
        return DEFAULT_THRESHOLD


def renderer_of(query: dict[str, str]) -> str:
    """`?renderer=canvas|cytoscape` forces one (to compare them on one page); anything else is auto."""
    value = (query.get("renderer") or "auto").lower()
    return value if value in RENDERERS else "auto"


def wanted(elements: list[dict[str, Any]], grouped: bool, renderer: str | None = "auto") -> bool:
    """Whether these elements are drawn on the canvas: a plain graph above the threshold, or when forced."""
    if renderer == "cytoscape":
        return False
    if renderer == "canvas":
        return True
    return not grouped and len(elements) > threshold()


def payload(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """What the `topo-big` store carries: the fields the canvas draws, column by column.

    Columns rather than one object per element: at 10,000 workloads the element list is ~9 MB of
    JSON that Dash encodes (twice: its encoder re-reads what it wrote) and the browser parses; the
    columns are a third of it. An edge names its ends by node index, classes are indexes into the
    distinct class strings. Find/hide, the side panel and everything else read the server's copy.
    Boxes (compound parents) have no position and are left out, as are edges to them.
    """
    nodes = [e for e in elements if "source" not in e["data"] and e.get("position")]
    index = {e["data"]["id"]: i for i, e in enumerate(nodes)}
    edges = [e for e in elements if "source" in e["data"]
             and e["data"]["source"] in index and e["data"]["target"] in index]
    classes: dict[str, int] = {}
    nd = [e["data"] for e in nodes]
    ed = [e["data"] for e in edges]
    return {
        "colors": COLORS,
        "nodes": {"id": [d["id"] for d in nd], "name": [d.get("name") for d in nd],
                  "label": [None if d.get("label") == d.get("name") else d.get("label") for d in nd],
                  "namespace": [d.get("namespace") for d in nd], "type": [d.get("type") for d in nd],
                  "cls": [classes.setdefault(e.get("classes") or "", len(classes)) for e in nodes],
                  "x": [e["position"]["x"] for e in nodes], "y": [e["position"]["y"] for e in nodes],
                  "outsider": [i for i, d in enumerate(nd) if d.get("outsider")],
                  "found_label": {d["id"]: d["found_label"] for d in nd if d.get("found_label")}},
        "edges": {"id": [d["id"] for d in ed], "s": [index[d["source"]] for d in ed],
                  "t": [index[d["target"]] for d in ed],
                  "cls": [classes.setdefault(e.get("classes") or "", len(classes)) for e in edges],
                  "rps": [d.get("label_rps") or None for d in ed], "err": [d.get("label_err") or None for d in ed],
                  "p95": [d.get("label_p95") or None for d in ed], "lock": [d.get("lock") or None for d in ed]},
        "classes": list(classes),
    }


def marks(elements: list[dict[str, Any]], find: str | None, hide: str | None) -> dict[str, list[str]]:
    """{"found": ids, "hidden": ids} for the find and hide expressions, as their selectors would match.

    A bad expression marks nothing (the restyle callback reports it under the box).
    """
    nodes = [e["data"] for e in elements if "source" not in e["data"]]
    edges = [e["data"] for e in elements if "source" in e["data"]]
    out: dict[str, list[str]] = {}
    for name, expr in (("found", find), ("hidden", hide)):
        try:
            alternatives = parse(expr or "")
        except ExpressionError:
            alternatives = []
        ids: list[str] = []
        if alternatives:
            ids = [d["id"] for d, hit in zip(nodes, node_mask(nodes, alternatives)) if hit]
            ids += [d["id"] for d, hit in zip(edges, edge_mask(edges, alternatives)) if hit]
        out[name] = ids
    return out
