"""Response time: p50/p95/p99 per HTTP/gRPC edge from duration histogram buckets.

Uses Prometheus' histogram_quantile method (topology.quantile) over bucket rates
summed per edge (never averages percentiles of merged edges). Latency is what
the caller experienced: source-reported buckets, which include client-side
fault delays, retries and the network; edges without a source proxy (traffic
from outside the mesh) use the destination's buckets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from collector import schema
from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.quantile import evaluate, plan
from topology.traffic import memo, rows_on_edges

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
        tr = ctx.traffic
        rows, layout = memo(tr, ("responseTime",), lambda: self._layout(tr))
        if not len(rows):
            return
        groups, values = evaluate(layout, tr.rows["rate"].to_numpy()[rows], self.quantiles)
        dicts = edge_dicts(ctx)
        for q, vals in values.items():
            attr = _ATTR[q]
            for e, v in zip(groups.tolist(), vals.tolist()):
                if math.isnan(v):
                    dicts[e].pop(attr, None)  # no observations this window
                else:
                    dicts[e][attr] = v

    @staticmethod
    def _layout(tr) -> tuple[np.ndarray, object]:
        """Bucket rows per edge (source-reported, else destination) and their quantile plan."""
        r_src, e_src = rows_on_edges(tr, [BUCKET], "source")
        r_dst, e_dst = rows_on_edges(tr, [BUCKET], "destination")
        only_dst = ~np.isin(e_dst, e_src)
        rows = np.concatenate([r_src, r_dst[only_dst]])
        eidx = np.concatenate([e_src, e_dst[only_dst]])
        keep = tr.e_proto[eidx] != 2 if len(eidx) else np.empty(0, dtype=bool)
        rows, eidx = rows[keep], eidx[keep]
        return rows, plan(eidx, tr.rows["le"].to_numpy()[rows])
