"""Response time: p50/p95/p99 per HTTP/gRPC edge from duration histogram buckets.

Uses Prometheus' histogram_quantile over bucket rates summed per edge (never
averages percentiles of merged edges). Destination-reported buckets are used;
edges only a source proxy saw (the destination never answered) use the source's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import pandas as pd

from collector import schema
from collector.query import histogram_quantile
from topology import attrs as A
from topology.appenders.base import AppendContext
from topology.traffic import series_edges

NAME = "responseTime"
BUCKET = schema.ISTIO_REQUEST_DURATION_MS + "_bucket"
_ATTR = {0.5: A.LATENCY_P50, 0.95: A.LATENCY_P95, 0.99: A.LATENCY_P99}


@dataclass
class ResponseTimeAppender:
    quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
    name: str = NAME
    finalizer: bool = False

    def __post_init__(self) -> None:
        bad = [q for q in self.quantiles if q not in _ATTR]
        if bad:
            raise ValueError(f"response time quantiles {bad}: supported are {sorted(_ATTR)}")

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        dest = series_edges(ctx, [BUCKET], "destination", extra=("le",))
        src = series_edges(ctx, [BUCKET], "source", extra=("le",))
        if len(dest) == 0 and len(src) == 0:
            return
        keys = ["src", "dst", "protocol"]
        have = set(map(tuple, dest[keys].drop_duplicates().to_numpy())) if len(dest) else set()
        if len(src):
            only_src = ~pd.Series(list(map(tuple, src[keys].to_numpy()))).isin(have).to_numpy()
            buckets = pd.concat([dest, src[only_src]], ignore_index=True)
        else:
            buckets = dest
        buckets = buckets[buckets["protocol"] != "tcp"]
        for q in self.quantiles:
            values = histogram_quantile(q, buckets, by=keys)
            for s, t, p, v in values[[*keys, "value"]].itertuples(index=False, name=None):
                if graph.has_edge(s, t, p) and not math.isnan(v):
                    graph.edges[s, t, p][_ATTR[q]] = float(v)
