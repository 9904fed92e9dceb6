"""Latency anomalies per destination service: the recent p95 against its usual p95.

The usual p95 comes from the live loop's baseline (kept while the service is
healthy, so a long regression does not become the new normal) or, for a single
evaluation, from the older part of the same window. A p95 above `absolute_ms`
is reported without a baseline, and with one when the median moved too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collector import schema as s
from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from diagnose.rules.runtime.evidence import iso_time
from diagnose.rules.runtime.traffic import DST, SIDE, SRC, SRC_NS, RuntimeContext, _destination, _text, fqdn_parts

Q = 0.95


def client_rows(ctx: RuntimeContext) -> pd.DataFrame:
    """Per-request rows seen by callers; server-side rows only for services no caller sidecar reports."""
    er = ctx.edge_requests
    if er.empty:
        return er
    er = er[er[s.DURATION_MS].notna()]
    src = er[er[SIDE] == "source"]
    dst_only = er[(er[SIDE] == "destination") & ~er[DST].isin(src[DST].unique())]
    return pd.concat([src, dst_only]) if len(dst_only) else src


def rate_p95(ctx: RuntimeContext, by: list[str]) -> pd.DataFrame:
    """p95 (`value`) and requests in the window (`n`) from `istio_request_duration_milliseconds_bucket` rates,
    as callers report them (`histogram_quantile(0.95, sum by (by, le) (rate(...)))`)."""
    from collector.query import histogram_quantile

    r = ctx.rates
    if r is None or r.empty or s.METRIC not in r:
        return pd.DataFrame(columns=[*by, "value", "n"])
    b = r[r[s.METRIC] == s.ISTIO_REQUEST_DURATION_MS + "_bucket"]
    frame = pd.DataFrame({SIDE: _text(b, s.REPORTER, "source"), DST: _destination(b),
                          SRC: _text(b, s.SOURCE_WORKLOAD), SRC_NS: _text(b, s.SOURCE_WORKLOAD_NAMESPACE),
                          s.LE: pd.to_numeric(b[s.LE], errors="coerce"), s.METRIC: b[s.METRIC].astype(str),
                          s.RATE: pd.to_numeric(b[s.RATE], errors="coerce").fillna(0.0)})
    src = frame[frame[SIDE] != "destination"]
    frame = src if len(src) else frame
    if frame.empty:
        return pd.DataFrame(columns=[*by, "value", "n"])
    q = histogram_quantile(Q, frame, by=by)
    n = frame[np.isinf(frame[s.LE])].groupby(by, sort=False)[s.RATE].sum() * ctx.window_s
    return q.merge(n.rename("n").reset_index(), on=by, how="left").fillna({"n": 0.0}).dropna(subset=["value"])


def host_factor(ratios: pd.Series, min_services: int = 3) -> float:
    """How much slower everything is at once: the lower quartile of every service's p95 / usual p95.

    When the host is busy every service slows down together, so even the least affected quarter is slower;
    one service regressing (and its callers) leaves the lower quartile near 1. A service is anomalous
    only beyond this common factor."""
    r = ratios.replace([np.inf, -np.inf], np.nan).dropna()
    if len(r) < min_services:
        return 1.0
    return max(1.0, float(r.quantile(0.25)))


def p95_by_service(rows: pd.DataFrame) -> pd.Series:
    return rows.groupby(DST, sort=False)[s.DURATION_MS].quantile(Q) if len(rows) else pd.Series(dtype=float)


@dataclass(frozen=True)
class EdgeLatencyAnomaly:
    ratio: float = 2.0  # p95 at least this many times the baseline
    min_increase_ms: float = 100.0  # and at least this much slower (a busy host adds tens of ms to everything)
    min_services_for_host_factor: int = 3
    absolute_ms: float = 1000.0  # a p95 above this is reported without a baseline
    min_requests: int = 10
    name: str = "latency.EdgeLatencyAnomaly"
    description: str = "p95 latency of a service's callers well above its baseline (or above an absolute bound)"
    codes: tuple[str, ...] = ("MS3014",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        rows = client_rows(ctx)
        if rows.empty:
            return self._from_rates(ctx) if ctx.rates is not None and len(ctx.rates) else []
        # the recent part: a third of the window, but at least 5 s (half of a short window) so that a slow
        # service, which also slows its own traffic down, still has enough requests in it
        recent_s = ctx.options.get("latency_recent_s", max(ctx.window_s / 3, min(5.0, ctx.window_s / 2)))
        cut = ctx.end - float(recent_s)
        recent, older = rows[rows["t"] >= cut], rows[rows["t"] < cut]
        counts = older.groupby(DST, sort=False).size()
        baseline = p95_by_service(older[older[DST].isin(counts[counts >= self.min_requests].index)])
        if ctx.latency_baseline:  # the live loop's longer memory; the lower of the two is the usual latency
            live = pd.Series(ctx.latency_baseline, dtype=float)
            baseline = pd.concat([live, baseline], axis=1).min(axis=1)
        n = recent.groupby(DST, sort=False).size()
        cur = p95_by_service(recent)
        p50 = recent.groupby(DST, sort=False)[s.DURATION_MS].median()
        frame = pd.DataFrame({"n": n, "p95": cur, "p50": p50.reindex(cur.index), "base": baseline.reindex(cur.index),
                              "p50_before": older.groupby(DST, sort=False)[s.DURATION_MS].median().reindex(cur.index)})
        ratio = self.ratio * host_factor(frame["p95"] / frame["base"], self.min_services_for_host_factor)
        # a regression moves the whole distribution (the median passes the usual p95); a busy host inflates the
        # tail of otherwise normal requests, which leaves the median below it
        moved = frame["p50"] > frame["base"]
        rel = (frame["p95"] > frame["base"] * ratio) & (frame["p95"] > frame["base"] + self.min_increase_ms) & moved
        # the absolute bound speaks for a service with no usual latency; one that has one must also have moved as
        # a whole: its median past the usual p95, or by `min_increase_ms` since the window's older part (a loaded
        # host whose usual p95 is already 0.5 s pushes the tail past 1 s, not the median; a slower build shifts
        # every request, the median too, even where the loaded tail is far above it)
        shifted = (frame["p50"] - frame["p50_before"]) >= self.min_increase_ms
        over = (frame["p95"] > self.absolute_ms) & (frame["base"].isna() | moved | shifted.fillna(True))
        hot = frame[(frame["n"] >= self.min_requests) & (rel.fillna(False) | over.fillna(False))]
        out = []
        for dst, row in hot.iterrows():  # one iteration per anomalous service
            sub = recent[recent[DST] == dst]
            out.append(self._finding(ctx, str(dst), sub, rows, row))
        return out

    def _from_rates(self, ctx: RuntimeContext) -> list[Finding]:
        """From histogram bucket rates (Prometheus): p95 per service against the live baseline only."""
        per_service = rate_p95(ctx, [DST])
        if per_service.empty:
            return []
        base = pd.Series(ctx.latency_baseline or {}, dtype=float).reindex(per_service[DST]).to_numpy()
        p95, n = per_service["value"].to_numpy(), per_service["n"].to_numpy()
        with np.errstate(invalid="ignore"):
            factor = host_factor(pd.Series(p95 / base), self.min_services_for_host_factor)
            rel = (p95 > base * self.ratio * factor) & (p95 > base + self.min_increase_ms)
        hot = per_service[(n >= self.min_requests) & (np.nan_to_num(rel, nan=0).astype(bool) | (p95 > self.absolute_ms))]
        if hot.empty:
            return []
        edges = rate_p95(ctx, [DST, SRC, SRC_NS])
        out = []
        for r in hot.itertuples(index=False):  # one per anomalous service
            b = (ctx.latency_baseline or {}).get(r.dst)
            reason = f"{r.value / b:.1f}x its usual {b:.0f} ms" if b else f"above the {self.absolute_ms:.0f} ms bound"
            mine = edges[edges[DST] == r.dst].sort_values("value", ascending=False)
            f = make("MS3014", resource=ResourceRef("Service", *fqdn_parts(r.dst)),
                     source=", ".join(f"{e.src_ns}/{e.src}" for e in mine.head(3).itertuples()),
                     destination=r.dst, p95_ms=float(r.value), reason=reason)
            f.evidence = {"edge_key": r.dst, "rule": self.name, "statistical": True, "p95_ms": round(float(r.value), 1),
                          "baseline_p95_ms": round(b, 1) if b else None, "sample_trace_ids": [],
                          "total": int(round(r.n)), "source": "histogram buckets", "depends_on": ctx.reachable(r.dst),
                          "edges": [{"source": f"{e.src_ns}/{e.src}", "source_workload": e.src,
                                     "source_namespace": e.src_ns, "destination": r.dst, "count": int(round(e.n)),
                                     "p95_ms": round(float(e.value), 1), "rps": round(e.n / ctx.window_s, 4)}
                                    for e in mine.itertuples()]}
            f.impact = {"rps": round(r.n / ctx.window_s, 4), "share": 1.0, "requests": int(round(r.n))}
            out.append(f)
        return out

    def _finding(self, ctx: RuntimeContext, dst: str, sub: pd.DataFrame, rows: pd.DataFrame,
                 row: pd.Series) -> Finding:
        base = None if pd.isna(row["base"]) else float(row["base"])
        reason = (f"{row['p95'] / base:.1f}x its usual {base:.0f} ms" if base
                  else f"above the {self.absolute_ms:.0f} ms bound")
        per_edge = sub.groupby([SRC, SRC_NS], sort=False)[s.DURATION_MS].agg(["size", lambda v: v.quantile(Q)])
        per_edge.columns = ["n", "p95"]
        edges = [{"source": f"{ns}/{src}", "source_workload": src, "source_namespace": ns, "destination": dst,
                  "count": int(r.n), "p95_ms": round(float(r.p95), 1), "rps": round(r.n / ctx.window_s, 4)}
                 for (src, ns), r in per_edge.sort_values("p95", ascending=False).iterrows()]
        slow_cut = float(row["base"]) * self.ratio if base else self.absolute_ms
        slow = sub[sub[s.DURATION_MS] > slow_cut]
        traces = [t for t in slow.sort_values(s.DURATION_MS, ascending=False)[s.TRACE_ID].unique()
                  if t and t != "unknown"][:5]
        total_to_service = int((rows[DST] == dst).sum())
        f = make("MS3014", resource=ResourceRef("Service", *fqdn_parts(dst)), source=", ".join(e["source"] for e in edges[:3]),
                 destination=dst, p95_ms=float(row["p95"]), reason=reason)
        f.evidence = {
            "edge_key": dst, "rule": self.name, "statistical": True,
            "edges": edges, "count": int(len(slow)), "total": int(len(sub)),
            "p95_ms": round(float(row["p95"]), 1), "baseline_p95_ms": round(base, 1) if base else None,
            "sample_trace_ids": traces, "requests_in_window": total_to_service,
            # what it waits on: a failing or slow service anywhere below explains this latency (incidents)
            "depends_on": ctx.reachable(dst),
            "time_range": {"start": iso_time(float(sub["t"].min())), "end": iso_time(float(sub["t"].max()))},
        }
        f.impact = {"rps": round(len(slow) / ctx.window_s, 4), "share": round(len(slow) / max(len(sub), 1), 4),
                    "requests": int(len(slow)), "service_rps": round(len(sub) / ctx.window_s, 4)}
        return f


RULES = [EdgeLatencyAnomaly()]
