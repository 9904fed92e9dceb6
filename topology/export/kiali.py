"""Kiali-shaped graph JSON (the `/api/namespaces/graph` response), for comparison with Kiali.

Rates are strings as Kiali prints them; nodes and edges are sorted the way
Kiali sorts them, so the output compares with Kiali's golden files as is.
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx

from topology import attrs as A
from topology import model

_NODE_FLAGS = [(A.IS_INACCESSIBLE, "isInaccessible"), (A.IS_INJECTED, "isInjected"), (A.IS_OUTSIDE, "isOutside"),
               (A.IS_ROOT, "isRoot"), (A.IS_IDLE, "isIdle"), (A.IS_DEAD, "isDead"), (A.IS_WAYPOINT, "isWaypoint")]


def format_rate(value: float) -> str:
    """At least 2 decimals, more (up to 5) until one significant digit shows."""
    if value == 0:
        return "0.00"
    for decimals in range(2, 6):
        text = f"{value:.{decimals}f}"
        if any(ch not in "0.-" for ch in text):
            return text
    return f"{value:.5f}"


def _pct(part: float, total: float) -> str:
    return f"{(100.0 * part / total) if total else 0.0:.1f}"


def node_json(nid: str, d: dict) -> dict[str, Any]:
    data: dict[str, Any] = {"id": nid}
    if d.get(A.PARENT):
        data["parent"] = d[A.PARENT]
    data["nodeType"] = d[A.NODE_TYPE]
    for key in (A.CLUSTER, A.NAMESPACE, A.WORKLOAD, A.APP, A.VERSION, A.SERVICE):
        if d.get(key):
            data[key] = d[key]
    if d.get(A.DEST_SERVICES):
        data["destServices"] = [{"cluster": c, "namespace": ns, "name": n} for c, ns, n in d[A.DEST_SERVICES]]
    traffic = []
    rates = d.get(A.RATES) or {}
    for proto in sorted({k.split("In")[0].split("Out")[0] for k in rates}):
        sub = {k: format_rate(v) for k, v in sorted(rates.items()) if k.startswith(proto + "In") or k.startswith(proto + "Out")}
        if sub:
            traffic.append({"protocol": proto, "rates": sub})
    if traffic:
        data["traffic"] = traffic
    data["healthData"] = d.get("health_data")
    if d.get(A.IS_BOX):
        data["isBox"] = d[A.IS_BOX]
    for key, name in _NODE_FLAGS:
        if d.get(key):
            data[name] = True
    if d.get(A.IS_SERVICE_ENTRY):
        se = d[A.IS_SERVICE_ENTRY]
        data["isServiceEntry"] = {"location": se["location"], "hosts": se["hosts"], "name": se["name"]}
    if d.get(A.IS_EGRESS_CLUSTER):
        data["isEgressCluster"] = True
    return data


def edge_json(src: str, dst: str, d: dict, graph: nx.MultiDiGraph) -> dict[str, Any]:
    proto = d[A.PROTOCOL]
    total = d[A.RATE]
    rates = {k: format_rate(v) for k, v in d[A.EDGE_RATES].items()}
    if proto in ("http", "grpc"):
        if d[A.PERCENT_ERR] > 0:
            rates[proto + "PercentErr"] = f"{d[A.PERCENT_ERR]:.1f}"
        if d[A.PERCENT_REQ] > 0:
            rates[proto + "PercentReq"] = f"{d[A.PERCENT_REQ]:.1f}"
    responses = {}
    for code, detail in d[A.RESPONSES].items():
        entry = {}
        if detail["flags"]:
            entry["flags"] = {f: _pct(r, total) for f, r in detail["flags"].items()}
        if detail["hosts"]:
            entry["hosts"] = {h: _pct(r, total) for h, r in detail["hosts"].items()}
        responses[code] = entry
    traffic: dict[str, Any] = {"protocol": proto, "rates": rates}
    if responses:
        traffic["responses"] = responses
    data: dict[str, Any] = {"id": model.edge_id(src, dst, proto), "source": src, "target": dst, "traffic": traffic}
    if d.get(A.MTLS_PERCENT):
        data["isMTLS"] = f"{d[A.MTLS_PERCENT]:.0f}"
    if d.get(A.LATENCY_P95) is not None and not math.isnan(d[A.LATENCY_P95]):
        data["responseTime"] = f"{d[A.LATENCY_P95]:.0f}"
    if d.get(A.HEALTH):
        data["healthStatus"] = d[A.HEALTH]
    wp = d.get(A.WAYPOINT)
    if wp:
        data["waypoint"] = {"direction": wp["direction"]}
        if "from_edge" in wp:
            f = wp["from_edge"]
            inner = edge_json(f["source"], f["target"], f["attrs"], graph)
            inner["id"] = f["id"]
            data["waypoint"]["fromEdge"] = inner
    return data


def _node_sort_key(item: tuple[str, dict]) -> tuple:
    _, d = item
    return (0 if d.get(A.IS_BOX) else 1, d[A.CLUSTER], d[A.NAMESPACE], d[A.APP] or "", d[A.VERSION] or "",
            d[A.SERVICE] or "", d[A.WORKLOAD] or "")


def to_kiali(graph: nx.MultiDiGraph, duration_s: float | None = None, timestamp: float | None = None) -> dict[str, Any]:
    """The whole graph as Kiali's Cytoscape-style response document."""
    nodes = [{"data": node_json(nid, d)} for nid, d in sorted(graph.nodes(data=True), key=_node_sort_key)]
    edges = sorted((edge_json(s, t, d, graph) for s, t, d in graph.edges(data=True)),
                   key=lambda e: (e["source"], e["target"], e["traffic"]["protocol"]))
    return {"timestamp": int(timestamp if timestamp is not None else graph.graph.get(A.QUERY_TIME) or 0),
            "duration": int(duration_s if duration_s is not None else graph.graph.get(A.WINDOW_S) or 0),
            "graphType": graph.graph[A.GRAPH_TYPE],
            "elements": {"nodes": nodes, "edges": [{"data": e} for e in edges]}}
