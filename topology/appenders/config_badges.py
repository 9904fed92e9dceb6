"""Config badges: which Istio config shapes a node's traffic (VS, DR, fault, timeout, circuit breaker, mTLS mode).

Kiali puts VS badges on service nodes only; workload graphs have no service
nodes by default, so here every node that serves a host gets the badges of
that host. Edges into a circuit-broken node that saw UO/UH get `cb_tripped`.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import config_view, model
from topology.appenders.base import AppendContext
from topology.appenders.response_flags import split_flags

NAME = "configBadges"
CB_FLAGS = frozenset({"UO", "UH"})


@dataclass
class ConfigBadgesAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        snap = ctx.snapshot
        if snap is None:
            return
        by_host: dict[str, set[str]] = {}
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] in (model.NT_BOX, model.NT_UNKNOWN):
                continue
            badges: set[str] = set()
            version = d.get(A.VERSION) if model.is_ok(d.get(A.VERSION)) else None
            for host in config_view.node_hosts(snap, d):
                if host not in by_host:
                    found: set[str] = set()
                    for vs in config_view.virtual_services(snap, host):
                        found |= config_view.vs_badges(vs)
                    by_host[host] = found
                badges |= by_host[host]
                for dr in config_view.destination_rules(snap, host):
                    badges |= config_view.dr_badges(dr, version)
            if d[A.NODE_TYPE] != model.NT_SERVICE and model.is_ok(d.get(A.NAMESPACE)):
                mode = config_view.mtls_mode(snap, d[A.NAMESPACE], config_view.node_labels(snap, d))
                if mode:
                    badges.add(f"MTLS_{mode}")
            d[A.BADGES] = sorted(badges)
        for _, t, d in graph.edges(data=True):
            if "CB" in graph.nodes[t].get(A.BADGES, ()):
                d[A.CB_TRIPPED] = any(set(split_flags(f)) & CB_FLAGS for detail in d[A.RESPONSES].values()
                                      for f, r in detail["flags"].items() if r > 0)
            else:
                d.pop(A.CB_TRIPPED, None)
