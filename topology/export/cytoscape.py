"""Cytoscape JSON (the `elements` list dash-cytoscape draws) with everything the UI styles on.

Values are plain JSON types. Labels are plain text (Cytoscape draws them on a
canvas); any page that puts them in HTML must escape them.
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx

from topology import attrs as A
from topology import model
from topology.export.kiali import format_rate

_NODE_KEYS = (A.NODE_TYPE, A.CLUSTER, A.NAMESPACE, A.WORKLOAD, A.APP, A.VERSION, A.SERVICE, A.HEALTH, A.HEALTH_COLOR,
              A.HEALTH_REASON, A.BADGES, A.IS_ROOT, A.IS_OUTSIDE, A.IS_INACCESSIBLE, A.IS_INJECTED, A.IS_IDLE, A.IS_DEAD,
              A.IS_BOX, A.PARENT, A.IS_SERVICE_ENTRY, A.IS_EGRESS_CLUSTER, A.IS_WAYPOINT, A.DEST_SERVICES)
_EDGE_KEYS = (A.PROTOCOL, A.RATE, A.PERCENT_ERR, A.PERCENT_REQ, A.ERROR_RATE, A.THROUGHPUT, A.LATENCY_P50, A.LATENCY_P95,
              A.LATENCY_P99, A.RESPONSE_FLAGS, A.FLAGGED_RATE, A.MTLS_PERCENT, A.MTLS_INTENT, A.MTLS_MISMATCH,
              A.SOURCE_PRINCIPALS, A.DEST_PRINCIPALS, A.HEALTH, A.HEALTH_COLOR, A.HEALTH_REASON, A.CB_TRIPPED,
              A.RATE_BY_CLASS)


def node_label(d: dict) -> str:
    ntype = d[A.NODE_TYPE]
    if ntype == model.NT_UNKNOWN:
        return "unknown"
    if ntype == model.NT_SERVICE:
        return d[A.SERVICE]
    if ntype == model.NT_BOX:
        return d[A.APP]
    if ntype == model.NT_APP:
        return f"{d[A.APP]} {d[A.VERSION]}".strip() if d.get(A.VERSION) else d[A.APP]
    return d[A.WORKLOAD]


def mtls_state(d: dict) -> str:
    """full | partial | none | "" (nothing measured): never a lock for a partly plaintext edge."""
    measured = d.get(A.MTLS_MEASURED_RATE) or 0.0
    if measured <= 0:
        return ""
    pct = d.get(A.MTLS_PERCENT) or 0.0
    return "full" if pct >= 99.95 else "partial" if pct > 0 else "none"


def edge_label(d: dict) -> str:
    if d[A.PROTOCOL] == "tcp":
        return f"{format_rate(d[A.RATE])}Bps"
    label = f"{format_rate(d[A.RATE])}rps"
    if d.get(A.PERCENT_ERR):
        label += f" {d[A.PERCENT_ERR]:.1f}%err"
    p95 = d.get(A.LATENCY_P95)
    if p95 is not None and not math.isnan(p95):
        label += f" p95 {p95:.0f}ms"
    return label


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (set, tuple)):
        return sorted(value)
    if isinstance(value, list):  # e.g. dest_services, a list of (cluster, namespace, service): JSON has no tuples
        return [list(v) if isinstance(v, tuple) else v for v in value]
    return value


def to_cytoscape(graph: nx.MultiDiGraph) -> list[dict[str, Any]]:
    """Elements for dash-cytoscape: nodes then edges, each `{"data": ..., "classes": ...}`."""
    elements: list[dict[str, Any]] = []
    for nid, d in graph.nodes(data=True):
        data = {"id": nid, "label": node_label(d), "rates": dict(d.get(A.RATES) or {})}
        data.update({k: _plain(d[k]) for k in _NODE_KEYS if d.get(k) not in (None, "", [], False)})
        classes = [d[A.NODE_TYPE], (d.get(A.HEALTH) or "NA").lower()]
        classes += [c for c, flag in (("root", A.IS_ROOT), ("outside", A.IS_OUTSIDE), ("idle", A.IS_IDLE),
                                      ("dead", A.IS_DEAD), ("serviceentry", A.IS_SERVICE_ENTRY),
                                      ("egress", A.IS_EGRESS_CLUSTER)) if d.get(flag)]
        elements.append({"data": data, "classes": " ".join(classes)})
    for s, t, p, d in graph.edges(keys=True, data=True):
        data = {"id": model.edge_id(s, t, p), "source": s, "target": t, "label": edge_label(d), "mtls": mtls_state(d)}
        data.update({k: _plain(d[k]) for k in _EDGE_KEYS if d.get(k) not in (None, "", [], {})})
        classes = [p, (d.get(A.HEALTH) or "NA").lower()]
        if data["mtls"]:
            classes.append(f"mtls-{data['mtls']}")
        if d.get(A.MTLS_MISMATCH):
            classes.append("mtls-mismatch")
        elements.append({"data": data, "classes": " ".join(classes)})
    return elements
