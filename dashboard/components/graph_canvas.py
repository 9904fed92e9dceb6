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

import base64
import os
from typing import Any

import numpy as np

from dashboard.components.find_hide import ExpressionError, edge_mask, node_mask, parse
from dashboard.components.graph_style import COLORS
from dashboard.components.lean import LABEL_MAX, truncate

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


def wanted(elements: list[dict[str, Any]], grouped: bool = False, renderer: str | None = "auto") -> bool:
    """Whether these elements are drawn on the canvas: any view above the threshold, or when forced.

    By size alone, whatever the view (`grouped` is kept for callers; it no longer decides): a grouped view
    with one namespace of 5,000 workloads opened in place, or an incident view k hops wide, is as big as a
    plain graph, and on Cytoscape its mount was one main-thread task of 2-4.6 s (the tab frozen; docs/ui.md).
    """
    if renderer == "cytoscape":
        return False
    if renderer == "canvas":
        return True
    return len(elements) > threshold()


def payload(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """What the `topo-big` store carries: the fields the canvas draws, column by column, in one pass.

    Columns rather than one object per element: at 10,000 workloads the element list is ~9 MB of
    JSON that Dash encodes (twice: its encoder re-reads what it wrote) and the browser parses; the
    columns are a third of it. An edge names its ends by node index, classes are indexes into the
    distinct class strings; numbers travel as typed-array bytes, repeating strings as codes (`column`).
    Find/hide, the side panel and everything else read the server's copy.
    Boxes (compound parents) have no position and are left out, as are edges to them.

    Reads the full elements as well as `lean` ones (the page hands this the full ones: no lean copy of a
    big graph is made); a node label longer than `LABEL_MAX` is cut here as `lean` would. An edge whose id
    is `source->target` (nearly all) is sent as null and rebuilt by the browser when asked: at 34,000 edges
    the ids were 1.5 of 4.4 MB.
    """
    n_id: list[str] = []
    n_name: list[Any] = []
    n_label: list[Any] = []
    n_ns: list[Any] = []
    n_type: list[Any] = []
    n_cls: list[int] = []
    xs: list[float] = []
    ys: list[float] = []
    outsider: list[int] = []
    found_label: dict[str, Any] = {}
    found: list[str] = []  # what a find the server ran (grouped, incident views) matched: part of the digest
    classes: dict[str, int] = {}
    cls_of = classes.setdefault
    edges = []
    for e in elements:
        d = e["data"]
        if "source" in d:
            edges.append(e)
            continue
        pos = e.get("position")
        if not pos:
            continue
        i = len(n_id)
        nid, name, label = d["id"], d.get("name"), d.get("label")
        if isinstance(label, str) and len(label) > LABEL_MAX:
            label = truncate(label)
        n_id.append(nid)
        n_name.append(name)
        n_label.append(None if label == name else label)
        n_ns.append(d.get("namespace"))
        n_type.append(d.get("type"))
        c = e.get("classes") or ""
        n_cls.append(cls_of(c, len(classes)))
        xs.append(pos["x"])
        ys.append(pos["y"])
        if d.get("outsider"):
            outsider.append(i)
        if d.get("found_label"):
            found_label[nid] = d["found_label"]
        if d.get("found"):
            found.append(nid)
    index = {nid: i for i, nid in enumerate(n_id)}
    e_id: list[Any] = []
    e_s: list[int] = []
    e_t: list[int] = []
    e_cls: list[int] = []
    rps: list[Any] = []
    err: list[Any] = []
    p95: list[Any] = []
    lock: list[Any] = []
    for e in edges:
        d = e["data"]
        s, t = index.get(d["source"]), index.get(d["target"])
        if s is None or t is None:
            continue
        eid = d["id"]
        e_id.append(None if eid == f"{d['source']}->{d['target']}" else eid)
        e_s.append(s)
        e_t.append(t)
        e_cls.append(cls_of(e.get("classes") or "", len(classes)))
        rps.append(d.get("label_rps") or None)
        err.append(d.get("label_err") or None)
        p95.append(d.get("label_p95") or None)
        lock.append(d.get("lock") or None)
        if d.get("found"):
            found.append(eid)
    return {
        "colors": COLORS,
        "nodes": {"id": _strings(n_id), "name": _strings(n_name), "label": _strings(n_label),
                  "namespace": _strings(n_ns), "type": _strings(n_type), "cls": _ints(n_cls),
                  "x": _floats(xs), "y": _floats(ys), "outsider": outsider, "found_label": found_label},
        "edges": {"id": _strings(e_id), "s": _ints(e_s), "t": _ints(e_t), "cls": _ints(e_cls),
                  "rps": _strings(rps), "err": _strings(err), "p95": _strings(p95), "lock": _strings(lock)},
        "classes": list(classes),
        "found": found,
    }


# Column encoding. A JSON list of 34,000 numbers is parsed into a JS array the renderer then copies into a typed
# array, and Dash's renderer compares component props deeply on each of its store updates while the page loads
# (with 2.5 MB of lists in the `topo-big` store that was a few hundred ms of the first view): numbers go as the
# bytes of a typed array in base64 (one string, decoded with one view), and a string column whose values repeat
# (types, namespaces, edge labels, null ids) as its distinct values and a typed array of codes.
_INTS = ((255, "u1", "<u1"), (65_535, "u2", "<u2"), (2**31 - 1, "i4", "<i4"))


def _floats(values: list[float]) -> dict[str, str]:
    return {"dtype": "f8", "b64": base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")}


def _ints(values: list[int]) -> dict[str, str]:
    """Non-negative integers in the narrowest of uint8, uint16 or int32 that holds them."""
    top = max(values, default=0)
    name, dtype = next((n, d) for limit, n, d in _INTS if top <= limit)
    return {"dtype": name, "b64": base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")}


def _strings(values: list[Any]) -> list[Any] | dict[str, Any]:
    """The values, or {"dict": distinct values, "codes": ints} when that is smaller (at most half distinct)."""
    distinct: dict[Any, int] = {}
    codes = [distinct.setdefault(v, len(distinct)) for v in values]
    if len(distinct) * 2 > len(values):
        return list(values)
    return {"dict": list(distinct), "codes": _ints(codes)}


def column(col: Any) -> list[Any]:
    """A column of `payload` as a plain list, as the browser decodes it (`big_graph.js`, `column`)."""
    if isinstance(col, list):
        return col
    if "dict" in col:
        words = col["dict"]
        return [words[c] for c in column(col["codes"])]
    dtype = {"f8": "<f8", "i4": "<i4", "u2": "<u2", "u1": "<u1"}[col["dtype"]]
    return np.frombuffer(base64.b64decode(col["b64"]), dtype=dtype).tolist()


def decoded(p: dict[str, Any]) -> dict[str, Any]:
    """`payload` with every column a plain list (tests, tools)."""
    return {**p, "nodes": {k: v if k in ("outsider", "found_label") else column(v) for k, v in p["nodes"].items()},
            "edges": {k: column(v) for k, v in p["edges"].items()}}


def edge_ids(p: dict[str, Any]) -> list[str]:
    """Every edge id of a payload, the nulls rebuilt as the browser rebuilds them (`source->target`)."""
    N, E = column(p["nodes"]["id"]), {k: column(p["edges"][k]) for k in ("id", "s", "t")}
    return [eid if eid is not None else f"{N[s]}->{N[t]}" for eid, s, t in zip(E["id"], E["s"], E["t"])]


def server_marks(elements: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The marks of a view whose find and hide the server applied (grouped, incident: `graph_views`): found is
    what it marked `found` (an aggregate by its members, never by its own summed numbers), nothing is hidden
    (hidden records are already out of the view and its roll-up)."""
    return {"found": [e["data"]["id"] for e in elements if (e["data"].get("found") or 0) > 0], "hidden": []}


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
