"""Outsider finalizer: mark nodes outside the requested namespaces, and those the viewer cannot open."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext

NAME = "outsider"


@dataclass
class OutsiderAppender:
    name: str = NAME
    finalizer: bool = True

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        opts = ctx.options
        wanted = set(opts.namespaces) if opts.namespaces is not None else None
        if opts.node is not None and wanted is None:
            wanted = {opts.node.namespace}
        for _, d in graph.nodes(data=True):
            ntype = d[A.NODE_TYPE]
            if ntype == model.NT_BOX:
                continue
            if ntype == model.NT_UNKNOWN:
                d[A.IS_INACCESSIBLE] = True
                continue
            if ntype == model.NT_SERVICE and (d[A.NAMESPACE] == model.UNKNOWN or d.get(A.IS_EGRESS_CLUSTER)):
                d[A.IS_INACCESSIBLE] = True
                continue
            if wanted is not None and d[A.NAMESPACE] not in wanted:
                d[A.IS_OUTSIDE] = True
                if opts.accessible is not None and (d[A.CLUSTER], d[A.NAMESPACE]) not in opts.accessible:
                    d[A.IS_INACCESSIBLE] = True
