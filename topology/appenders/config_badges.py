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
from topology.appenders.base import AppendContext, edge_dicts
from topology.appenders.response_flags import edges_with_flags
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
        memo = config.table(NAME)
        for _, d in graph.nodes(data=True):
            ntype = d[A.NODE_TYPE]
            if ntype in (model.NT_BOX, model.NT_UNKNOWN):
                continue
            # badges depend on these fields only: one answer per distinct node identity and snapshot
            key = (ntype, d.get(A.NAMESPACE), d.get(A.WORKLOAD), d.get(A.APP), d.get(A.VERSION), d.get(A.SERVICE),
                   tuple(d.get(A.DEST_SERVICES) or ()))
            try:
                hit = memo.get(key)
            except TypeError:  # an unhashable field value: answer without the memo
                key, hit = None, None
            if hit is None:
                hit = tuple(node_badges(config, d))
                if key is not None:
                    memo[key] = hit
            d[A.BADGES] = list(hit)
        tripped = edges_with_flags(ctx, CB_FLAGS).tolist()
        ids, nodes = ctx.traffic.table.ids, graph.nodes
        for d, t, hit in zip(edge_dicts(ctx), ctx.traffic.e_dst.tolist(), tripped):
            target = nodes.get(ids[t])  # None: pruned (the dict is detached, as is a hidden edge's)
            if target is not None and "CB" in target.get(A.BADGES, ()):
                d[A.CB_TRIPPED] = hit
            else:
                d.pop(A.CB_TRIPPED, None)
