"""Resolve series ends to graph nodes, once per distinct label tuple (never once per row).

A frame of 300k series has only thousands of distinct (cluster, namespace,
workload, app, version) sources and destinations; Kiali's node rules, the
bad-telemetry filters and the egress/cluster workarounds run on those tuples,
and every row just carries an integer node index.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from topology import model

SOURCE_COLS = ["s_cluster", "s_ns", "s_wl", "s_app", "s_ver"]
DEST_COLS = ["s_cluster", "d_cluster", "d_svc_ns", "d_host", "d_svc", "d_wl_ns", "d_wl", "d_app", "d_ver"]
_BAD_SERVICE = re.compile(r"^\d+\.\d+\.\d+\.\d+(:\d+)?$")


@dataclass
class NodeTable:
    """Nodes by integer index: Kiali key, sha256 id, type and identity fields."""

    graph_type: str
    keys: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    fields: list[dict] = field(default_factory=list)
    injected: set[int] = field(default_factory=set)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, ntype: str, fields: dict) -> int:
        idx = self.index.get(key)
        if idx is None:
            idx = self.index[key] = len(self.keys)
            self.keys.append(key)
            self.ids.append(model.hash_id(key))
            self.types.append(ntype)
            self.fields.append(fields)
        return idx


def tuple_ids(df: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Dense id per row of the distinct value tuple in `cols` (categoricals), and each tuple's first row.

    Category codes are combined in mixed radix and only re-densified (factorized)
    when the next column could overflow int64, so a 9-column tuple costs 2-3 hash passes.
    """
    n = len(df)
    key = np.zeros(n, dtype=np.int64)
    span = 1  # upper bound of key values so far
    for c in cols:
        codes = df[c].cat.codes.to_numpy().astype(np.int64) + 1
        radix = int(codes.max(initial=0)) + 1
        if span * radix >= 2**62:
            key, uniq = pd.factorize(key)
            key, span = key.astype(np.int64), len(uniq)
        key = key * radix + codes
        span *= radix
    key, uniq = pd.factorize(key)
    key = key.astype(np.int64)
    first = pd.Series(key).drop_duplicates().index.to_numpy() if n else np.empty(0, dtype=np.int64)
    return key, first


def _values(df: pd.DataFrame, cols: list[str], rows: np.ndarray) -> list[tuple]:
    return list(zip(*(df[c].iloc[rows].astype(object).tolist() for c in cols)))


def _is_ok(v) -> bool:
    return v is not None and v == v and v != "" and v != model.UNKNOWN


def resolve_sources(df: pd.DataFrame, table: NodeTable, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(node index per row or -1, tuple id per row) for the source end."""
    tid, first = tuple_ids(df, SOURCE_COLS)
    cache = {} if cache is None else cache
    out = np.empty(len(first), dtype=np.int64)
    for i, t in enumerate(_values(df, SOURCE_COLS, first)):
        hit = cache.get(t)
        if hit is None:
            hit = cache[t] = _source_node(t, table)
        out[i] = hit
    return (out[tid] if len(first) else np.empty(0, dtype=np.int64)), tid


def _source_node(t: tuple, table: NodeTable) -> int:
    cluster, ns, wl, app, ver = t
    if any(v is None or v != v for v in (ns, wl, app, ver)):
        return -1  # a label Kiali groups on is absent: skip the series
    cluster_ok = cluster is not None and cluster == cluster
    cluster = cluster if cluster_ok else model.UNKNOWN
    if _is_ok(ns) and ((not _is_ok(wl) and not _is_ok(app)) or (cluster_ok and not _is_ok(cluster))):
        return -1  # bad source telemetry
    found = model.node_key(cluster, ns, "", ns, wl, app, ver, table.graph_type)
    if found is None:
        return -1
    key, ntype = found
    return table.add(key, ntype, model.node_fields(ntype, cluster, ns, wl, app, ver, "", table.graph_type))


@dataclass
class DestInfo:
    node: np.ndarray  # node index per row (-1: skip)
    service: np.ndarray  # injected service node per row (-1: none)
    tuple_id: np.ndarray
    triples: list  # per tuple id: (cluster, namespace, service) the destination was asked for, or None


def resolve_dests(df: pd.DataFrame, table: NodeTable, inject: bool, istio_namespace: str = "istio-system",
                  cache: dict | None = None) -> DestInfo:
    tid, first = tuple_ids(df, DEST_COLS)
    cache = {} if cache is None else cache
    node = np.empty(len(first), dtype=np.int64)
    svc = np.empty(len(first), dtype=np.int64)
    triples = []
    egress = f"istio-egressgateway.{istio_namespace}.svc.cluster.local"
    for i, t in enumerate(_values(df, DEST_COLS, first)):
        hit = cache.get(t)
        if hit is None:
            hit = cache[t] = _dest_node(t, table, inject, istio_namespace, egress)
        node[i], svc[i], triple = hit
        triples.append(triple)
    if not len(first):
        empty = np.empty(0, dtype=np.int64)
        return DestInfo(empty, empty, tid, [])
    return DestInfo(node[tid], svc[tid], tid, triples)


def _dest_node(t: tuple, table: NodeTable, inject: bool, istio_ns: str, egress: str) -> tuple[int, int, tuple | None]:
    s_cluster, cluster, svc_ns, host, svc, wl_ns, wl, app, ver = t
    if any(v is None or v != v for v in (svc_ns, svc, wl_ns, wl, app, ver)):
        return -1, -1, None
    cluster_ok = cluster is not None and cluster == cluster
    cluster = cluster if cluster_ok else model.UNKNOWN
    s_cluster = s_cluster if s_cluster is not None and s_cluster == s_cluster else model.UNKNOWN
    host = host if host is not None and host == host else ""
    if host == egress and svc == egress:  # kiali#2999: the egress gateway's own traffic
        cluster, svc_ns, svc, wl_ns, wl, app, ver = s_cluster, istio_ns, "istio-egressgateway", istio_ns, \
            "istio-egressgateway", "istio-egressgateway", "latest"
    elif not _is_ok(cluster) and _is_ok(s_cluster) and _is_ok(svc_ns):
        cluster = s_cluster  # istio#29373: unknown destination cluster in a known namespace
    if not _is_ok(wl) and _is_ok(host) and _is_ok(svc) and host == svc and _BAD_SERVICE.match(svc):
        return -1, -1, None  # pod-churn telemetry with an IP for a service
    if _is_ok(svc_ns) and cluster_ok and not _is_ok(cluster):
        return -1, -1, None
    found = model.node_key(cluster, svc_ns, svc, wl_ns, wl, app, ver, table.graph_type)
    if found is None:
        return -1, -1, None
    key, ntype = found
    ns = wl_ns if _is_ok(wl_ns) else svc_ns
    idx = table.add(key, ntype, model.node_fields(ntype, cluster, ns, wl, app, ver, svc, table.graph_type))
    triple = (cluster, svc_ns, svc) if _is_ok(svc) else None
    injected = -1
    if inject and _is_ok(svc) and svc != model.PASSTHROUGH and ntype != model.NT_SERVICE:
        skey = f"svc_{cluster}_{svc_ns}_{svc}"
        injected = table.add(skey, model.NT_SERVICE, model.node_fields(model.NT_SERVICE, cluster, svc_ns, "", "", "", svc,
                                                                     table.graph_type))
        table.injected.add(injected)
    return idx, injected, triple
