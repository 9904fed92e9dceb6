"""The incident view: what is broken, what is around it, and the config objects blamed; nothing else.

On a 10,000-workload mesh the question during an incident is never "show me everything"; it
is "which calls fail, who calls them and who do they call". The view keeps:

- the core: the unhealthy (failing or degraded) edges the incident is about: the seed edges
  (a finding's evidence) and every unhealthy edge touching a seed node; with no seeds, every
  unhealthy edge in the graph;
- the k-hop neighbourhood of the core's nodes (calls in either direction), and the edges among
  what is kept;
- one node per blamed config object (kind namespace/name, its file:line in `file`: a node record
  must not carry `source`, the key that makes a record an edge), joined by a `blames` edge to the
  seed nodes its finding is about.

Like `topology.aggregate` it works over the graph records the API serves, so live graphs, past
windows and snapshots focus alike. The neighbourhood is a breadth-first search done one hop at a
time over edge arrays (hash-based pandas isin: numpy's isin on object arrays compares every pair),
not a Python loop per edge.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

UNHEALTHY = ("failing", "degraded")
MAX_HOPS = 5  # beyond this the neighbourhood of any hub is the whole mesh
CONFIG = "config"  # node type of a blamed config object
BLAMES = "blames"  # protocol of the edge from a config object to what it breaks


@dataclass
class Blamed:
    """A config object a finding points at, and the graph elements that finding is about."""

    kind: str
    namespace: str
    name: str
    source: str = ""  # file:line
    path: str = ""  # YAML path of the offending field
    elements: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"cfg:{self.kind}/{self.namespace}/{self.name}"


@dataclass
class Focused:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    core_edges: set[str]
    hidden_nodes: int
    hidden_edges: int


def _isin(values: pd.Series, wanted: set[str]) -> np.ndarray:
    return values.isin(wanted).to_numpy() if wanted else np.zeros(len(values), dtype=bool)


def neighbourhood(sources: pd.Series, targets: pd.Series, start: set[str], hops: int) -> set[str]:
    """Node ids at most `hops` calls (either direction) from `start`."""
    seen = set(start)
    frontier = set(start)
    for _ in range(hops):
        if not frontier:
            break
        nxt = set(targets[_isin(sources, frontier)]) | set(sources[_isin(targets, frontier)])
        frontier = nxt - seen
        seen |= frontier
    return seen


def focus(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], seeds: Iterable[str] | None = None,
          hops: int = 1, blamed: Iterable[Blamed] = ()) -> Focused:
    """The incident view of a graph around `seeds` (element ids of a finding or incident).

    `seeds=None` (or seeds none of which is in the graph) focuses on every unhealthy edge.
    """
    if not 0 <= hops <= MAX_HOPS:
        raise ValueError(f"hops must be between 0 and {MAX_HOPS}, got {hops}")
    node_ids = {n["id"] for n in nodes}
    frame = pd.DataFrame.from_records([(e["id"], e["source"], e["target"], e.get("health")) for e in edges],
                                      columns=["id", "source", "target", "health"])
    ids, src, dst = frame["id"], frame["source"], frame["target"]
    bad = frame["health"].isin(UNHEALTHY).to_numpy()
    wanted = set(seeds or ())
    seed_edges = _isin(ids, wanted)
    seed_nodes = (wanted & node_ids) | set(src[seed_edges]) | set(dst[seed_edges])
    if seed_nodes:
        core = seed_edges | (bad & (_isin(src, seed_nodes) | _isin(dst, seed_nodes)))
    else:
        core = bad
    start = seed_nodes | set(src[core]) | set(dst[core])
    kept = neighbourhood(src, dst, start, hops)
    keep_edge = core | (_isin(src, kept) & _isin(dst, kept))
    out_nodes = [n for n in nodes if n["id"] in kept]
    out_edges = [e for e, k in zip(edges, keep_edge) if k]
    for b in blamed:
        out_nodes.append({"id": b.id, "type": CONFIG, "name": f"{b.kind} {b.namespace}/{b.name}".replace(" /", " "),
                          "namespace": b.namespace, "kind": b.kind, "file": b.source, "path": b.path,
                          "health": "na", "health_reason": f"blamed config object {b.source}".strip(), "badges": []})
        for target in sorted(set(b.elements) & kept):
            out_edges.append({"id": f"{b.id}>{target}", "source": b.id, "target": target, "protocol": BLAMES,
                              "rps": 0.0, "error_pct": 0.0, "health": "na", "mtls_state": "none",
                              "health_reason": f"{b.kind} {b.namespace}/{b.name} is blamed for this"})
    return Focused(out_nodes, out_edges, set(ids[core]),
                   hidden_nodes=len(nodes) - sum(1 for n in out_nodes if n.get("type") != CONFIG),
                   hidden_edges=len(edges) - int(keep_edge.sum()))
