"""Service entries: mark service nodes that stand for a ServiceEntry host, and egress catch-alls.

Kiali collapses every host of one ServiceEntry into a single node; here each
matched service node is marked with the entry (namespace/name, location,
hosts) and keeps its own edges, so per-host rates stay visible. Nodes for
PassthroughCluster/BlackHoleCluster (traffic leaving the mesh unregistered)
are marked `is_egress_cluster` with or without config.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.config_index import service_entry_hosts

NAME = "serviceEntry"


@dataclass
class ServiceEntryAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        config = ctx.config
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] != model.NT_SERVICE:
                continue
            if d[A.SERVICE] in (model.PASSTHROUGH, model.BLACKHOLE):
                d[A.IS_EGRESS_CLUSTER] = True
                continue
            d.pop(A.IS_SERVICE_ENTRY, None)
            if config is None:
                continue
            hosts = {d[A.SERVICE]} | {h for _, t, detail in graph.in_edges(nid, data=A.RESPONSES) if detail
                                      for codes in detail.values() for h in codes["hosts"]}
            hosts = {h.rsplit(":", 1)[0] for h in hosts if h and h != model.UNKNOWN}
            se = config.service_entry(hosts)
            if se is not None:
                d[A.IS_SERVICE_ENTRY] = {"name": f"{se.namespace}/{se.name}", "hosts": service_entry_hosts(se),
                                         "location": (se.spec or {}).get("location", "MESH_EXTERNAL")}
