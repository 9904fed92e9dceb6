"""Stable node positions between refreshes.

A force layout moves every node on each refresh, so an SRE loses the red edge
they were looking at. Instead the server remembers where each node was drawn
(per graph type) and places only new nodes, in layers by call depth. The page
then draws with Cytoscape's `preset` layout, which is also the cheapest layout
the browser can run on a 1,000-node graph.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

COLUMN_GAP = 180.0
ROW_GAP = 100.0


def _depths(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest call depth from a root (a node nobody calls); cycles are cut by a bound on passes."""
    incoming: dict[str, int] = defaultdict(int)
    out: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        if s != t:
            out[s].append(t)
            incoming[t] += 1
    depth = {n: 0 for n in node_ids}
    frontier = [n for n in node_ids if incoming[n] == 0] or node_ids[:1]
    limit = len(node_ids)
    for _ in range(limit):
        nxt = []
        for n in frontier:
            for t in out[n]:
                if depth[t] < depth[n] + 1 and depth[n] + 1 < limit:
                    depth[t] = depth[n] + 1
                    nxt.append(t)
        if not nxt:
            break
        frontier = list(dict.fromkeys(nxt))
    return depth


class PositionMemory:
    """Remembers node positions per graph type; thread-safe (Flask serves callbacks on threads)."""

    def __init__(self) -> None:
        self._positions: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        self._lock = threading.Lock()

    def place(self, graph_type: str, elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Elements with a `position` on every node: remembered ones kept, new ones laid out in layers."""
        # compound boxes take their extent from their children, so they get no position of their own
        nodes = [e for e in elements if "source" not in e["data"] and e["data"].get("type") != "box"]
        edges = [(e["data"]["source"], e["data"]["target"]) for e in elements if "source" in e["data"]]
        with self._lock:
            known = self._positions[graph_type]
            new = [n for n in nodes if n["data"]["id"] not in known]
            if new:
                self._place_new(known, new, nodes, edges)
            return [dict(e, position=dict(known[e["data"]["id"]])) if e["data"]["id"] in known and "source" not in e["data"]
                    else e for e in elements]

    @staticmethod
    def _place_new(known: dict[str, dict[str, float]], new: list[dict[str, Any]], nodes: list[dict[str, Any]],
                   edges: list[tuple[str, str]]) -> None:
        """Column = call depth; within a column, each new node goes near the mean height of its callers."""
        depth = _depths([n["data"]["id"] for n in nodes], edges)
        callers: dict[str, list[str]] = defaultdict(list)
        for s, t in edges:
            callers[t].append(s)
        column_fill: dict[int, float] = defaultdict(lambda: float("-inf"))
        for pos in known.values():
            col = round(pos["x"] / COLUMN_GAP)
            column_fill[col] = max(column_fill[col], pos["y"])
        by_column: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for n in new:
            by_column[depth[n["data"]["id"]]].append(n)
        for col in sorted(by_column):
            def wanted(n: dict[str, Any]) -> float:
                ys = [known[c]["y"] for c in callers[n["data"]["id"]] if c in known]
                return sum(ys) / len(ys) if ys else 0.0
            ranked = sorted(by_column[col], key=lambda n: (wanted(n), n["data"].get("namespace") or "",
                                                           n["data"].get("name") or ""))
            for n in ranked:
                y = max(wanted(n), column_fill[col] + ROW_GAP)
                known[n["data"]["id"]] = {"x": col * COLUMN_GAP, "y": y}
                column_fill[col] = y
