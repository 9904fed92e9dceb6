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

from mesh.config import host_covers
from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext

NAME = "serviceEntry"


@dataclass
class ServiceEntryAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        entries = ctx.snapshot.of_kind("ServiceEntry") if ctx.snapshot is not None else []
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] != model.NT_SERVICE:
                continue
            if d[A.SERVICE] in (model.PASSTHROUGH, model.BLACKHOLE):
                d[A.IS_EGRESS_CLUSTER] = True
                continue
            d.pop(A.IS_SERVICE_ENTRY, None)
            hosts = {d[A.SERVICE]} | {h for _, t, detail in graph.in_edges(nid, data=A.RESPONSES) if detail
                                      for codes in detail.values() for h in codes["hosts"]}
            hosts = {h.rsplit(":", 1)[0] for h in hosts if h and h != model.UNKNOWN}
            for se in entries:
                se_hosts = [h for h in (se.spec or {}).get("hosts") or [] if isinstance(h, str)]
                if any(host_covers(p, h) for p in se_hosts for h in hosts):
                    d[A.IS_SERVICE_ENTRY] = {"name": f"{se.namespace}/{se.name}", "hosts": se_hosts,
                                             "location": (se.spec or {}).get("location", "MESH_EXTERNAL")}
                    break
