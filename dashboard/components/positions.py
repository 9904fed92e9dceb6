"""Stable node positions between refreshes.

A force layout moves every node on each refresh, so an SRE loses the red edge
they were looking at. Instead the server remembers where each node was drawn
(per graph type) and places only new nodes, in layers by call depth. The page
then draws with Cytoscape's `preset` layout, which is also the cheapest layout
the browser can run on a 1,000-node graph.
"""
from __future__ import annotations

import math
import threading
from collections import defaultdict
from typing import Any

COLUMN_GAP = 180.0
ROW_GAP = 100.0
ASPECT = 1.6  # width / height of the graph's box on a laptop screen: a big graph is laid out near that shape


def lanes_for(columns: int, tallest: int) -> int:
    """Side-by-side lanes per depth column that bring the drawing's width / height closest to ASPECT.

    One lane a column made the synthetic 10,000-workload mesh (50 depths of 200 workloads) a strip 0.45
    as wide as tall (and callers' heights pushed it to 0.04): fitted to the screen, a sliver. More lanes
    only where the graph is much taller than wide; a small graph stays one lane a column.
    """
    def off(lanes: int) -> float:
        width = max(1, columns * lanes) * COLUMN_GAP
        height = max(1, math.ceil(tallest / lanes)) * ROW_GAP
        return abs(math.log(width / height / ASPECT))
    return min(range(1, max(1, tallest) + 1), key=off)


def _acyclic(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Successor lists without the edges that close a cycle (found by depth-first search from the roots)."""
    out: dict[str, list[str]] = defaultdict(list)
    incoming: dict[str, int] = defaultdict(int)
    for s, t in edges:
        if s != t:
            out[s].append(t)
            incoming[t] += 1
    kept: dict[str, list[str]] = defaultdict(list)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    roots = [n for n in node_ids if incoming[n] == 0] + node_ids  # then anything left (pure cycles)
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                continue  # a back edge: dropping it is what makes the layering finite
            else:
                kept[node].append(child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(out[child])))
    return kept


def _depths(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest call depth from a root (a node nobody calls), after cutting cycles."""
    succ = _acyclic(node_ids, edges)
    indeg: dict[str, int] = defaultdict(int)
    for s in succ:
        for t in succ[s]:
            indeg[t] += 1
    depth = {n: 0 for n in node_ids}
    ready = [n for n in node_ids if indeg[n] == 0]
    while ready:
        n = ready.pop()
        for t in succ[n]:
            depth[t] = max(depth[t], depth[n] + 1)
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return depth


class PositionMemory:
    """Remembers node positions per graph type; thread-safe (Flask serves callbacks on threads)."""

    def __init__(self) -> None:
        self._positions: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        self._lanes: dict[str, int] = {}  # sub-columns per depth, fixed at a graph type's first layout
        self._lock = threading.Lock()

    def place(self, graph_type: str, elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Elements with a `position` on every node: remembered ones kept, new ones laid out in layers."""
        # compound boxes take their extent from their children, so they get no position of their own
        nodes = [e for e in elements if "source" not in e["data"] and e["data"].get("type") != "box"]
        with self._lock:
            known = self._positions[graph_type]
            new = [n for n in nodes if n["data"]["id"] not in known]
            if new:  # a refresh with no new node lays out nothing: it only hands back the remembered positions
                edges = [(e["data"]["source"], e["data"]["target"]) for e in elements if "source" in e["data"]]
                self._place_new(graph_type, known, new, nodes, edges)
            return [dict(e, position=dict(known[e["data"]["id"]])) if "source" not in e["data"] and e["data"]["id"] in known
                    else e for e in elements]

    def known(self, graph_type: str) -> dict[str, dict[str, float]]:
        """A copy of the remembered positions of a view (the grouped view expands aggregates in place from them)."""
        with self._lock:
            return {k: dict(v) for k, v in self._positions[graph_type].items()}

    def remember(self, graph_type: str, positions: dict[str, dict[str, float]]) -> None:
        """Set positions of nodes not placed yet (placed ones keep theirs: nothing already drawn moves)."""
        with self._lock:
            known = self._positions[graph_type]
            for nid, pos in positions.items():
                known.setdefault(nid, dict(pos))

    def _place_new(self, graph_type: str, known: dict[str, dict[str, float]], new: list[dict[str, Any]],
                   nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> None:
        """Column = call depth; within a column, each new node goes near the mean height of its callers.

        A depth holding many more nodes than the graph is deep (a hub's hundred callers) wraps into
        side-by-side lanes, so the drawing stays closer to the screen's shape than to a tall strip.
        """
        depth = _depths([n["data"]["id"] for n in nodes], edges)
        # members of one compound box (an app's versions) share a column, so the box stays compact
        first_column: dict[str, int] = {}
        for n in nodes:
            parent = n["data"].get("parent")
            if parent:
                first_column[parent] = min(first_column.get(parent, depth[n["data"]["id"]]), depth[n["data"]["id"]])
        for n in nodes:
            if n["data"].get("parent"):
                depth[n["data"]["id"]] = first_column[n["data"]["parent"]]
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
        if graph_type not in self._lanes:
            self._lanes[graph_type] = lanes_for(len(by_column), max(len(v) for v in by_column.values()))
        lanes = self._lanes[graph_type]
        for col in sorted(by_column):
            def wanted(n: dict[str, Any]) -> float:
                ys = [known[c]["y"] for c in callers[n["data"]["id"]] if c in known]
                return sum(ys) / len(ys) if ys else 0.0
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for n in by_column[col]:
                groups[n["data"].get("parent") or n["data"]["id"]].append(n)
            ordered = sorted(groups.items(), key=lambda kv: (
                min(wanted(m) for m in kv[1]), kv[1][0]["data"].get("namespace") or "", kv[0]))
            fresh = column_fill[col * lanes] == float("-inf") and lanes == 1
            placed: list[tuple[str, float]] = []
            for _, members in ordered:  # a box's members go down one lane together
                lane = min(range(col * lanes, col * lanes + lanes), key=lambda i: column_fill[i])
                for n in sorted(members, key=lambda m: m["data"].get("name") or ""):
                    want = wanted(n) if lanes == 1 else 0.0
                    y = max(want, column_fill[lane] + ROW_GAP)
                    known[n["data"]["id"]] = {"x": lane * COLUMN_GAP, "y": y}
                    column_fill[lane] = y
                    placed.append((n["data"]["id"], want))
            if fresh and placed:
                # each node sits at or below its callers' mean height, so a column's block slid down by about
                # half its height, depth after depth; centring a new column's block on the heights its nodes
                # wanted keeps the order and the spacing without that drift
                shift = sum(known[i]["y"] for i, _ in placed) / len(placed) - sum(w for _, w in placed) / len(placed)
                for i, _ in placed:
                    known[i]["y"] -= shift
                column_fill[col * lanes] -= shift
