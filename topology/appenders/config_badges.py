"""Config badges: which Istio config shapes a node's traffic (VS, DR, fault, timeout, circuit breaker, mTLS mode).

Kiali puts VS badges on service nodes only; workload graphs have no service
nodes by default, so here every node that serves a host gets the badges of
that host. Edges into a circuit-broken node that saw UO/UH get `cb_tripped`.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.appenders.response_flags import split_flags
from topology.config_index import ConfigIndex

NAME = "configBadges"
CB_FLAGS = frozenset({"UO", "UH"})


def node_badges(config: ConfigIndex, d: dict) -> list[str]:
    """Sorted badges of a node: its hosts' VS/DR badges (DR subsets of its version) and its mTLS mode."""
    version = d.get(A.VERSION) if model.is_ok(d.get(A.VERSION)) else None
    badges: set[str] = set()
    for host in config.node_hosts(d):
        badges |= config.host_badges(host, version)
    if d[A.NODE_TYPE] != model.NT_SERVICE and model.is_ok(d.get(A.NAMESPACE)):
        mode = config.node_mtls_mode(d)
        if mode:
            badges.add(f"MTLS_{mode}")
    return sorted(badges)


@dataclass
class ConfigBadgesAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        config = ctx.config
        if config is None:
            return
        for _, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] in (model.NT_BOX, model.NT_UNKNOWN):
                continue
            d[A.BADGES] = node_badges(config, d)
        for _, t, d in graph.edges(data=True):
            if "CB" in graph.nodes[t].get(A.BADGES, ()):
                d[A.CB_TRIPPED] = any(set(split_flags(f)) & CB_FLAGS for detail in d[A.RESPONSES].values()
                                      for f, r in detail["flags"].items() if r > 0)
            else:
                d.pop(A.CB_TRIPPED, None)
