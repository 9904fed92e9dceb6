"""Compare two graphs (e.g. before and after a change): what appeared, vanished, or changed beyond a threshold."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import networkx as nx

from topology import attrs as A
from topology.export.cytoscape import node_label


@dataclass
class EdgeChange:
    source: str  # node ids
    target: str
    protocol: str
    label: str  # "productpage-v1 -> reviews-v2 (http)"
    field: str  # rate | health | latency_p95_ms | error_rate
    before: float | str | None
    after: float | str | None


@dataclass
class GraphDiff:
    nodes_added: list[str] = field(default_factory=list)  # node labels
    nodes_removed: list[str] = field(default_factory=list)
    edges_added: list[str] = field(default_factory=list)  # edge labels
    edges_removed: list[str] = field(default_factory=list)
    changes: list[EdgeChange] = field(default_factory=list)
    node_health_changes: list[tuple[str, str, str]] = field(default_factory=list)  # (label, before, after)

    @property
    def empty(self) -> bool:
        return not (self.nodes_added or self.nodes_removed or self.edges_added or self.edges_removed
                    or self.changes or self.node_health_changes)

    def to_dict(self) -> dict:
        return asdict(self)


def _edge_label(graph: nx.MultiDiGraph, s: str, t: str, p: str) -> str:
    return f"{node_label(graph.nodes[s])} -> {node_label(graph.nodes[t])} ({p})"


def _changed(before: float, after: float, rel: float, floor: float) -> bool:
    if max(abs(before), abs(after)) < floor:
        return False
    base = max(abs(before), floor)
    return abs(after - before) / base > rel


def diff_graphs(before: nx.MultiDiGraph, after: nx.MultiDiGraph, rate_threshold: float = 0.5,
                min_rate: float = 0.01, latency_threshold: float = 0.5, error_threshold: float = 0.05) -> GraphDiff:
    """Differences between two windows.

    Rates and p95 latency count as changed when they move by more than the
    relative threshold (0.5 = 50 %), ignoring rates below `min_rate` req/s; the
    error share when it moves by more than `error_threshold` (absolute, 0.05 =
    5 points); health whenever the status differs.
    """
    out = GraphDiff()
    out.nodes_added = sorted(node_label(after.nodes[n]) for n in after.nodes if n not in before)
    out.nodes_removed = sorted(node_label(before.nodes[n]) for n in before.nodes if n not in after)
    for n in after.nodes:
        if n in before:
            hb, ha = before.nodes[n].get(A.HEALTH), after.nodes[n].get(A.HEALTH)
            if hb != ha and hb is not None and ha is not None:
                out.node_health_changes.append((node_label(after.nodes[n]), hb, ha))
    be = {(s, t, p): d for s, t, p, d in before.edges(keys=True, data=True)}
    ae = {(s, t, p): d for s, t, p, d in after.edges(keys=True, data=True)}
    out.edges_added = sorted(_edge_label(after, *k) for k in ae if k not in be)
    out.edges_removed = sorted(_edge_label(before, *k) for k in be if k not in ae)
    for k, da in ae.items():
        db = be.get(k)
        if db is None:
            continue
        label = _edge_label(after, *k)

        def add(name: str, b, a) -> None:
            out.changes.append(EdgeChange(k[0], k[1], k[2], label, name, b, a))

        if _changed(db[A.RATE], da[A.RATE], rate_threshold, min_rate):
            add(A.RATE, db[A.RATE], da[A.RATE])
        if db.get(A.HEALTH) != da.get(A.HEALTH) and db.get(A.HEALTH) and da.get(A.HEALTH):
            add(A.HEALTH, db[A.HEALTH], da[A.HEALTH])
        lb, la = db.get(A.LATENCY_P95), da.get(A.LATENCY_P95)
        if lb is not None and la is not None and not (math.isnan(lb) or math.isnan(la)) and _changed(lb, la, latency_threshold, 1.0):
            add(A.LATENCY_P95, lb, la)
        eb, ea = db.get(A.PERCENT_ERR, 0.0) / 100.0, da.get(A.PERCENT_ERR, 0.0) / 100.0
        if abs(ea - eb) > error_threshold:
            add(A.ERROR_RATE, eb, ea)
    out.node_health_changes.sort()
    out.changes.sort(key=lambda c: (c.label, c.field))
    return out
