"""Dead nodes: prune nodes with no traffic whose workload is gone; flag workloads scaled to zero.

Only acts with a config snapshot (without one we cannot tell "gone" from
"quiet"). Pruning repeats until nothing changes, since removing one node can
leave its neighbour without traffic. Service nodes are never pruned while they
still have edges; versionless app nodes are never dead (Kiali's rules).
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext

NAME = "deadNode"


def has_traffic(graph: nx.MultiDiGraph, nid: str) -> bool:
    return any(r > 0 for r in graph.nodes[nid].get(A.RATES, {}).values())


def _replicas(w) -> int | None:
    if w.obj is None or w.kind == "Pod":
        return None
    value = (w.obj.spec or {}).get("replicas")
    return value if isinstance(value, int) else None


@dataclass
class DeadNodeAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        config = ctx.config
        if config is None:
            return
        apps = config.apps
        changed = True
        while changed:
            changed = False
            for nid, d in list(graph.nodes(data=True)):
                ntype = d[A.NODE_TYPE]
                if ntype in (model.NT_BOX, model.NT_UNKNOWN) or has_traffic(graph, nid):
                    continue
                if ntype == model.NT_SERVICE:
                    gone = graph.degree(nid) == 0 and not d.get(A.IS_SERVICE_ENTRY) and not d.get(A.IS_EGRESS_CLUSTER)
                elif ntype == model.NT_APP and not model.is_ok(d.get(A.WORKLOAD)):
                    gone = False if not model.is_ok(d.get(A.VERSION)) else (d[A.NAMESPACE], d[A.APP]) not in apps
                else:
                    gone = not config.has_workload(d[A.NAMESPACE], d.get(A.WORKLOAD))
                if gone:
                    graph.remove_node(nid)
                    changed = True
        for nid, d in graph.nodes(data=True):
            w = config.last_workload(d[A.NAMESPACE], d.get(A.WORKLOAD))
            if w is not None and _replicas(w) == 0:
                d[A.IS_DEAD] = True
            else:
                d.pop(A.IS_DEAD, None)
