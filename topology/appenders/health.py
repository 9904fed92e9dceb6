"""Health: status and color per node and edge from the graph's own traffic (Kiali's algorithm).

Node: worst over protocols and directions of its inbound/outbound requests
judged by the tolerances that apply to it; its reason names the direction that
decided (e.g. "outbound 5XX 40.0% of requests"), so a node failing on its calls is
not read against its inbound error %. Edge: worst of the source's
outbound and the destination's inbound judgement of the edge's responses.
TCP has no error semantics: TCP edges with traffic are blue. Vectorized: one
bincount per tolerance, whatever the number of edges.

Latency counts as errors do: with latency objectives (`HealthConfig.latency`, from latency SLOs),
an edge into the service whose latency at the objective's quantile is over the threshold is
Degraded, and Failure when it is over already at the quantile that leaves 10x the budget; the
reason names the quantile, the value, the limit and the SLO, and the service's node is judged
the same way on its inbound edges. The worse of the error and latency judgements wins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx
import numpy as np

from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext, edge_dicts
from topology.appenders.response_time import ResponseTimeAppender
from topology.health import ANNOTATION, COLORS, DEGRADED, FAILURE, HEALTHY, NA, HealthConfig, LatencyLimit, Tolerance
from topology.quantile import evaluate
from topology.traffic import PROTOCOLS, memo

NAME = "health"
_KIND = {model.NT_WORKLOAD: "workload", model.NT_APP: "app", model.NT_SERVICE: "service"}
_STATUS = (NA, HEALTHY, DEGRADED, FAILURE)
_DEFAULT_CONFIG = HealthConfig()  # Kiali's defaults; one object, so the per-structure memo recognises it


def _judge(bad: np.ndarray, total: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, np.ndarray]:
    """Status rank (1 healthy, 2 degraded, 3 failure) and error % per entry."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(total > 0, 100.0 * bad / total, 0.0)
    rank = np.where(pct <= 0, 1, np.where(pct >= tol.failure, 3, np.where(pct >= tol.degraded, 2, 1)))
    return rank, pct


@dataclass
class HealthAppender:
    name: str = NAME
    finalizer: bool = True

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        tr = ctx.traffic
        config = ctx.health or _DEFAULT_CONFIG
        table = tr.table
        n_nodes, n_edges = tr.n_nodes, len(tr.e_src)
        # one slot, recomputed when the thresholds or the snapshot object change (an id() key would
        # miss on every fresh config object and pile up entries for the life of the structure)
        slot = tr.on_edges.get(("health", "sets"))
        if slot is None or slot[0] is not config or slot[1] is not ctx.snapshot:
            slot = tr.on_edges[("health", "sets")] = (config, ctx.snapshot, self._sets(ctx, config))
        sets, node_set = slot[2]
        all_tols = sorted({t for tols in sets for t in tols}, key=repr)
        c = tr.contrib
        eidx, rate = c["eidx"].to_numpy(), c["rate"].to_numpy(dtype=float)
        uniq, inv = memo(tr, ("health", "codes"), lambda: self._codes(c))
        total = np.bincount(eidx, weights=rate, minlength=n_edges) if len(eidx) else np.zeros(n_edges)
        bad = {}
        for t in all_tols:
            hit = memo(tr, ("health", "hit", t), lambda t=t: np.array([t.matches_code(u) for u in uniq] + [False],
                                                                       dtype=bool)[inv if len(uniq) else np.empty(0, dtype=np.int64)])
            bad[t] = np.bincount(eidx[hit], weights=rate[hit], minlength=n_edges) if hit.any() else np.zeros(n_edges)
        proto_ok = {t: np.array([re.fullmatch(t.protocol, p) is not None for p in PROTOCOLS], dtype=bool)[tr.e_proto]
                    for t in all_tols}

        # edges: worst of the source's outbound and the destination's inbound judgement
        e_rank = np.where(total > 0, 1, 0)
        e_reason = np.full(n_edges, -1)
        e_pct = np.zeros(n_edges)
        tol_list = list(all_tols)
        for tols, sid in sets.items():
            for direction, ends in (("outbound", tr.e_src), ("inbound", tr.e_dst)):
                mine = node_set[ends] == sid
                for t in tols:
                    if re.fullmatch(t.direction, direction) is None:
                        continue
                    rank, pct = _judge(bad[t], total, t)
                    use = mine & proto_ok[t] & (total > 0) & (rank > e_rank)
                    e_rank = np.where(use, rank, e_rank)
                    e_reason = np.where(use, tol_list.index(t), e_reason)
                    e_pct = np.where(use, pct, e_pct)
        lat_rank, lat_reason = _latency(ctx, config.latency, total)
        dicts = edge_dicts(ctx)
        for e, (d, rank, why, pct) in enumerate(zip(dicts, e_rank.tolist(), e_reason.tolist(), e_pct.tolist())):
            if d[A.PROTOCOL] == "tcp":
                d[A.HEALTH], d[A.HEALTH_COLOR] = (HEALTHY, "blue") if d[A.RATE] > 0 else (NA, "grey")
                continue
            reason = self._reason(tol_list[why], pct) if why >= 0 else ""
            if e in lat_reason and lat_rank[e] > rank:
                rank, reason = int(lat_rank[e]), lat_reason[e]
            status = _STATUS[rank]
            d[A.HEALTH], d[A.HEALTH_COLOR] = status, COLORS[status]
            d[A.HEALTH_REASON] = reason

        # nodes: inbound and outbound requests per protocol
        n_rank = np.zeros(n_nodes, dtype=np.int64)
        n_reason = np.full(n_nodes, -1)
        n_pct = np.zeros(n_nodes)
        n_dir = np.zeros(n_nodes, dtype=np.int64)  # 0 inbound, 1 outbound: whose requests decided the status
        for p in (0, 1):
            on = tr.e_proto == p
            for direction, ends in (("inbound", tr.e_dst), ("outbound", tr.e_src)):
                tot = np.bincount(ends[on], weights=total[on], minlength=n_nodes)
                n_rank = np.where((tot > 0) & (n_rank == 0), 1, n_rank)
                for tols, sid in sets.items():
                    mine = (node_set == sid) & (tot > 0)
                    for t in tols:
                        if re.fullmatch(t.protocol, PROTOCOLS[p]) is None or re.fullmatch(t.direction, direction) is None:
                            continue
                        rank, pct = _judge(np.bincount(ends[on], weights=bad[t][on], minlength=n_nodes), tot, t)
                        use = mine & (rank > n_rank)
                        n_rank = np.where(use, rank, n_rank)
                        n_reason = np.where(use, tol_list.index(t), n_reason)
                        n_pct = np.where(use, pct, n_pct)
                        n_dir = np.where(use, int(direction == "outbound"), n_dir)
        # tcp-only traffic is healthy traffic (no error semantics)
        tcp_any = np.zeros(n_nodes, dtype=bool)
        on = tr.e_proto == 2
        tcp_any[tr.e_src[on]] = True
        tcp_any[tr.e_dst[on]] = True
        n_rank = np.where((n_rank == 0) & tcp_any, 1, n_rank)
        # a service slower than its latency objective: its node is judged on its inbound edges' latency too
        n_lat = np.zeros(n_nodes, dtype=np.int64)
        n_lat_edge = np.full(n_nodes, -1)
        for e in sorted(lat_reason, key=lambda e: -lat_rank[e]):
            dst = int(tr.e_dst[e])
            if lat_rank[e] > n_lat[dst]:
                n_lat[dst], n_lat_edge[dst] = lat_rank[e], e
        index = table.index
        for nid, d in graph.nodes(data=True):
            if d[A.NODE_TYPE] == model.NT_BOX:
                continue
            i = index.get(d[A.KEY], -1)
            rank = int(n_rank[i]) if 0 <= i < n_nodes else 0
            reason = (("outbound " if n_dir[i] else "inbound ") + self._reason(tol_list[n_reason[i]], n_pct[i])
                      if i >= 0 and n_reason[i] >= 0 else "")
            if 0 <= i < n_nodes and n_lat[i] > rank:
                rank, reason = int(n_lat[i]), "inbound " + lat_reason[int(n_lat_edge[i])]
            status = _STATUS[rank]
            d[A.HEALTH] = status
            d[A.HEALTH_REASON] = reason
            d[A.HEALTH_COLOR] = "grey" if d.get(A.IS_IDLE) else COLORS[status]

    def _sets(self, ctx: AppendContext, config: HealthConfig) -> tuple[dict[tuple, int], np.ndarray]:
        """Tolerance set per node (usually one shared set): depends on structure and config only."""
        tr = ctx.traffic
        sets: dict[tuple, int] = {}
        node_set = np.zeros(tr.n_nodes, dtype=np.int64)
        for i in tr.nodes_in_graph().tolist():
            f = tr.table.fields[i]
            ntype = tr.table.types[i]
            tols = config.tolerances_for(f["namespace"], _KIND.get(ntype, ""), f["workload"] or f["app"] or f["service"],
                                         self._annotation(ctx, ntype, f))
            node_set[i] = sets.setdefault(tols, len(sets))
        return sets, node_set

    @staticmethod
    def _codes(c) -> tuple[np.ndarray, np.ndarray]:
        codes = c["code"].astype(str).to_numpy()
        if not len(codes):
            return np.empty(0, dtype=str), np.empty(0, dtype=np.int64)
        return np.unique(codes, return_inverse=True)

    @staticmethod
    def _reason(t: Tolerance, pct: float) -> str:
        limit = t.failure if pct >= t.failure else t.degraded
        return f"{t.code} {pct:.1f}% of requests (limit {limit:g}%)"

    @staticmethod
    def _annotation(ctx: AppendContext, ntype: str, f: dict) -> str | None:
        """The `health.kiali.io/rate` annotation on the node's Service or workload, if config is known."""
        snap = ctx.snapshot
        if snap is None:
            return None
        if ntype == model.NT_SERVICE and model.is_ok(f.get("service")):
            svc = snap.find("Service", f["namespace"], f["service"])
            return svc.annotations.get(ANNOTATION) if svc is not None else None
        if model.is_ok(f.get("workload")):
            w = ctx.config.workload(f["namespace"], f["workload"])
            if w is not None:
                return w.annotations.get(ANNOTATION) or (w.obj.annotations.get(ANNOTATION) if w.obj else None)
        return None


def _latency(ctx: AppendContext, limits: tuple[LatencyLimit, ...], total: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Per edge: status rank from the latency objectives of its destination (0 = none) and the reason, for edges judged.

    An edge is into a limit's service when its destination node is that service, or a workload/app of
    it (app label = service name, as Istio's canonical service defaults to), in the limit's namespace.
    """
    tr = ctx.traffic
    n_edges = len(tr.e_src)
    rank = np.zeros(n_edges, dtype=np.int64)
    reasons: dict[int, str] = {}
    if not limits or not n_edges:
        return rank, reasons
    rows, layout = memo(tr, ("responseTime",), lambda: ResponseTimeAppender._layout(tr))
    if not len(rows):
        return rank, reasons
    fields = tr.table.fields
    ns = np.array([f.get("namespace") or "" for f in fields], dtype=object)
    svc = np.array([f.get("service") or "" for f in fields], dtype=object)
    app = np.array([f.get("app") or "" for f in fields], dtype=object)
    groups, values = evaluate(layout, tr.rows["rate"].to_numpy()[rows],
                              tuple(sorted({q for lim in limits for q in lim.quantiles()})))  # one pass for all
    groups = groups.tolist()
    for lim in limits:
        into = (ns == lim.namespace) & ((svc == lim.service) | (app == lim.service))
        edges = into[tr.e_dst] & (tr.e_proto != 2) & (total > 0)
        if not edges.any():
            continue
        q_deg, q_fail = lim.quantiles()
        for e, v_deg, v_fail in zip(groups, values[q_deg].tolist(), values[q_fail].tolist()):
            if not edges[e] or not v_deg > lim.threshold_ms:
                continue
            failing = v_fail > lim.threshold_ms
            r = 3 if failing else 2
            if r <= rank[e]:
                continue
            q, v = (q_fail, v_fail) if failing else (q_deg, v_deg)
            rank[e] = r
            reasons[e] = (f"latency p{_pct(q)} {v:.0f} ms over {lim.threshold_ms:g} ms"
                          f" ({lim.source or 'latency objective'}: {lim.objective:g}% within {lim.threshold_ms:g} ms)")
    return rank, reasons


def _pct(q: float) -> str:
    return f"{100 * q:.1f}".rstrip("0").rstrip(".")
