"""Turning the summary rows a rule selected into evidence and impact, the same way for every rule.

A runtime finding is about one destination service: every caller hurt the same
way is one edge in its evidence, so a broken DestinationRule is one finding, not
one per caller. Impact is the hurt request rate and its share of all the
traffic that service received from the same side in the window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from diagnose.findings import ResourceRef
from diagnose.rules.runtime.traffic import (
    CLUSTER, CODE, COUNT, DETAILS, DST, FIRST, FLAGS, LAST, ROUTE, SIDE, SRC, SRC_NS, TFR, TRACES, RuntimeContext,
    fqdn_parts,
)

MAX_EDGES = 20
MAX_TRACES = 5


@dataclass
class Hurt:
    """Requests to one destination service that one cause hurt, with what shows it."""

    destination: str
    side: str
    count: float
    service_total: float
    window_s: float
    edges: list[dict[str, Any]] = field(default_factory=list)
    flags: dict[str, float] = field(default_factory=dict)
    codes: dict[str, float] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)
    transport_failures: dict[str, float] = field(default_factory=dict)
    routes: dict[str, float] = field(default_factory=dict)  # route name (access log) -> hurt requests
    clusters: dict[str, float] = field(default_factory=dict)  # upstream cluster (access log) -> hurt requests
    traces: list[str] = field(default_factory=list)
    # the services the destination calls in the window, directly or further down: a slow or failing one explains
    # a limit this edge crossed (a timeout, an overflowing pool) however many hops lie between (incidents)
    depends_on: list[str] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    @property
    def sources(self) -> str:
        names = [e["source"] for e in self.edges]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    @property
    def rps(self) -> float:
        return self.count / self.window_s

    @property
    def share(self) -> float:
        return self.count / self.service_total if self.service_total else 1.0

    def args(self) -> dict[str, Any]:
        """Template arguments every runtime message uses."""
        return {"source": self.sources or "unknown", "destination": self.destination,
                "count": _int(self.count), "total": _int(self.service_total)}

    def evidence(self, **extra: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "edge_key": self.destination,
            "reporter": self.side,
            "edges": self.edges,
            "count": _int(self.count),
            "total": _int(self.service_total),
            "response_flags": self.flags,
            "response_codes": self.codes,
            "sample_trace_ids": self.traces,
            "time_range": {"start": iso_time(self.first), "end": iso_time(self.last)},
        }
        if self.details:
            ev["response_code_details"] = self.details
        if self.transport_failures:
            ev["upstream_transport_failure_reasons"] = self.transport_failures
        if self.routes:
            ev["route_names"] = self.routes
        if self.clusters:
            ev["upstream_clusters"] = self.clusters
        if self.depends_on:
            ev["depends_on"] = self.depends_on
        ev.update(extra)
        return ev

    def impact(self) -> dict[str, Any]:
        return {"rps": round(self.rps, 4), "share": round(self.share, 4), "requests": _int(self.count),
                "service_rps": round(self.service_total / self.window_s, 4)}

    def service_ref(self) -> ResourceRef:
        name, ns = fqdn_parts(self.destination)
        return ResourceRef(kind="Service", name=name, namespace=ns)


def _int(x: float) -> int | float:
    return int(round(x)) if abs(x - round(x)) < 1e-6 or x >= 10 else round(x, 2)


def iso_time(t: float | None) -> str | None:
    if t is None or pd.isna(t):
        return None
    return datetime.fromtimestamp(float(t), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _grouped(frame: pd.DataFrame, keys: list[str], value: str = COUNT) -> dict[tuple, dict[str, float]]:
    """{(side, dst): {key value: count}} for one column, largest first; one groupby for all services."""
    sums = frame.groupby([SIDE, DST, *keys], sort=False)[value].sum().reset_index()
    sums = sums.sort_values(value, ascending=False, kind="stable")
    out: dict[tuple, dict[str, float]] = {}
    for rec in sums.itertuples(index=False):  # one iteration per distinct value, not per request
        k = rec[2] if len(keys) == 1 else tuple(rec[2:2 + len(keys)])
        if str(k) in ("", "-"):
            continue
        out.setdefault((rec[0], rec[1]), {})[str(k)] = _int(rec[-1])
    return out


def hurt_by_service(ctx: RuntimeContext, rows: pd.DataFrame, min_count: float = 1.0) -> list[Hurt]:
    """One `Hurt` per destination service in `rows` (a subset of `ctx.calls`), biggest first.

    Every aggregate is one groupby over all services at once, so a window with
    thousands of hurt services costs a few vectorized passes, not a pass per service.
    """
    if rows.empty:
        return []
    g = rows.groupby([SIDE, DST], sort=False)
    per = pd.DataFrame({"count": g[COUNT].sum(), "first": g[FIRST].min(), "last": g[LAST].max()})
    per = per[per["count"] >= min_count].sort_values("count", ascending=False)
    if per.empty:
        return []
    rows = rows[pd.MultiIndex.from_frame(rows[[SIDE, DST]]).isin(per.index)]
    totals = ctx.service_totals

    edges = rows.groupby([SIDE, DST, SRC, SRC_NS], sort=False)[COUNT].sum().rename("n").reset_index()
    et = ctx.edge_totals.rename("total").reset_index()
    edges = edges.merge(et, on=[SIDE, SRC, SRC_NS, DST], how="left")
    edges["total"] = edges["total"].fillna(edges["n"])
    edges = edges.sort_values("n", ascending=False, kind="stable").groupby([SIDE, DST], sort=False).head(MAX_EDGES)
    edge_lists: dict[tuple, list[dict[str, Any]]] = {}
    for e in edges.itertuples(index=False):  # one iteration per hurt edge
        edge_lists.setdefault((e.side, e.dst), []).append({
            "source": f"{e.src_ns}/{e.src}" if e.src_ns != "unknown" else e.src,
            "source_workload": e.src, "source_namespace": e.src_ns, "destination": e.dst,
            "count": _int(e.n), "total": _int(e.total), "rps": round(e.n / ctx.window_s, 4),
            "share": round(e.n / e.total, 4) if e.total else 1.0})

    flags = rows[[SIDE, DST, FLAGS, COUNT]].assign(**{FLAGS: rows[FLAGS].str.split(",")}).explode(FLAGS)
    flag_map = _grouped(flags, [FLAGS])
    code_map = _grouped(rows, [CODE])
    detail_map = _grouped(rows, [DETAILS])
    tfr_map = _grouped(rows, [TFR])
    route_map = _grouped(rows, [ROUTE]) if ROUTE in rows else {}
    cluster_map = _grouped(rows, [CLUSTER]) if CLUSTER in rows else {}
    traces = rows[[SIDE, DST, TRACES]].explode(TRACES).dropna(subset=[TRACES]).drop_duplicates()
    trace_map = (traces.groupby([SIDE, DST], sort=False).head(MAX_TRACES)
                 .groupby([SIDE, DST], sort=False)[TRACES].agg(list).to_dict()) if len(traces) else {}

    out: list[Hurt] = []
    for (side, dst), r in per.iterrows():  # one iteration per hurt service, not per request
        key = (side, dst)
        out.append(Hurt(
            destination=dst, side=side, count=float(r["count"]),
            service_total=float(totals.get(key, r["count"])), window_s=ctx.window_s,
            edges=edge_lists.get(key, []), flags=flag_map.get(key, {}), codes=code_map.get(key, {}),
            details=detail_map.get(key, {}), transport_failures=tfr_map.get(key, {}),
            routes=route_map.get(key, {}), clusters=cluster_map.get(key, {}),
            traces=list(trace_map.get(key, [])), depends_on=ctx.reachable(dst),
            first=None if pd.isna(r["first"]) else float(r["first"]),
            last=None if pd.isna(r["last"]) else float(r["last"]),
        ))
    return out
