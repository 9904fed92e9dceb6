"""Traffic-generator finalizer: a node with outgoing but no incoming traffic is a root (e.g. a gateway)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext

NAME = "trafficGenerator"


@dataclass
class TrafficGeneratorAppender:
    name: str = NAME
    finalizer: bool = True

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        pred, succ = graph.pred, graph.succ
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] != model.NT_BOX and not pred[nid] and succ[nid]:
                d[A.IS_ROOT] = True
