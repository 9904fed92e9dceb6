"""Ambient: fold traffic through waypoint proxies into readable edges.

A request from A through waypoint W shows as A->W ("to") and W->B ("from").
W's return traffic to A (W->A) is folded into the A->W edge as `from_edge`, so
the pair reads as one bidirectional edge instead of a loop (like Kiali, the folded edge is
keyed as A->A). Only acts when the
request names waypoints (GraphOptions.waypoints).
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext

NAME = "ambient"


@dataclass
class AmbientAppender:
    name: str = NAME
    finalizer: bool = True

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        if not ctx.options.waypoints:
            return
        waypoints = [n for n, d in graph.nodes(data=True) if d.get(A.IS_WAYPOINT)]
        folded = []
        for w in waypoints:
            for a, _, proto, d in list(graph.in_edges(w, keys=True, data=True)):
                if a == w:
                    continue
                d[A.WAYPOINT] = {"direction": "to"}
                if graph.has_edge(w, a, proto):
                    back = graph.edges[w, a, proto]
                    back[A.WAYPOINT] = {"direction": "from"}
                    d[A.WAYPOINT]["from_edge"] = {"id": model.edge_id(a, a, proto), "source": a, "target": a,
                                                  "attrs": back}
                    folded.append((w, a, proto))
            for _, b, proto, d in graph.out_edges(w, keys=True, data=True):
                d.setdefault(A.WAYPOINT, {"direction": "from"})
        graph.remove_edges_from(folded)
