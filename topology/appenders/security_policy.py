"""Security policy: mTLS share per edge (summed, never overwritten) and whether it matches the intent.

Share = mutual_tls rate / the rate of requests that had, or tried to open, a connection to the server:

- requests the server saw, with the `connection_security_policy` the destination reported
  (`mutual_tls` or `none`): Kiali's definition (destination reporter only);
- plus requests the caller reports as failed on the connection itself (flags UF, UC, URX), which the
  server never saw because it refused the handshake (a plaintext client against STRICT): those were
  not mutual TLS. They are capped by the caller's excess over the server's count, so a reset the
  server did see and report is not counted twice.

Requests that never tried to connect (no route NR, circuit-breaker overflow UO, no healthy host UH,
injected aborts FI) say nothing about the connection's security and are left out, so a healthy mesh
reads exactly 100 % from the server's own labels, not from a ratio of two reporters' sampled rates.
Intent = the PeerAuthentication mode of the destination workload (snapshot). A STRICT destination
that saw plaintext, or whose edge only shows connection failures (UC/UF/URX...) and no mTLS at all,
is flagged as a mismatch: Kiali's lock hides exactly that case.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from collector import schema
from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.appenders.response_flags import edges_with_flags, split_flags
from topology.traffic import memo, rows_on_edges

NAME = "securityPolicy"
CONNECTION_FAILURE_FLAGS = frozenset({"UC", "UF", "URX", "UH", "DC"})
# the caller tried to open a connection and it failed: a request the server may never have seen
CONNECT_ATTEMPT_FLAGS = frozenset({"UC", "UF", "URX"})
_PRUNED = object()


def _principals(eidx: np.ndarray, values: pd.Series, rows: np.ndarray) -> dict[int, list[str]]:
    v = values.astype(object).to_numpy()[rows]
    pairs = pd.DataFrame({"e": eidx, "v": v}).dropna().drop_duplicates()
    pairs = pairs[~pairs["v"].isin(["", "unknown"])]
    out: dict[int, list[str]] = {}
    for e, p in zip(pairs["e"].tolist(), pairs["v"].tolist()):
        out.setdefault(e, []).append(p)
    return out


def _unreached(ctx: AppendContext, measured: np.ndarray, n: int) -> np.ndarray:
    """Per edge: the rate of requests whose connection attempt failed and that the server did not report.

    The caller's connect-failure rate (UF/UC/URX on the graph's reporter), capped by how much more the
    edge carries than the server reported: a UC the server also logged (a reset mid-response) is
    already in `measured`. Without connect failures this is exactly 0, whatever the sampling noise
    between the two reporters. TCP edges are measured by the destination only.
    """
    tr = ctx.traffic
    c = tr.contrib
    if c.empty:
        return np.zeros(n)
    sent = np.bincount(c["eidx"].to_numpy(), weights=c["rate"].to_numpy(dtype=float), minlength=n)
    flags = c["flags"].astype(str).to_numpy()
    uniq, inv = np.unique(flags, return_inverse=True)
    hit = np.array([bool(CONNECT_ATTEMPT_FLAGS.intersection(split_flags(f))) for f in uniq], dtype=bool)[inv]
    failed = np.bincount(c["eidx"].to_numpy()[hit], weights=c["rate"].to_numpy(dtype=float)[hit], minlength=n)
    out = np.minimum(failed, np.maximum(sent - measured, 0.0))
    return np.where(tr.e_proto != 2, out, 0.0)


@dataclass
class SecurityPolicyAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        tr = ctx.traffic
        n = len(tr.e_src)
        rows, eidx, is_mtls, measured, src_p, dst_p = memo(tr, ("securityPolicy",), lambda: self._layout(tr))
        rate = tr.rows["rate"].to_numpy()[rows]
        mtls = np.bincount(eidx[is_mtls], weights=rate[is_mtls], minlength=n)
        total = np.bincount(eidx[measured], weights=rate[measured], minlength=n)
        # requests whose connection failed before the server saw them (a refused plaintext handshake) were not
        # mutual TLS either, so an edge whose every request fails in plaintext is not "mTLS 100 %"
        total = total + _unreached(ctx, total, n)
        mtls = np.minimum(mtls, total)
        dicts = edge_dicts(ctx)
        for e, (d, m, t) in enumerate(zip(dicts, mtls.tolist(), total.tolist())):
            d[A.MTLS_RATE], d[A.MTLS_MEASURED_RATE] = m, t
            d[A.MTLS_PERCENT] = 100.0 * m / t if t > 0 else 0.0
            # principals of every series on the edge in the window (a series with zero rate included)
            d[A.SOURCE_PRINCIPALS], d[A.DEST_PRINCIPALS] = src_p.get(e, []), dst_p.get(e, [])
        if ctx.snapshot is None:
            for d in dicts:
                d.pop(A.MTLS_INTENT, None)
                d.pop(A.MTLS_MISMATCH, None)
            return
        ids = tr.table.ids
        config = ctx.config
        nodes = graph.nodes
        failed_edges = edges_with_flags(ctx, CONNECTION_FAILURE_FLAGS).tolist()
        intents: dict[int, str | None] = {}
        for d, dst, failed in zip(dicts, tr.e_dst.tolist(), failed_edges):
            if dst not in intents:
                nid = ids[dst]
                intents[dst] = config.node_mtls_mode(nodes[nid]) if nid in graph else _PRUNED
            if intents[dst] is _PRUNED:
                continue  # pruned by deadNode
            intent = d[A.MTLS_INTENT] = intents[dst]
            if intent != "STRICT":
                d[A.MTLS_MISMATCH] = False
                continue
            plaintext = d[A.MTLS_MEASURED_RATE] - d[A.MTLS_RATE]
            d[A.MTLS_MISMATCH] = plaintext > 0 or (d[A.MTLS_RATE] == 0 and failed)

    @staticmethod
    def _layout(tr) -> tuple:
        """Destination-reported rows per edge, their policy masks and principals: structure only.

        One metric per protocol (requests for HTTP/gRPC, received bytes for TCP), so
        requests and bytes are never added together.
        """
        rows, eidx = rows_on_edges(tr, [schema.ISTIO_REQUESTS_TOTAL, schema.ISTIO_TCP_RECEIVED_BYTES], "destination")
        csp = tr.rows["csp"].astype(object).to_numpy()[rows]
        is_mtls, measured = csp == "mutual_tls", np.isin(csp, ["mutual_tls", "none"])
        return (rows, eidx, is_mtls, measured, _principals(eidx, tr.rows["s_principal"], rows),
                _principals(eidx, tr.rows["d_principal"], rows))
