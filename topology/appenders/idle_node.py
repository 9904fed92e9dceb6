"""Idle nodes: services and workloads that exist in config but had no traffic in the window.

With a snapshot, adds a node (flagged `is_idle`) for every workload or service
in the requested namespaces that the traffic did not produce; without one,
only flags nodes whose series were all zero. Idle nodes are drawn grey.
Workloads a controller in the snapshot runs (pods, a Deployment's ReplicaSets)
are not workloads of their own: Istio's telemetry names the top owner.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.appenders.dead_node import has_traffic
from topology.config_index import ConfigIndex

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
        config = ctx.config
        if config is None or ctx.options.node is not None:
            return
        clusters = Counter(d[A.CLUSTER] for _, d in graph.nodes(data=True) if model.is_ok(d.get(A.CLUSTER)))
        cluster = self.cluster or (clusters.most_common(1)[0][0] if clusters else model.UNKNOWN)
        wanted = ctx.options.namespaces
        gt = ctx.options.graph_type
        services, workloads = config.derived((NAME, cluster, gt), lambda: _candidates(config, cluster, gt))
        candidates: list[Candidate] = []
        if gt == model.SERVICE or ctx.options.inject:
            served = {(ns, svc) for _, d in graph.nodes(data=True) for _, ns, svc in d.get(A.DEST_SERVICES) or []}
            served |= {(d[A.NAMESPACE], d[A.SERVICE]) for _, d in graph.nodes(data=True) if d.get(A.SERVICE)}
            candidates += [c for c in services if (c.namespace, c.service) not in served]
        if gt != model.SERVICE:
            candidates += workloads
        for c in candidates:
            if (wanted is not None and c.namespace not in wanted) or c.nid in graph:
                continue
            graph.add_node(c.nid, **{A.KEY: c.key, A.NODE_TYPE: c.node_type, **c.fields, A.DEST_SERVICES: [],
                                     A.RATES: {}, A.IS_INJECTED: False, A.IS_IDLE: True})
        _senders_are_not_idle(graph, config)


def _senders_are_not_idle(graph: nx.MultiDiGraph, config: ConfigIndex) -> None:
    """A service nobody calls whose workloads send (a gateway, a traffic generator) is a pure source, not idle.

    Its node carries the outbound rates of the workloads its selector picks, so lists of services
    show it sending instead of "idle 0.0 rps" while the graph draws its traffic.
    """
    sending: dict[tuple[str, str], dict[str, float]] = {}
    for _, d in graph.nodes(data=True):
        rates = d.get(A.RATES) or {}
        out = {k: v for k, v in rates.items() if k.endswith("Out") and v}
        if out and d.get(A.WORKLOAD) and d[A.NODE_TYPE] != model.NT_SERVICE:
            sending[(d.get(A.NAMESPACE), d[A.WORKLOAD])] = out
    if not sending:
        return
    snap = config.snapshot
    for _, d in graph.nodes(data=True):
        if d[A.NODE_TYPE] != model.NT_SERVICE or not d.get(A.IS_IDLE) or not d.get(A.SERVICE):
            continue
        svc = snap.find("Service", d.get(A.NAMESPACE), d[A.SERVICE])
        selector = (svc.raw.get("spec") or {}).get("selector") if svc is not None else None
        if not selector:
            continue
        total: dict[str, float] = {}
        for w in snap.matching_workloads(d.get(A.NAMESPACE), selector):
            for k, v in sending.get((w.namespace, w.name), {}).items():
                total[k] = total.get(k, 0.0) + v
        if total:
            d[A.IS_IDLE] = False
            d[A.RATES] = {**(d.get(A.RATES) or {}), **total}


def _owned(config: ConfigIndex, w) -> bool:
    """A pod some controller created, or a workload run by another one in the snapshot (a Deployment's
    ReplicaSet, a CronJob's Job): telemetry names the top owner, so these are never nodes of their own."""
    refs = w.obj.raw.get("metadata", {}).get("ownerReferences") if w.obj is not None else None
    if not refs:
        return False
    if w.kind == "Pod":
        return True
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("controller", True) and isinstance(ref.get("name"), str):
            owner = config.last_workload(w.namespace, ref["name"])
            if owner is not None and owner.kind == ref.get("kind"):
                return True
    return False


@dataclass(frozen=True)
class Candidate:
    """A node config says exists (a Service, or a workload that is not a pod some controller owns)."""

    namespace: str
    service: str
    nid: str
    key: str
    node_type: str
    fields: dict


def _candidates(config: ConfigIndex, cluster: str, gt: str) -> tuple[list[Candidate], list[Candidate]]:
    """(service candidates, workload candidates) of a snapshot for one cluster name and graph type, in
    config order; the same for every graph of that snapshot, so computed once per snapshot."""
    snap = config.snapshot
    rows = [("svc", svc.namespace, svc.name, "", "", "", "") for svc in snap.services()]
    for w in snap.workloads():
        if _owned(config, w):
            continue
        rows.append(("wl", w.namespace, "", w.namespace, w.name,
                     w.labels.get("app", model.UNKNOWN), w.labels.get("version", model.UNKNOWN)))
    out: dict[str, list[Candidate]] = {"svc": [], "wl": []}
    for kind, svc_ns, svc, wl_ns, wl, app, ver in rows:
        ns = wl_ns or svc_ns
        if ns is None:
            continue
        found = model.node_key(cluster, svc_ns, svc, wl_ns, wl, app, ver, gt)
        if found is None:
            continue
        key, ntype = found
        out[kind].append(Candidate(ns, svc, model.hash_id(key), key, ntype,
                                   model.node_fields(ntype, cluster, ns, wl, app, ver, svc, gt)))
    return out["svc"], out["wl"]
