"""Graph records -> the Cytoscape elements the topology page draws.

The page styles on the keys listed in `dashboard/query.py` (type, health,
mtls_state, label_*...). Two producers feed it: saved snapshots (records already
in that shape) and `topology.export.cytoscape.to_cytoscape` (Kiali-like keys:
node_type, rate, percent_err, Healthy/Degraded/Failure). `from_topology` maps
the second onto the first, so a live source is one call away:
``ui_elements(*from_topology(to_cytoscape(graph)))``.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
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


def node_element(n: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A node's element; `extra` fields are added to its data (one copy of the record, not two)."""
    data = {**n, **extra} if extra else dict(n)
    data["label"] = n.get("name") or n["id"]
    badges = n.get("badges")
    classes = f"{n.get('type', 'workload')} health-{n.get('health', 'na')}"
    if badges:
        classes += "".join(f" badge-{b}" for b in badges)
    return {"data": data, "classes": classes}


def edge_element(e: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An edge's element with its display strings; `extra` fields are added to its data."""
    data = {**e, **extra} if extra else dict(e)
    state = e.get("mtls_state") or "none"
    protocol = e.get("protocol", "http")
    data["label_rps"] = fmt_rps(e.get("rps")) if protocol != "tcp" else f"{e.get('rps') or 0:.0f}Bps"
    err = e.get("error_pct")
    data["label_err"] = f"{err:.1f}%err" if err else ""
    data["label_p95"] = fmt_ms(e.get("p95_ms"))
    lock = _LOCK.get(state, "")
    data["lock"] = lock.format(pct=e.get("mtls_pct") or 0) if "{" in lock else lock
    classes = f"health-{e.get('health', 'na')} mtls-{state} proto-{protocol}"
    if e.get("cb_tripped"):  # Kiali's hint: the target's circuit breaker is turning requests away
        data["lock"] = f"{data['lock']} CB".strip()
        classes += " cb-tripped"
    return {"data": data, "classes": classes}


def _inbound(edges: list[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per target node, the response codes and flags of its inbound edges, summed (rounded to 6 decimals)."""
    codes: dict[str, dict[str, float]] = {}
    flags: dict[str, dict[str, float]] = {}
    for e in edges:
        for table, values in ((codes, e.get("codes")), (flags, e.get("flags"))):
            if values:
                bucket = table.setdefault(e["target"], {})
                for k, v in values.items():
                    bucket[k] = bucket.get(k, 0.0) + float(v)
    for table in (codes, flags):
        for bucket in table.values():
            for k, v in bucket.items():
                bucket[k] = round(v, 6)
    return codes, flags


def _node_context(n: dict[str, Any], codes: dict[str, dict[str, float]],
                  flags: dict[str, dict[str, float]]) -> dict[str, Any]:
    nid = n["id"]
    return {"codes": n.get("codes") or codes.get(nid) or {}, "flags": n.get("flags") or flags.get(nid) or {}}


def _edge_context(e: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    src, dst = by_id.get(e["source"], _NONE), by_id.get(e["target"], _NONE)
    return {"source_label": src.get("name", e["source"]), "target_label": dst.get("name", e["target"]),
            "target_app": dst.get("app") or dst.get("name", ""), "target_namespace": dst.get("namespace", "")}


_NONE: dict[str, Any] = {}


def with_context(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Copies where each edge names its ends and each node carries its inbound code/flag breakdown.

    The side panel only receives the clicked element's data, so what it shows about
    the neighbours (names, the service traces are filed under) has to travel with it.
    """
    by_id = {n["id"]: n for n in nodes}
    codes, flags = _inbound(edges)
    return ([{**n, **_node_context(n, codes, flags)} for n in nodes],
            [{**e, **_edge_context(e, by_id)} for e in edges])


def ui_elements(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cytoscape elements (labels, classes, neighbour context) from node and edge records.

    The context goes straight into each element's one copy of its record (`with_context` then the elements
    copied every record twice: at 34,000 edges most of the snapshot source's 0.45 s graph build).
    """
    with gc_paused():
        by_id = {n["id"]: n for n in nodes}
        codes, flags = _inbound(edges)
        return ([node_element(n, _node_context(n, codes, flags)) for n in nodes]
                + [edge_element(e, _edge_context(e, by_id)) for e in edges])


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic-GC passes while a big graph's tens of thousands of small dicts are made: each pass rescans the
    whole (acyclic) heap, which was about 40 % of building 44,000 elements (`topology.build` does the same)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
