"""Health: status and color per node and edge from the graph's own traffic (Kiali's algorithm).

Node: worst over protocols and directions of its inbound/outbound requests
judged by the tolerances that apply to it. Edge: worst of the source's
outbound and the destination's inbound judgement of the edge's responses.
TCP has no error semantics: TCP edges with traffic are blue.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.health import ANNOTATION, COLORS, HEALTHY, NA, HealthConfig, evaluate, worst

NAME = "health"
_KIND = {model.NT_WORKLOAD: "workload", model.NT_APP: "app", model.NT_SERVICE: "service"}


def _codes(d: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for code, detail in d[A.RESPONSES].items():
        out[code] = out.get(code, 0.0) + (sum(detail["flags"].values()) if detail["flags"] else sum(detail["hosts"].values()))
    return out


@dataclass
class HealthAppender:
    name: str = NAME
    finalizer: bool = True

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        config = ctx.health or HealthConfig()
        tolerances = {nid: config.tolerances_for(d[A.NAMESPACE], _KIND.get(d[A.NODE_TYPE], ""),
                                                 d.get(A.WORKLOAD) or d.get(A.APP) or d.get(A.SERVICE) or "",
                                                 self._annotation(ctx, d))
                      for nid, d in graph.nodes(data=True)}
        node_codes: dict[tuple[str, str, str], dict[str, float]] = {}
        for s, t, p, d in graph.edges(keys=True, data=True):
            if p == "tcp":
                d[A.HEALTH], d[A.HEALTH_COLOR] = (HEALTHY, "blue") if d[A.RATE] > 0 else (NA, "grey")
                continue
            codes = _codes(d)
            out_status, out_reason = evaluate(codes, p, "outbound", tolerances[s])
            in_status, in_reason = evaluate(codes, p, "inbound", tolerances[t])
            status = worst(out_status, in_status)
            if d[A.RATE] > 0 and status == NA:
                status = HEALTHY
            d[A.HEALTH] = status
            d[A.HEALTH_REASON] = in_reason if status == in_status else out_reason
            d[A.HEALTH_COLOR] = COLORS[status]
            for key in ((s, p, "outbound"), (t, p, "inbound")):
                acc = node_codes.setdefault(key, {})
                for c, r in codes.items():
                    acc[c] = acc.get(c, 0.0) + r
        per_node: dict[str, list[tuple[str, str]]] = {}
        for (nid, p, direction), codes in node_codes.items():
            per_node.setdefault(nid, []).append(evaluate(codes, p, direction, tolerances[nid]))
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] == model.NT_BOX:
                continue
            results = per_node.get(nid, [])
            status = worst(*(s for s, _ in results)) if results else NA
            d[A.HEALTH] = status
            d[A.HEALTH_REASON] = next((r for s, r in results if s == status and r), "")
            d[A.HEALTH_COLOR] = "grey" if d.get(A.IS_IDLE) else COLORS[status]

    @staticmethod
    def _annotation(ctx: AppendContext, d: dict) -> str | None:
        """The `health.kiali.io/rate` annotation on the node's Service or workload, if config is known."""
        snap = ctx.snapshot
        if snap is None:
            return None
        if d[A.NODE_TYPE] == model.NT_SERVICE and model.is_ok(d.get(A.SERVICE)):
            svc = snap.find("Service", d[A.NAMESPACE], d[A.SERVICE])
            return svc.annotations.get(ANNOTATION) if svc is not None else None
        if model.is_ok(d.get(A.WORKLOAD)):
            for w in snap.workloads_in(d[A.NAMESPACE]):
                if w.name == d[A.WORKLOAD]:
                    return w.annotations.get(ANNOTATION) or (w.obj.annotations.get(ANNOTATION) if w.obj else None)
        return None
