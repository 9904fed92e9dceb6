"""Idle nodes: services and workloads that exist in config but had no traffic in the window.

With a snapshot, adds a node (flagged `is_idle`) for every workload or service
in the requested namespaces that the traffic did not produce; without one,
only flags nodes whose series were all zero. Idle nodes are drawn grey.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.appenders.dead_node import has_traffic

NAME = "idleNode"


@dataclass
class IdleNodeAppender:
    cluster: str | None = None  # cluster name for added nodes; default: the most common one in the graph
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] not in (model.NT_BOX, model.NT_UNKNOWN) and not has_traffic(graph, nid):
                d[A.IS_IDLE] = True
        snap = ctx.snapshot
        if snap is None or ctx.options.node is not None:
            return
        clusters = Counter(d[A.CLUSTER] for _, d in graph.nodes(data=True) if model.is_ok(d.get(A.CLUSTER)))
        cluster = self.cluster or (clusters.most_common(1)[0][0] if clusters else model.UNKNOWN)
        wanted = ctx.options.namespaces
        gt = ctx.options.graph_type
        served = {(ns, svc) for _, d in graph.nodes(data=True) for _, ns, svc in d.get(A.DEST_SERVICES) or []}
        served |= {(d[A.NAMESPACE], d[A.SERVICE]) for _, d in graph.nodes(data=True) if d.get(A.SERVICE)}
        candidates = []
        if gt == model.SERVICE or ctx.options.inject:
            for svc in snap.services():
                if (svc.namespace, svc.name) not in served:
                    candidates.append((cluster, svc.namespace, svc.name, "", "", "", ""))
        if gt != model.SERVICE:
            for w in snap.workloads():
                if w.kind == "Pod" and w.obj is not None and w.obj.raw.get("metadata", {}).get("ownerReferences"):
                    continue
                candidates.append((cluster, w.namespace, "", w.namespace, w.name,
                                   w.labels.get("app", model.UNKNOWN), w.labels.get("version", model.UNKNOWN)))
        for cl, svc_ns, svc, wl_ns, wl, app, ver in candidates:
            ns = wl_ns or svc_ns
            if ns is None or (wanted is not None and ns not in wanted):
                continue
            found = model.node_key(cl, svc_ns, svc, wl_ns, wl, app, ver, gt)
            if found is None:
                continue
            key, ntype = found
            nid = model.hash_id(key)
            if nid in graph:
                continue
            fields = model.node_fields(ntype, cl, ns, wl, app, ver, svc, gt)
            graph.add_node(nid, **{A.KEY: key, A.NODE_TYPE: ntype, **fields, A.DEST_SERVICES: [], A.RATES: {},
                                   A.IS_INJECTED: False, A.IS_IDLE: True})
