"""Contributions -> edges: node ids per series end, service-node injection, service-graph reduction.

Everything here works on whole columns: node keys are computed once per
distinct identity tuple (thousands), never once per series row.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from topology import model
from topology.options import GraphOptions
from topology.series import DEST_IDENTITY, SOURCE_IDENTITY


@dataclass
class Traffic:
    """The request's traffic as tables: what the graph is built from and appenders re-aggregate."""

    edges: pd.DataFrame  # one row per (contribution, edge): src, dst, protocol, code, flags, d_host, rate, row
    nodes: dict[str, dict] = field(default_factory=dict)  # id -> identity fields, node_type, key, is_injected
    dest_services: dict[str, set] = field(default_factory=dict)  # id -> {(cluster, ns, service)}
    contributions: pd.DataFrame | None = None  # series after selection/dedup (row index = edges.row)
    skipped: int = 0


def _ends(df: pd.DataFrame, cols: list[str], graph_type: str, source: bool,
          nodes: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
    """Node id and node type per row for one end (source or destination) of each series."""
    if df.empty:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    codes = df.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    uniq = df[cols].drop_duplicates()
    ids = np.empty(len(uniq), dtype=object)
    types = np.empty(len(uniq), dtype=object)
    for i, t in enumerate(uniq.itertuples(index=False, name=None)):
        if source:
            cluster, ns, wl, app, ver = t
            svc_ns, svc, wl_ns = ns, "", ns
        else:
            cluster, svc_ns, svc, wl_ns, wl, app, ver = t
        found = model.node_key(cluster, svc_ns, svc, wl_ns, wl, app, ver, graph_type)
        if found is None:
            ids[i], types[i] = None, None
            continue
        key, ntype = found
        nid = model.hash_id(key)
        ids[i], types[i] = nid, ntype
        if nid not in nodes:
            namespace = wl_ns if model.is_ok(wl_ns) else svc_ns
            fields = model.node_fields(ntype, cluster, namespace, wl, app, ver, svc, graph_type)
            nodes[nid] = {"key": key, "node_type": ntype, **fields}
    return ids[codes], types[codes]


def build_traffic(contrib: pd.DataFrame, opts: GraphOptions, skipped: int = 0) -> Traffic:
    nodes: dict[str, dict] = {}
    gt = opts.graph_type
    src, src_t = _ends(contrib, SOURCE_IDENTITY, gt, True, nodes)
    dst, dst_t = _ends(contrib, DEST_IDENTITY, gt, False, nodes)
    keep = pd.notna(src) & pd.notna(dst)
    skipped += int((~keep).sum())
    c = contrib[keep]
    src, dst, dst_t = src[keep], dst[keep], dst_t[keep]
    rows = np.flatnonzero(keep)
    base = pd.DataFrame({"src": src, "dst": dst, "protocol": c["protocol"].to_numpy(), "code": c["code"].to_numpy(),
                         "flags": c["flags"].to_numpy(), "d_host": c["d_host"].to_numpy(), "rate": c["rate"].to_numpy(),
                         "row": rows})
    dest_services: dict[str, set] = {}
    d_svc = c["d_svc"].to_numpy(dtype=object)
    svc_ok = pd.notna(d_svc) & (d_svc != "") & (d_svc != model.UNKNOWN)
    triples = pd.DataFrame({"id": dst, "cluster": c["d_cluster"].to_numpy(), "ns": c["d_svc_ns"].to_numpy(), "svc": d_svc})[svc_ok]

    if opts.inject:
        inject = svc_ok & (d_svc != model.PASSTHROUGH) & (dst_t != model.NT_SERVICE)
        if inject.any():
            ci = c[inject]
            keys = ("svc_" + ci["d_cluster"].astype(str) + "_" + ci["d_svc_ns"].astype(str) + "_" + ci["d_svc"].astype(str)).to_numpy()
            svc_ids = np.array([model.hash_id(k) for k in keys], dtype=object) if len(keys) < 64 else _hash_many(keys)
            for k, nid, cl, ns, name in zip(keys, svc_ids, ci["d_cluster"], ci["d_svc_ns"], ci["d_svc"]):
                if nid not in nodes:
                    nodes[nid] = {"key": k, "node_type": model.NT_SERVICE, "cluster": cl, "namespace": ns, "workload": "",
                                  "app": "", "version": "", "service": name, "is_injected": True}
                else:
                    nodes[nid]["is_injected"] = True
            first = base[inject].copy()
            first["dst"] = svc_ids
            second = base[inject].copy()
            second["src"] = svc_ids
            base = pd.concat([base[~inject], first, second], ignore_index=True)
            triples = pd.concat([triples, pd.DataFrame({"id": svc_ids, "cluster": ci["d_cluster"].to_numpy(),
                                                        "ns": ci["d_svc_ns"].to_numpy(), "svc": ci["d_svc"].to_numpy()})])
    for nid, cl, ns, svc in triples.drop_duplicates().itertuples(index=False, name=None):
        dest_services.setdefault(nid, set()).add((cl, ns, svc))

    if gt == model.SERVICE:
        base, keep_nodes = _reduce_to_services(base, nodes)
        nodes = {k: v for k, v in nodes.items() if k in keep_nodes}
    return Traffic(edges=base, nodes=nodes, dest_services=dest_services, contributions=c.reset_index(drop=True), skipped=skipped)


def _hash_many(keys: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    return np.array([model.hash_id(k) for k in uniq], dtype=object)[inv]


def _reduce_to_services(edges: pd.DataFrame, nodes: dict[str, dict]) -> tuple[pd.DataFrame, set[str]]:
    """Service graph: service->service edges through each service's workloads; keep root callers."""
    ntype = {k: v["node_type"] for k, v in nodes.items()}
    st = edges["src"].map(ntype).to_numpy(dtype=object)
    dt = edges["dst"].map(ntype).to_numpy(dtype=object)
    src_svc, dst_svc = st == model.NT_SERVICE, dt == model.NT_SERVICE
    has_in = set(edges["dst"])
    has_out = set(edges["src"])
    roots = {n for n in has_out if n not in has_in and ntype[n] != model.NT_SERVICE}
    feeds = edges.loc[src_svc & ~dst_svc, ["src", "dst"]].drop_duplicates().rename(columns={"src": "svc", "dst": "wl"})
    onward = edges[~src_svc & dst_svc]
    via = onward.merge(feeds, left_on="src", right_on="wl", how="inner")
    via["src"] = via["svc"]
    via = via.drop(columns=["svc", "wl"])
    from_roots = onward[onward["src"].isin(roots)]
    reduced = pd.concat([via, from_roots], ignore_index=True)
    keep = {k for k, t in ntype.items() if t == model.NT_SERVICE} | roots
    return reduced, keep


def series_edges(ctx, metrics: list[str], reporter: str | None = None, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of other metrics mapped onto the graph's edges: src, dst, protocol, rate + `extra` columns.

    Uses the same node and edge rules as the graph (injection, service reduction),
    so an appender's numbers land on exactly the edges the user sees. Cached per request.
    """
    from topology.series import series_frame  # local: series imports nothing from here, keep it one-way

    key = ("series_edges", tuple(metrics), reporter, extra)
    if key not in ctx.cache:
        df = series_frame(ctx.rates, metrics, reporter)
        edges = build_traffic(df, ctx.options).edges
        rows = edges["row"].to_numpy()
        for col in extra:
            edges[col] = df[col].to_numpy()[rows]
        ctx.cache[key] = edges
    return ctx.cache[key]
