"""Throughput: bytes per second per edge (TCP: the edge rate; HTTP/gRPC: response bytes)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from collector import schema
from topology import attrs as A
from topology.appenders.base import AppendContext
from topology.traffic import series_edges

NAME = "throughput"


@dataclass
class ThroughputAppender:
    """`direction="response"` reads istio_response_bytes_sum (destination-reported), "request" the request side."""

    direction: str = "response"
    name: str = NAME
    finalizer: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("request", "response"):
            raise ValueError(f"throughput direction {self.direction!r}: expected request or response")

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        metric = (schema.ISTIO_RESPONSE_BYTES if self.direction == "response" else schema.ISTIO_REQUEST_BYTES) + "_sum"
        reporter = "destination" if self.direction == "response" else "source"
        edges = series_edges(ctx, [metric], reporter)
        sums = edges.groupby(["src", "dst", "protocol"], sort=False)["rate"].sum() if len(edges) else {}
        for s, t, p, d in graph.edges(keys=True, data=True):
            if p == "tcp":
                d[A.THROUGHPUT] = d[A.RATE]
            elif len(edges) and (s, t, p) in sums.index:
                d[A.THROUGHPUT] = float(sums[(s, t, p)])
