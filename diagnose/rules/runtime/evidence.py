"""Turning the summary rows a rule selected into evidence and impact, the same way for every rule.

A runtime finding is about one destination service: every caller hurt the same
way is one edge in its evidence, so a broken DestinationRule is one finding, not
one per caller. Impact is the hurt request rate and its share of all the
traffic that service received from the same side in the window.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from diagnose.findings import ResourceRef
from diagnose.rules.runtime.traffic import (
    CODE, COUNT, DETAILS, DST, FIRST, FLAGS, LAST, SIDE, SRC, SRC_NS, TFR, TRACES, RuntimeContext, fqdn_parts,
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
    traces: list[str] = field(default_factory=list)
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
            "time_range": {"start": _iso(self.first), "end": _iso(self.last)},
        }
        if self.details:
            ev["response_code_details"] = self.details
        if self.transport_failures:
            ev["upstream_transport_failure_reasons"] = self.transport_failures
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


def _iso(t: float | None) -> str | None:
    if t is None or pd.isna(t):
        return None
    return datetime.fromtimestamp(float(t), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _counts(rows: pd.DataFrame, col: str, skip: tuple[str, ...] = ("", "-")) -> dict[str, float]:
    sums = rows.groupby(col, sort=False)[COUNT].sum().sort_values(ascending=False)
    return {str(k): _int(v) for k, v in sums.items() if str(k) not in skip}


def hurt_by_service(ctx: RuntimeContext, rows: pd.DataFrame, min_count: float = 1.0) -> list[Hurt]:
    """One `Hurt` per destination service in `rows` (a subset of `ctx.calls`), biggest first."""
    if rows.empty:
        return []
    per_service = rows.groupby([SIDE, DST], sort=False)[COUNT].sum()
    per_service = per_service[per_service >= min_count].sort_values(ascending=False)
    totals = ctx.service_totals
    edge_totals = ctx.edge_totals
    out: list[Hurt] = []
    for (side, dst), count in per_service.items():  # one iteration per hurt service, not per request
        sub = rows[(rows[SIDE] == side) & (rows[DST] == dst)]
        edges = []
        per_edge = sub.groupby([SRC, SRC_NS], sort=False)[COUNT].sum().sort_values(ascending=False)
        for (src, src_ns), n in per_edge.head(MAX_EDGES).items():
            total = float(edge_totals.get((side, src, src_ns, dst), n))
            edges.append({"source": f"{src_ns}/{src}" if src_ns != "unknown" else src,
                          "source_workload": src, "source_namespace": src_ns, "destination": dst,
                          "count": _int(n), "total": _int(total), "rps": round(n / ctx.window_s, 4),
                          "share": round(n / total, 4) if total else 1.0})
        traces = list(dict.fromkeys(t for ts in sub[TRACES] for t in ts))[:MAX_TRACES]
        out.append(Hurt(
            destination=dst, side=side, count=float(count),
            service_total=float(totals.get((side, dst), count)), window_s=ctx.window_s,
            edges=edges, flags=_flag_counts(sub), codes=_counts(sub, CODE, ("",)),
            details=_counts(sub, DETAILS), transport_failures=_counts(sub, TFR), traces=traces,
            first=float(sub[FIRST].min()) if sub[FIRST].notna().any() else None,
            last=float(sub[LAST].max()) if sub[LAST].notna().any() else None,
        ))
    return out


def _flag_counts(rows: pd.DataFrame) -> dict[str, float]:
    c: Counter[str] = Counter()
    for flags, n in rows.groupby(FLAGS, sort=False)[COUNT].sum().items():  # per distinct flag set
        for f in str(flags).split(","):
            if f and f != "-":
                c[f] += n
    return {k: _int(v) for k, v in c.most_common()}
