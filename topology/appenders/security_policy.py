"""Security policy: mTLS share per edge (summed, never overwritten) and whether it matches the intent.

Share = mutual_tls rate / rate with any connection_security_policy, from
destination-reported series. Intent = the PeerAuthentication mode of the
destination workload (snapshot). A STRICT destination that saw plaintext, or
whose edge only shows connection failures (UC/UF/URX...) with no mTLS at all,
is flagged as a mismatch: the lock Kiali would show hides exactly that case.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from collector import schema
from topology import attrs as A
from topology import config_view
from topology.appenders.base import AppendContext
from topology.appenders.response_flags import split_flags
from topology.traffic import series_edges

NAME = "securityPolicy"
CONNECTION_FAILURE_FLAGS = frozenset({"UC", "UF", "URX", "UH", "DC"})


@dataclass
class SecurityPolicyAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        metrics = [schema.ISTIO_REQUESTS_TOTAL, schema.ISTIO_TCP_SENT_BYTES, schema.ISTIO_TCP_RECEIVED_BYTES]
        edges = series_edges(ctx, metrics, "destination", extra=("csp", "s_principal", "d_principal", "metric"))
        # one metric per protocol, so bytes and requests are never added together
        edges = edges[(edges["protocol"] == "tcp") == edges["metric"].isin(metrics[1:])]
        edges = edges[(edges["protocol"] != "tcp") | (edges["metric"] == schema.ISTIO_TCP_RECEIVED_BYTES)]
        csp = edges["csp"].fillna("unknown")
        measured = edges[csp.isin(["mutual_tls", "none"]).to_numpy()]
        keys = ["src", "dst", "protocol"]
        tot = measured.groupby(keys, sort=False)["rate"].sum()
        mtls = measured[measured["csp"] == "mutual_tls"].groupby(keys, sort=False)["rate"].sum()
        principals = edges[edges["rate"] > 0].groupby(keys, sort=False)[["s_principal", "d_principal"]].agg(
            lambda s: sorted({v for v in s if isinstance(v, str) and v not in ("", "unknown")}))
        intents: dict[str, str | None] = {}
        for s, t, p, d in graph.edges(keys=True, data=True):
            k = (s, t, p)
            measured_rate = float(tot.get(k, 0.0))
            mtls_rate = float(mtls.get(k, 0.0))
            d[A.MTLS_MEASURED_RATE] = measured_rate
            d[A.MTLS_RATE] = mtls_rate
            d[A.MTLS_PERCENT] = 100.0 * mtls_rate / measured_rate if measured_rate > 0 else 0.0
            if k in principals.index:
                d[A.SOURCE_PRINCIPALS], d[A.DEST_PRINCIPALS] = principals.loc[k, "s_principal"], principals.loc[k, "d_principal"]
            if ctx.snapshot is None:
                continue
            if t not in intents:
                node = graph.nodes[t]
                intents[t] = config_view.mtls_mode(ctx.snapshot, node[A.NAMESPACE], config_view.node_labels(ctx.snapshot, node))
            intent = intents[t]
            d[A.MTLS_INTENT] = intent
            plaintext = measured_rate - mtls_rate
            failed = any(set(split_flags(f)) & CONNECTION_FAILURE_FLAGS
                         for detail in d[A.RESPONSES].values() for f, r in detail["flags"].items() if r > 0)
            d[A.MTLS_MISMATCH] = intent == "STRICT" and (plaintext > 0 or (mtls_rate == 0 and failed))
