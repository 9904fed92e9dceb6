"""Building a report snapshot from the live parts: findings, topology's Cytoscape elements, SLO states, config.

What the composition root and `GET /api/v1/report` call; the summary numbers are
derived here once, so every format shows the same counts.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from diagnose.findings import Finding
from diagnose.reports import elements as E
from diagnose.reports.snapshot import MeshSummary, Snapshot, Window


def summarize_graph(elements: list[dict[str, Any]]) -> MeshSummary:
    """Counts for the summary from Cytoscape elements: namespaces, services, workloads, health, traffic."""
    nodes, edges = E.split(elements)
    namespaces = sorted({str(n["namespace"]) for n in nodes if n.get("namespace") and n.get("namespace") != "unknown"})
    health: dict[str, int] = {}
    for n in nodes:
        h = E.health(n)
        health[h] = health.get(h, 0) + 1
    # a request through a service node crosses two edges (client -> service -> workload): count it once
    services = {str(n["id"]) for n in nodes if E.node_type(n) == "service"}
    first_hops = [e for e in edges if str(e["source"]) not in services]
    rps = sum(E.request_rate(e) for e in first_hops)
    err = sum(E.request_rate(e) * E.error_rate(e) for e in first_hops)
    return MeshSummary(
        namespaces=namespaces,
        services=sum(1 for n in nodes if E.node_type(n) == "service"),
        workloads=sum(1 for n in nodes if E.node_type(n) in ("workload", "app")),
        health=health,
        requests_per_second=round(rps, 4) if edges else None,
        error_rate=round(err / rps, 6) if rps else None,
    )


def inventory_from_objects(objects: Iterable[Any], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per config object (anything with kind/namespace/name/source) and how many findings name it."""
    counts: dict[tuple, int] = {}
    for f in findings:
        for ref in [f.get("resource")] + list(f.get("related") or []):
            if ref:
                key = (ref.get("kind"), ref.get("namespace"), ref.get("name"))
                counts[key] = counts.get(key, 0) + 1
    rows = []
    for o in objects:
        key = (o.kind, o.namespace, o.name)
        rows.append({"kind": o.kind, "namespace": o.namespace, "name": o.name,
                     "source": str(o.source) if getattr(o, "source", None) else None, "findings": counts.get(key, 0)})
    rows.sort(key=lambda r: (r["kind"], r["namespace"] or "", r["name"]))
    return rows


def build_snapshot(
    findings: Iterable[Finding | dict[str, Any]] = (),
    *,
    graph: list[dict[str, Any]] | None = None,
    slos: Iterable[dict[str, Any]] = (),
    config_objects: Iterable[Any] = (),
    window: tuple[float, float] | None = None,
    generated_at: float | None = None,
    mesh: MeshSummary | None = None,
    title: str = "meshscope diagnostic report",
    source: str = "meshscope",
    before_after: dict[str, Any] | None = None,
) -> Snapshot:
    """What the composition root (and the API's /report route) calls with the live parts."""
    now = time.time() if generated_at is None else generated_at
    fdicts = [f.to_dict() if isinstance(f, Finding) else dict(f) for f in findings]
    elements = list(graph or [])
    start, end = window if window else (now - 600.0, now)
    return Snapshot(
        generated_at=now,
        window=Window(float(start), float(end)),
        mesh=mesh or summarize_graph(elements),
        graph=elements,
        findings=fdicts,
        slos=[dict(s) for s in slos],
        inventory=inventory_from_objects(config_objects, fdicts),
        title=title,
        source=source,
        before_after=dict(before_after or {}),
    )
