"""Compare two graphs (e.g. before and after a change): what appeared, vanished, or changed beyond a threshold."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import networkx as nx
import numpy as np

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


_PROTOCOLS = 1 << 16  # room for protocol codes in an edge key


class _Edges:
    """One graph's edges as columns (the only per-edge Python step: reading networkx's attribute dicts), in edge
    order; `key` is one int64 per edge from the node and protocol codes both graphs share."""

    def __init__(self, graph: nx.MultiDiGraph, codes: dict, protocols: dict):
        # the adjacency dicts directly (networkx's edge view costs a generator frame per edge), one tuple per
        # edge, then columns by zip (C)
        get = dict.get
        rows = [(s, t, p, d[A.RATE], get(d, A.HEALTH), get(d, A.LATENCY_P95), get(d, A.PERCENT_ERR, 0.0))
                for s, nbrs in graph._adj.items() for t, kd in nbrs.items() for p, d in kd.items()]
        cols = list(zip(*rows)) if rows else [()] * 7
        self.source, self.target, self.protocol, self.rate_raw, health, self.p95_raw, perr = cols
        self.rate, self.p95, self.perr = _floats(self.rate_raw), _floats(self.p95_raw), _floats(perr)
        self.health = np.array(health, dtype=object)
        src = np.fromiter(map(codes.__getitem__, self.source), dtype=np.int64, count=len(rows))
        tgt = np.fromiter(map(codes.__getitem__, self.target), dtype=np.int64, count=len(rows))
        pro = np.fromiter((protocols.setdefault(x, len(protocols)) for x in self.protocol), dtype=np.int64,
                          count=len(rows))
        self.key = (src * len(codes) + tgt) * _PROTOCOLS + pro  # < 2**63 below ~10^7 nodes

    def label(self, i: int, labels: dict) -> str:
        return f"{labels[self.source[i]]} -> {labels[self.target[i]]} ({self.protocol[i]})"


def _labels(graph: nx.MultiDiGraph) -> dict:
    return {n: node_label(d) for n, d in graph.nodes(data=True)}


def _floats(values: tuple) -> np.ndarray:
    """A metric column as float64, None (absent) as NaN (numpy's own conversion)."""
    return np.array(values, dtype=float)


def _align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each key of `a`: whether `b` has it, and its row in `b` (any where it has not)."""
    if not len(b):
        return np.zeros(len(a), dtype=bool), np.zeros(len(a), dtype=np.int64)
    order = np.argsort(b, kind="stable")
    pos = np.searchsorted(b[order], a).clip(0, len(b) - 1)
    row = order[pos]
    return b[row] == a, row


def _moved(before: np.ndarray, after: np.ndarray, rel: float, floor: float) -> np.ndarray:
    """Which values moved: both ends under `floor` never count; else the move relative to max(|before|, floor) > rel."""
    with np.errstate(invalid="ignore", divide="ignore"):
        big = np.maximum(np.abs(before), np.abs(after)) >= floor
        return big & (np.abs(after - before) / np.maximum(np.abs(before), floor) > rel)


def diff_graphs(before: nx.MultiDiGraph, after: nx.MultiDiGraph, rate_threshold: float = 0.5,
                min_rate: float = 0.01, latency_threshold: float = 0.5, error_threshold: float = 0.05) -> GraphDiff:
    """Differences between two windows.

    Rates and p95 latency count as changed when they move by more than the
    relative threshold (0.5 = 50 %), ignoring rates below `min_rate` req/s; the
    error share when it moves by more than `error_threshold` (absolute, 0.05 =
    5 points); health whenever the status differs.

    The two edge tables are aligned by one pandas merge on the edge key and every
    threshold is a column-wise mask (two 10k-workload windows: a Python loop per
    edge took seconds); changes are listed by (label, field), edges in `after`'s order.
    """
    out = GraphDiff()
    lb, la = _labels(before), _labels(after)
    out.nodes_added = sorted(la[n] for n in after.nodes if n not in before)
    out.nodes_removed = sorted(lb[n] for n in before.nodes if n not in after)
    for n, d in after.nodes(data=True):
        if n in before:
            hb, ha = before.nodes[n].get(A.HEALTH), d.get(A.HEALTH)
            if hb != ha and hb is not None and ha is not None:
                out.node_health_changes.append((la[n], hb, ha))
    out.node_health_changes.sort()
    codes = {n: i for i, n in enumerate({**lb, **la})}
    protocols: dict = {}
    b, a = _Edges(before, codes, protocols), _Edges(after, codes, protocols)
    common, row = _align(a.key, b.key)  # each `after` edge's row in `before`
    out.edges_added = sorted(a.label(i, la) for i in np.flatnonzero(~common))
    out.edges_removed = sorted(b.label(i, lb) for i in np.flatnonzero(~_align(b.key, a.key)[0]))
    idx = np.flatnonzero(common)
    if not len(idx):
        return out
    brow = row[idx]
    rb, ra, pb, pa = b.rate[brow], a.rate[idx], b.p95[brow], a.p95[idx]
    eb, ea = b.perr[brow] / 100.0, a.perr[idx] / 100.0
    hb, ha = b.health[brow], a.health[idx]
    present = np.array([bool(x) for x in hb], dtype=bool) & np.array([bool(x) for x in ha], dtype=bool)
    health = present & (hb != ha)
    latency = ~np.isnan(pb) & ~np.isnan(pa) & _moved(pb, pa, latency_threshold, 1.0)
    with np.errstate(invalid="ignore"):
        error = np.abs(ea - eb) > error_threshold
    raw = {A.RATE: (b.rate_raw, a.rate_raw), A.LATENCY_P95: (b.p95_raw, a.p95_raw)}
    found: list[tuple] = []  # (label, field, row in after, before, after)
    labels: dict[int, str] = {}
    for name, mask in ((A.RATE, _moved(rb, ra, rate_threshold, min_rate)), (A.HEALTH, health),
                       (A.LATENCY_P95, latency), (A.ERROR_RATE, error)):
        for j in np.flatnonzero(mask):  # only the changed edges: a few per cent of them, not every edge
            i, k = int(idx[j]), int(brow[j])
            label = labels.get(i) or labels.setdefault(i, a.label(i, la))
            if name == A.HEALTH:
                x, y = hb[j], ha[j]
            elif name == A.ERROR_RATE:
                x, y = float(eb[j]), float(ea[j])
            else:
                x, y = raw[name][0][k], raw[name][1][i]
            found.append((label, name, i, x, y))
    found.sort(key=lambda c: (c[0], c[1], c[2]))
    out.changes = [EdgeChange(a.source[i], a.target[i], a.protocol[i], label, name, x, y)
                   for label, name, i, x, y in found]
    return out


def _plain(v):
    """numpy scalars as Python numbers (the record is JSON'd by the API)."""
    return v.item() if isinstance(v, np.generic) else v
