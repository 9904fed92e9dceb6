"""Build the traffic graph (a networkx MultiDiGraph keyed by protocol) from an Istio rate frame.

Steps: select and de-duplicate series (series.py), map series ends to nodes and
edges (traffic.py), aggregate per edge and per node with pandas group-bys, add
everything to networkx in bulk, then run the appender pipeline.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from topology import attrs as A
from topology import model
from topology.appenders import AppendContext, build_pipeline
from topology.options import GraphOptions, NodeSelector, RateModes
from topology.series import contributions
from topology.traffic import Traffic, build_traffic

_ERROR_CLASS = {"http": {"3": "3xx", "4": "4xx", "5": "5xx"}}


def build_graph(rates: pd.DataFrame, graph_type: str = model.WORKLOAD, namespaces: Sequence[str] | None = None, *,
                node: NodeSelector | None = None, rate_modes: RateModes | None = None,
                inject_service_nodes: bool | None = None, accessible: Iterable[tuple[str, str]] | None = None,
                appenders: Sequence[str] | None = None, snapshot=None, health=None, window_s: float | None = None,
                query_time: float | None = None, **appender_options) -> nx.MultiDiGraph:
    """The traffic graph for a rate frame (Istio labels + metric + le + rate).

    `appenders=None` runs every appender; `appenders=[]` runs only the always-on
    finalizers (outsider, traffic generator), like Kiali's empty `appenders=`.
    `snapshot` (mesh.config.Snapshot) feeds config badges and mTLS intent;
    `health` (topology.appenders.health.HealthConfig) overrides Kiali's thresholds.
    """
    opts = GraphOptions(graph_type=graph_type, namespaces=list(namespaces) if namespaces is not None else None,
                        node=node, rates=rate_modes or RateModes(), inject_service_nodes=inject_service_nodes,
                        accessible=set(accessible) if accessible is not None else None,
                        window_s=window_s, query_time=query_time)
    traffic = traffic_for(rates, opts)
    graph = graph_from_traffic(traffic, opts)
    ctx = AppendContext(rates=rates, options=opts, traffic=traffic, snapshot=snapshot, health=health)
    for appender in build_pipeline(appenders, **appender_options):
        appender.append(graph, ctx)
        graph.graph[A.APPENDERS_RUN].append(appender.name)
    return graph


def traffic_for(rates: pd.DataFrame, opts: GraphOptions) -> Traffic:
    contrib, skipped = contributions(rates, opts)
    return build_traffic(contrib, opts, skipped)


def edge_table(edges: pd.DataFrame) -> pd.DataFrame:
    """Per-edge totals and error buckets, indexed by (src, dst, protocol)."""
    proto = edges["protocol"].to_numpy(dtype=object)
    code = edges["code"].astype(str).to_numpy(dtype=object)
    first = np.array([c[:1] for c in code], dtype=object) if len(code) else np.empty(0, dtype=object)
    rate = edges["rate"].to_numpy(dtype=float)
    http = proto == "http"
    grpc = (proto == "grpc") & (edges["flags"].to_numpy(dtype=object) != "")  # message counts carry no status
    cols = {
        "total": rate,
        "c3xx": np.where(http & (first == "3"), rate, 0.0),
        "c4xx": np.where(http & (first == "4"), rate, 0.0),
        "c5xx": np.where(http & (first == "5"), rate, 0.0),
        "noresp": np.where((http | grpc) & (code == "-"), rate, 0.0),
        "grpcerr": np.where(grpc & (code != "-") & (code != "0"), rate, 0.0),
    }
    frame = pd.DataFrame(cols)
    frame["src"], frame["dst"], frame["protocol"] = edges["src"].to_numpy(), edges["dst"].to_numpy(), proto
    return frame.groupby(["src", "dst", "protocol"], sort=False).sum()


def _responses(edges: pd.DataFrame) -> dict[tuple, dict]:
    """(src, dst, proto) -> code -> {"flags": {flag: rate}, "hosts": {host: rate}} (positive rates only)."""
    pos = edges[edges["rate"] > 0]
    out: dict[tuple, dict] = {}
    by_flag = pos.groupby(["src", "dst", "protocol", "code", "flags"], sort=False)["rate"].sum()
    for (s, d, p, code, flag), r in zip(by_flag.index, by_flag.to_numpy()):
        entry = out.setdefault((s, d, p), {}).setdefault(code, {"flags": {}, "hosts": {}})
        if flag:
            entry["flags"][flag] = float(r)
    hosted = pos[pos["d_host"] != ""]
    by_host = hosted.groupby(["src", "dst", "protocol", "code", "d_host"], sort=False)["rate"].sum()
    for (s, d, p, code, host), r in zip(by_host.index, by_host.to_numpy()):
        out[(s, d, p)][code]["hosts"][host] = float(r)
    return out


def node_rates(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Kiali-style node rates (httpIn, httpIn5xx, httpOut, tcpIn ...) summed from the edge table."""
    t = table.reset_index()
    out: dict[str, dict[str, float]] = {}
    suffix = {"total": "In", "c3xx": "In3xx", "c4xx": "In4xx", "c5xx": "In5xx", "noresp": "InNoResponse", "grpcerr": "InErr"}
    incoming = t.groupby(["dst", "protocol"], sort=False)[list(suffix)].sum()
    for (nid, proto), row in zip(incoming.index, incoming.to_numpy()):
        rates = out.setdefault(nid, {})
        for (col, suf), v in zip(suffix.items(), row):
            if v > 0:
                rates[proto + suf] = float(v)
    outgoing = t.groupby(["src", "protocol"], sort=False)["total"].sum()
    for (nid, proto), v in zip(outgoing.index, outgoing.to_numpy()):
        if v > 0:
            out.setdefault(nid, {})[proto + "Out"] = float(v)
    return out


def graph_from_traffic(traffic: Traffic, opts: GraphOptions) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    graph.graph.update({A.GRAPH_TYPE: opts.graph_type, A.NAMESPACES: opts.namespaces, A.WINDOW_S: opts.window_s,
                        A.QUERY_TIME: opts.query_time, A.SKIPPED_SERIES: traffic.skipped, A.APPENDERS_RUN: []})
    table = edge_table(traffic.edges)
    rates = node_rates(table)
    graph.add_nodes_from(
        (nid, {A.KEY: n["key"], A.NODE_TYPE: n["node_type"], A.CLUSTER: n["cluster"], A.NAMESPACE: n["namespace"],
               A.WORKLOAD: n["workload"], A.APP: n["app"], A.VERSION: n["version"], A.SERVICE: n["service"],
               A.DEST_SERVICES: sorted(traffic.dest_services.get(nid, ())), A.RATES: rates.get(nid, {}),
               A.IS_INJECTED: bool(n.get("is_injected", False))})
        for nid, n in traffic.nodes.items())
    graph.add_edges_from(edge_records(traffic, table))
    _add_boxes(graph, opts)
    return graph


def edge_records(traffic: Traffic, table: pd.DataFrame) -> list[tuple]:
    """(src, dst, protocol, attributes) for add_edges_from, with % of source outbound and % errors."""
    responses = _responses(traffic.edges)
    t = table.reset_index()
    out_tot = t.groupby(["src", "protocol"], sort=False)["total"].transform("sum").to_numpy()
    records = []
    cols = [t[c].to_numpy() for c in ("src", "dst", "protocol", "total", "c3xx", "c4xx", "c5xx", "noresp", "grpcerr")]
    for (s, d, p, tot, c3, c4, c5, nr, ge), ot in zip(zip(*cols), out_tot):
        if p == "http":
            rates = {"http": tot, "http3xx": c3, "http4xx": c4, "http5xx": c5, "httpNoResponse": nr}
            err = c4 + c5 + nr
        elif p == "grpc":
            rates = {"grpc": tot, "grpcErr": ge, "grpcNoResponse": nr}
            err = ge + nr
        else:
            rates, err = {"tcp": tot}, 0.0
        rates = {k: float(v) for k, v in rates.items() if v > 0 or k == p}
        records.append((s, d, p, {A.PROTOCOL: p, A.RATE: float(tot), A.EDGE_RATES: rates,
                                  A.RESPONSES: responses.get((s, d, p), {}),
                                  A.PERCENT_ERR: float(100.0 * err / tot) if tot > 0 else 0.0,
                                  A.PERCENT_REQ: float(100.0 * tot / ot) if ot > 0 else 0.0}))
    return records


def _add_boxes(graph: nx.MultiDiGraph, opts: GraphOptions) -> None:
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
