"""Traffic tables -> networkx: per-edge and per-node aggregation and bulk insertion.

Aggregates are numpy bincounts over integer edge indexes; Python loops run once
per edge or node (to build the attribute dicts networkx stores), never per series.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from topology import attrs as A
from topology import model
from topology.options import GraphOptions
from topology.traffic import PROTOCOLS, Traffic, memo

_IN_SUFFIX = (("total", "In"), ("c3xx", "In3xx"), ("c4xx", "In4xx"), ("c5xx", "In5xx"), ("noresp", "InNoResponse"),
              ("grpcerr", "InErr"))


def edge_sums(tr: Traffic) -> dict[str, np.ndarray]:
    """Per-edge totals and error buckets (arrays indexed by edge index)."""
    c = tr.contrib
    n = len(tr.e_src)
    eidx = c["eidx"].to_numpy()
    rate = c["rate"].to_numpy(dtype=float)
    proto = tr.e_proto[eidx] if len(eidx) else np.empty(0, dtype=np.int64)
    code = c["code"].to_numpy(dtype=object)
    codes, inv = (np.unique(code.astype(str), return_inverse=True) if len(code) else (np.empty(0, dtype=str), np.empty(0, dtype=np.int64)))
    first = np.array([x[:1] for x in codes], dtype=object)[inv] if len(code) else np.empty(0, dtype=object)
    http = proto == 0
    grpc = (proto == 1) & (c["flags"].to_numpy(dtype=object) != "")  # message counts carry no status
    noresp = code == "-"

    def total(mask) -> np.ndarray:
        return np.bincount(eidx[mask], weights=rate[mask], minlength=n) if len(eidx) else np.zeros(n)

    return {"total": total(np.ones(len(eidx), dtype=bool)), "c3xx": total(http & (first == "3")),
            "c4xx": total(http & (first == "4")), "c5xx": total(http & (first == "5")),
            "noresp": total((http | grpc) & noresp), "grpcerr": total(grpc & ~noresp & (code != "0"))}


def _response_groups(tr: Traffic) -> list[tuple]:
    """(kind, row mask, group per row, (edge, code, flag-or-host) per group): structure only."""
    c = tr.contrib
    out = []
    for kind, col in (("flags", "flags"), ("hosts", "host")):
        mask = np.ones(len(c), dtype=bool) if kind == "flags" else (c["host"] != "").to_numpy()
        keys = pd.MultiIndex.from_arrays([c["eidx"].to_numpy()[mask], c["code"].to_numpy()[mask], c[col].to_numpy()[mask]])
        codes, uniq = keys.factorize()
        out.append((kind, mask, codes, list(uniq)))
    return out


def responses(tr: Traffic) -> list[dict]:
    """Per edge index: code -> {"flags": {flag: rate}, "hosts": {host: rate}} (positive rates only)."""
    out: list[dict] = [{} for _ in range(len(tr.e_src))]
    if tr.contrib.empty:
        return out
    rate = tr.contrib["rate"].to_numpy(dtype=float)
    for kind, mask, codes, uniq in memo(tr, ("responses",), lambda: _response_groups(tr)):
        sums = np.bincount(codes, weights=rate[mask], minlength=len(uniq)).tolist()
        for (e, code, val), r in zip(uniq, sums):
            if r <= 0:
                continue
            entry = out[e].get(code)
            if entry is None:
                entry = out[e][code] = {"flags": {}, "hosts": {}}
            if val:
                entry[kind][val] = r
    return out


def node_rates(tr: Traffic, sums: dict[str, np.ndarray]) -> dict[int, dict[str, float]]:
    """Kiali-style node rates (httpIn, httpIn5xx, httpOut, tcpIn ...) summed from the edges."""
    nn = tr.n_nodes
    out: dict[int, dict[str, float]] = {}
    for p, pname in enumerate(PROTOCOLS):
        on = tr.e_proto == p
        if not on.any():
            continue
        for col, suffix in _IN_SUFFIX:
            v = np.bincount(tr.e_dst[on], weights=sums[col][on], minlength=nn)
            for i in np.flatnonzero(v > 0).tolist():
                out.setdefault(i, {})[pname + suffix] = float(v[i])
        v = np.bincount(tr.e_src[on], weights=sums["total"][on], minlength=nn)
        for i in np.flatnonzero(v > 0).tolist():
            out.setdefault(i, {})[pname + "Out"] = float(v[i])
    return out


def shown_edges(tr: Traffic, sums: dict[str, np.ndarray]) -> np.ndarray:
    """Edges to draw: those with traffic in the window, or every edge when idle edges are asked for."""
    if tr.options.include_idle_edges:
        return np.ones(len(tr.e_src), dtype=bool)
    return sums["total"] > 0


def graph_attrs(tr: Traffic) -> dict:
    opts = tr.options
    return {A.GRAPH_TYPE: opts.graph_type, A.NAMESPACES: opts.namespaces, A.WINDOW_S: opts.window_s,
            A.QUERY_TIME: opts.query_time, A.SKIPPED_SERIES: tr.skipped, A.APPENDERS_RUN: []}


def node_records(tr: Traffic, rates: dict[int, dict[str, float]]) -> list[tuple[str, dict]]:
    """(id, attributes) of every node an edge touches (service graphs also keep injected services)."""
    table = tr.table
    nodes = tr.nodes_in_graph().tolist()
    if tr.options.graph_type == model.SERVICE:
        nodes = sorted(set(nodes) | {i for i, t in enumerate(table.types) if t == model.NT_SERVICE and i in tr.injected})
    out = [(table.ids[i], {A.KEY: table.keys[i], A.NODE_TYPE: table.types[i], **table.fields[i],
                           A.DEST_SERVICES: sorted(tr.dest_services.get(i, ())), A.RATES: rates.get(i, {}),
                           A.IS_INJECTED: i in tr.injected})
           for i in nodes]
    if tr.options.waypoints:
        for _, d in out:
            if (d[A.CLUSTER], d[A.NAMESPACE], d[A.WORKLOAD]) in tr.options.waypoints:
                d[A.IS_WAYPOINT], d[A.APP] = True, ""  # a proxy, not an app of its own
    return out


def graph_from_traffic(tr: Traffic) -> nx.MultiDiGraph:
    opts = tr.options
    graph = nx.MultiDiGraph()
    graph.graph.update(graph_attrs(tr))
    sums = edge_sums(tr)
    tr.shown = shown_edges(tr, sums)
    graph.add_nodes_from(node_records(tr, node_rates(tr, sums)))
    records = edge_records(tr, sums)
    show = tr.shown.tolist()
    stored = iter(add_edges_bulk(graph, [r for r, keep in zip(records, show) if keep]))
    # per edge index: the graph's attribute dict, or a detached one for hidden idle edges
    graph.graph["_edge_dicts"] = [next(stored) if keep else r[3] for r, keep in zip(records, show)]
    add_boxes(graph, opts)
    return graph


def add_edges_bulk(graph: nx.MultiDiGraph, records: list[tuple]) -> list[dict]:
    """Insert (u, v, key, attrs) between existing nodes; returns the stored attribute dicts in order.

    Writes networkx's adjacency dicts the way MultiDiGraph.add_edge does (one key
    dict shared by succ[u][v] and pred[v][u]) without its per-edge checks; falls back to
    add_edges_from if the internals ever differ.
    """
    succ, pred = getattr(graph, "_succ", None), getattr(graph, "_pred", None)
    if not isinstance(succ, dict) or not isinstance(pred, dict):
        graph.add_edges_from(records)
        return [graph.edges[u, v, k] for u, v, k, _ in records]
    factory = graph.edge_key_dict_factory
    out = []
    for u, v, k, dd in records:
        keydict = succ[u].get(v)
        if keydict is None:
            keydict = succ[u][v] = pred[v][u] = factory()
        keydict[k] = dd
        out.append(dd)
    return out


def edge_records(tr: Traffic, sums: dict[str, np.ndarray]) -> list[tuple]:
    """(src id, dst id, protocol, attributes) for every edge index."""
    ids = tr.table.ids
    return [(ids[s], ids[d], PROTOCOLS[p], attrs) for s, d, p, attrs in
            zip(tr.e_src.tolist(), tr.e_dst.tolist(), tr.e_proto.tolist(), edge_attrs(tr, sums))]


def edge_attrs(tr: Traffic, sums: dict[str, np.ndarray], into: list[dict] | None = None) -> list[dict]:
    """Per edge index: protocol, rates, responses, % errors and % of the source's outbound traffic.

    With `into` (the dicts of the same edges from the last window) the fields are
    written into those dicts instead of new ones.
    """
    resp = responses(tr)
    nn = tr.n_nodes
    out_tot = np.zeros(len(tr.e_src))
    for p in range(len(PROTOCOLS)):
        on = tr.e_proto == p
        per_src = np.bincount(tr.e_src[on], weights=sums["total"][on], minlength=nn)
        out_tot[on] = per_src[tr.e_src[on]]
    cols = [sums[k].tolist() for k in ("total", "c3xx", "c4xx", "c5xx", "noresp", "grpcerr")]
    records = into if into is not None else [{} for _ in range(len(tr.e_src))]
    for e, (p, tot, c3, c4, c5, nr, ge, ot) in enumerate(zip(tr.e_proto.tolist(), *cols, out_tot.tolist())):
        if p == 0:
            rates = {"http": tot, "http3xx": c3, "http4xx": c4, "http5xx": c5, "httpNoResponse": nr}
            err = c4 + c5 + nr
        elif p == 1:
            rates = {"grpc": tot, "grpcErr": ge, "grpcNoResponse": nr}
            err = ge + nr
        else:
            rates, err = {"tcp": tot}, 0.0
        pname = PROTOCOLS[p]
        d = records[e]
        d[A.PROTOCOL] = pname
        d[A.RATE] = tot
        d[A.EDGE_RATES] = {k: v for k, v in rates.items() if v > 0 or k == pname}
        d[A.RESPONSES] = resp[e]
        d[A.PERCENT_ERR] = 100.0 * err / tot if tot > 0 else 0.0
        d[A.PERCENT_REQ] = 100.0 * tot / ot if ot > 0 else 0.0
    return records


def add_boxes(graph: nx.MultiDiGraph, opts: GraphOptions) -> None:
    """App boxes (compound parents) when two or more nodes share cluster, namespace and app."""
    if opts.graph_type not in (model.APP, model.VERSIONED_APP):
        return
    members: dict[tuple, list] = {}
    for nid, d in graph.nodes(data=True):
        if d[A.NODE_TYPE] in (model.NT_UNKNOWN, model.NT_BOX) or not model.is_ok(d[A.APP]):
            continue
        members.setdefault((d[A.CLUSTER], d[A.NAMESPACE], d[A.APP]), []).append(nid)
    for (cluster, ns, app), ids in members.items():
        if len(ids) < 2:
            continue
        key = model.box_key(cluster, ns, app)
        box = model.hash_id(key)
        graph.add_node(box, **{A.KEY: key, A.NODE_TYPE: model.NT_BOX, A.CLUSTER: cluster, A.NAMESPACE: ns,
                               A.WORKLOAD: "", A.APP: app, A.VERSION: "", A.SERVICE: "", A.DEST_SERVICES: [],
                               A.RATES: {}, A.IS_INJECTED: False, A.IS_BOX: "app"})
        for nid in ids:
            graph.nodes[nid][A.PARENT] = box
