"""Graph records -> the Cytoscape elements the topology page draws.

The page styles on the keys listed in `dashboard/query.py` (type, health,
mtls_state, label_*...). Two producers feed it: saved snapshots (records already
in that shape) and `topology.export.cytoscape.to_cytoscape` (Kiali-like keys:
node_type, rate, percent_err, Healthy/Degraded/Failure). `from_topology` maps
the second onto the first, so a live source is one call away:
``ui_elements(*from_topology(to_cytoscape(graph)))``.
"""
from __future__ import annotations

from typing import Any

_HEALTH = {"healthy": "healthy", "degraded": "degraded", "failure": "failing", "failing": "failing",
           "idle": "idle", "na": "na", "": "na"}
_LOCK = {"full": "mTLS", "partial": "mTLS {pct:.0f}%", "mismatch": "\u26a0 mTLS", "none": ""}


def fmt_rps(x: float | None) -> str:
    """Kiali's rule: at least two decimals, more until one significant digit shows (at most five)."""
    if not x:
        return "0rps"
    for digits in range(2, 6):
        s = f"{x:.{digits}f}"
        if s.strip("0.") != "":
            return f"{s}rps"
    return f"{x:.5f}rps"


def fmt_ms(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x / 1000:.2f}s" if x >= 1000 else f"{x:.0f}ms" if x >= 10 else f"{x:.1f}ms"


def node_element(n: dict[str, Any]) -> dict[str, Any]:
    data = dict(n)
    data["label"] = n.get("name") or n["id"]
    classes = [n.get("type", "workload"), f"health-{n.get('health', 'na')}", *[f"badge-{b}" for b in n.get("badges", [])]]
    element: dict[str, Any] = {"data": data, "classes": " ".join(classes)}
    return element


def edge_element(e: dict[str, Any]) -> dict[str, Any]:
    data = dict(e)
    state = e.get("mtls_state") or "none"
    data["label_rps"] = fmt_rps(e.get("rps")) if e.get("protocol") != "tcp" else f"{e.get('rps') or 0:.0f}Bps"
    data["label_err"] = f"{e.get('error_pct', 0):.1f}%err" if e.get("error_pct") else ""
    data["label_p95"] = fmt_ms(e.get("p95_ms"))
    data["lock"] = _LOCK.get(state, "").format(pct=e.get("mtls_pct") or 0)
    if e.get("cb_tripped"):  # Kiali's hint: the target's circuit breaker is turning requests away
        data["lock"] = f"{data['lock']} CB".strip()
    classes = [f"health-{e.get('health', 'na')}", f"mtls-{state}", f"proto-{e.get('protocol', 'http')}",
               *(["cb-tripped"] if e.get("cb_tripped") else [])]
    return {"data": data, "classes": " ".join(classes)}


def with_context(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Copies where each edge names its ends and each node carries its inbound code/flag breakdown.

    The side panel only receives the clicked element's data, so what it shows about
    the neighbours (names, the service traces are filed under) has to travel with it.
    """
    by_id = {n["id"]: n for n in nodes}
    codes: dict[str, dict[str, float]] = {}
    flags: dict[str, dict[str, float]] = {}
    out_edges = []
    for e in edges:
        src, dst = by_id.get(e["source"], {}), by_id.get(e["target"], {})
        out_edges.append({**e, "source_label": src.get("name", e["source"]), "target_label": dst.get("name", e["target"]),
                          "target_app": dst.get("app") or dst.get("name", ""), "target_namespace": dst.get("namespace", "")})
        for table, values in ((codes, e.get("codes")), (flags, e.get("flags"))):
            bucket = table.setdefault(e["target"], {})
            for k, v in (values or {}).items():
                bucket[k] = round(bucket.get(k, 0.0) + float(v), 6)
    out_nodes = [{**n, "codes": n.get("codes") or codes.get(n["id"], {}), "flags": n.get("flags") or flags.get(n["id"], {})}
                 for n in nodes]
    return out_nodes, out_edges


def ui_elements(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cytoscape elements (labels, classes, neighbour context) from node and edge records."""
    nodes, edges = with_context(nodes, edges)
    return [node_element(n) for n in nodes] + [edge_element(e) for e in edges]


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def from_topology(elements: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node and edge records (the snapshot shape) from topology's Cytoscape export."""
    nodes, edges = [], []
    for el in elements:
        d = el.get("data", {})
        health = _HEALTH.get(str(d.get("health") or "").lower(), "na")
        if "source" in d and "target" in d:
            mismatch = bool(d.get("mtls_mismatch"))
            edges.append({
                "id": d["id"], "source": d["source"], "target": d["target"], "protocol": d.get("protocol", "http"),
                "rps": _num(d, "rate") or 0.0, "error_pct": round(_num(d, "percent_err") or 0.0, 1),
                "p50_ms": _num(d, "latency_p50_ms"), "p95_ms": _num(d, "latency_p95_ms"),
                "p99_ms": _num(d, "latency_p99_ms"), "mtls_pct": _num(d, "mtls_percent"),
                "mtls_state": "mismatch" if mismatch else (d.get("mtls") or "none"), "mtls_intent": d.get("mtls_intent"),
                "health": health, "codes": dict(d.get("rate_by_class") or {}), "flags": dict(d.get("response_flags") or {}),
                "health_reason": d.get("health_reason", ""), "cb_tripped": bool(d.get("cb_tripped")),
            })
            continue
        rates = d.get("rates") or {}
        rps_in = sum(float(rates.get(k, 0.0)) for k in ("httpIn", "grpcIn"))
        err_in = sum(float(rates.get(k, 0.0)) for k in ("httpIn4xx", "httpIn5xx", "httpInNoResponse", "grpcInErr"))
        node = {
            "id": d["id"], "type": d.get("node_type", "workload"), "name": d.get("label") or d["id"],
            "namespace": d.get("namespace", ""), "app": d.get("app", ""), "version": d.get("version", ""),
            "health": "idle" if d.get("is_idle") else health, "badges": [str(b).lower() for b in d.get("badges") or []],
            "rps_in": round(rps_in, 3), "rps_out": round(sum(float(rates.get(k, 0.0)) for k in ("httpOut", "grpcOut")), 3),
            "error_pct": round(100 * err_in / rps_in, 1) if rps_in else 0.0, "outsider": bool(d.get("is_outside")),
            "health_reason": d.get("health_reason", ""),
        }
        if d.get("parent"):
            node["parent"] = d["parent"]
        if d.get("dest_services"):  # [namespace, service] pairs the node was called as
            node["services"] = [[ns, svc] for _, ns, svc in d["dest_services"]]
        nodes.append(node)
    return nodes, edges
