"""Throughput: bytes per second per edge (TCP: the edge rate; HTTP/gRPC: response or request bytes)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from collector import schema
from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.traffic import rows_on_edges

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
        tr = ctx.traffic
        metric = (schema.ISTIO_RESPONSE_BYTES if self.direction == "response" else schema.ISTIO_REQUEST_BYTES) + "_sum"
        rows, eidx = rows_on_edges(tr, [metric], "destination" if self.direction == "response" else "source")
        n = len(tr.e_src)
        sums = np.bincount(eidx, weights=tr.rows["rate"].to_numpy()[rows], minlength=n)
        seen = np.bincount(eidx, minlength=n) > 0
        for d, total, has in zip(edge_dicts(ctx), sums.tolist(), seen.tolist()):
            if d[A.PROTOCOL] == "tcp":
                d[A.THROUGHPUT] = d[A.RATE]
            elif has:
                d[A.THROUGHPUT] = total
