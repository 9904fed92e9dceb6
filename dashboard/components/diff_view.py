"""The graph in "diff" mode (issue #14): the window on screen compared with an earlier one of the same length.

Edges and nodes that appeared are green, those that vanished come back as grey
dashed ghosts (they are not in the window on screen), and edges whose rate,
error %, p95 or mTLS share moved are red when any of them got worse, blue when
they only got better. The verdicts are topology.compare's (the same table
/api/v1/graph/diff serves), so the picture and the API never disagree. The
changes between the two windows are listed beside the graph.
"""
from __future__ import annotations

from typing import Any

from mesh.journal import is_change
from topology.model import edge_id

COMPARES = [(0, "off"), (-1, "previous window"), (300, "5m before"), (900, "15m before"), (3600, "1h before"),
            (86400, "24h before")]
CLASSES = ("diff-appeared", "diff-vanished", "diff-worse", "diff-better")
METRICS = ("rate", "error_pct", "p95_ms", "mtls_pct")


def offset_of(compare: int | None, window_s: float) -> float:
    """How many seconds before the window on screen the compared window ends (-1: the previous window)."""
    if not compare:
        return 0.0
    return float(window_s) if compare == -1 else float(compare)


def verdict(row: dict[str, Any]) -> str:
    """One class for an edge row of topology.compare: appeared | vanished | worse | better | '' (moved sideways)."""
    if row.get("status") in ("appeared", "vanished"):
        return str(row["status"])
    verdicts = {row.get(f"{m}_verdict") for m in METRICS}
    return "worse" if "worse" in verdicts else "better" if "better" in verdicts else ""


def _why(row: dict[str, Any]) -> str:
    parts = []
    for m in METRICS:
        if row.get(f"{m}_verdict"):
            parts.append(f"{m} {_num(row.get(f'{m}_before'))} -> {_num(row.get(f'{m}_after'))}")
    return "; ".join(parts)


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3g}"


def apply(elements: list[dict[str, Any]], diff: dict[str, Any]) -> list[dict[str, Any]]:
    """The elements on screen with diff classes (and `diff` text in their data), plus ghosts of what vanished."""
    rows = {edge_id(r["source"], r["target"], r["protocol"]): r for r in diff.get("edges") or []}
    appeared_nodes = set((diff.get("nodes") or {}).get("appeared") or [])
    present = {e["data"]["id"] for e in elements}
    out = []
    for e in elements:
        d = e["data"]
        cls = ""
        if "source" in d:
            row = rows.get(d["id"])
            cls = verdict(row) if row else ""
            data = {**d, "diff": (row.get("status") if cls in ("appeared", "vanished") else _why(row)) if row else ""}
        else:
            cls = "appeared" if d.get("label") in appeared_nodes or d.get("name") in appeared_nodes else ""
            data = d
        classes = " ".join(c for c in [e.get("classes", ""), f"diff-{cls}" if cls else ""] if c)
        out.append({**e, "data": data, **({"classes": classes} if classes else {})})
    ghosts: list[dict[str, Any]] = []
    for eid, r in rows.items():
        if r.get("status") != "vanished" or eid in present:
            continue
        src_label, _, rest = str(r.get("label") or "").partition(" -> ")
        dst_label = rest.rsplit(" (", 1)[0]
        for nid, label in ((r["source"], src_label), (r["target"], dst_label)):
            if nid not in present:
                present.add(nid)
                ghosts.append({"data": {"id": nid, "label": label or nid, "diff": "vanished"},
                               "classes": "diff-vanished"})
        ghosts.append({"data": {"id": eid, "source": r["source"], "target": r["target"], "diff": "vanished",
                                "label": ""}, "classes": "diff-vanished"})
    return out + ghosts


def styles() -> list[dict[str, Any]]:
    """Stylesheet rules for the diff classes (appended after the normal ones, so they win)."""
    return [
        {"selector": ".diff-appeared", "style": {"line-color": "#16a34a", "target-arrow-color": "#16a34a",
                                                 "border-color": "#16a34a", "border-width": 4, "width": 4}},
        {"selector": ".diff-vanished", "style": {"line-color": "#9ca3af", "target-arrow-color": "#9ca3af",
                                                 "line-style": "dashed", "opacity": 0.55, "border-style": "dashed",
                                                 "background-color": "#e5e7eb"}},
        {"selector": "edge.diff-worse", "style": {"line-color": "#dc2626", "target-arrow-color": "#dc2626", "width": 4}},
        {"selector": "edge.diff-better", "style": {"line-color": "#2563eb", "target-arrow-color": "#2563eb",
                                                   "width": 4}},
    ]


def summary_line(diff: dict[str, Any]) -> str:
    s = diff.get("summary") or {}
    changes = [c for c in diff.get("config_changes") or [] if is_change(c)]
    return (f"compared with the window ending {diff['before']['end'] - diff['after']['end']:+.0f} s: "
            f"{s.get('appeared', 0)} appeared, {s.get('vanished', 0)} vanished, {s.get('changed', 0)} changed "
            f"(green new, grey dashed gone, red worse, blue better); {len(changes)} config change(s) between")


def compared(source: Any, graph_type: str, namespaces: list[str] | None, window: float | None, end_ago: float | None,
             compare: int | None, elements: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The topology page's hook: (elements in diff mode, notes) when a comparison is chosen, else unchanged."""
    from dashboard.query import QueryError

    fn = getattr(source, "graph_diff", None)
    if not compare or fn is None:
        return elements, []
    w = float(window or 300)
    after_end = source.now() - float(end_ago or 0)
    try:
        diff = fn(graph_type, namespaces or None, w, after_end - offset_of(compare, w), after_end)
    except QueryError as exc:
        return elements, [f"compare: {exc}"]
    # the journal answers newest first; its first listing of the objects (`initial`) is no change
    changes = sorted((c for c in diff.get("config_changes") or [] if is_change(c)),
                     key=lambda c: -float(c.get("time") or 0.0))
    between = ", ".join(dict.fromkeys(f"{c.get('op')} {c.get('kind')} {c.get('namespace') or ''}/{c.get('name')}"
                                      for c in changes[:5]))  # the latest five
    return apply(elements, diff), [summary_line(diff) + (f": {between}" if between else "")]


def compare_of(query: dict[str, str]) -> int:
    """?compare= (bookmarkable diff mode): one of COMPARES' values, else off."""
    try:
        value = int(float(query.get("compare", "0") or 0))
    except ValueError:
        return 0
    return value if value in dict(COMPARES) else 0
