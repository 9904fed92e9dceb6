"""What every human-readable format shows, computed once: ranked findings, formatted numbers, SLO rows.

The HTML, PDF and Markdown writers only lay this out, so they cannot disagree
about order or rounding.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from diagnose.findings import SEVERITY_RANK
from diagnose.reports import elements as E
from diagnose.reports.snapshot import Snapshot

HEALTH_COLORS = {"healthy": "#3f9c35", "degraded": "#f0ab00", "failing": "#c9190b", "idle": "#8a8d90", "unknown": "#b8bbbe"}
SEVERITY_COLORS = {"error": "#c9190b", "warning": "#f0ab00", "info": "#2b9af3"}


def number(x: Any) -> float | None:
    """A finite float, or None for anything else (free-form snapshot fields may hold any JSON)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        return None
    try:
        v = float(x)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def when(ts: Any) -> str:
    t = number(ts)
    if t is None:
        return "-"
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def duration(seconds: float) -> str:
    s = int(round(seconds))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n and s % n == 0:
            return f"{s // n}{unit}"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def percent(x: Any, digits: int = 2) -> str:
    v = number(x)
    return "-" if v is None else f"{100.0 * v:.{digits}f}%"


def rate(x: Any) -> str:
    v = number(x)
    if v is None:
        return "-"
    return f"{v:.3g} rps" if v < 1000 else f"{v:,.0f} rps"


def impact_key(f: dict[str, Any]) -> tuple:
    """Most traffic hurt first; findings without impact (config only) after, by severity (as diagnose.correlate)."""
    imp = f.get("impact") or {}
    rps = number(imp.get("rps"))
    share = number(imp.get("share"))
    rps, share = (-1.0 if rps is None else rps), (0.0 if share is None else share)
    return (-rps, -share, -SEVERITY_RANK.get(f.get("severity", ""), 0), f.get("code", ""))


def incidents(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The open findings grouped by cause (diagnose.incidents): what a report leads with."""
    from diagnose.incidents import incidents_of_dicts
    return incidents_of_dicts([f for f in snapshot.findings if f.get("status", "open") != "resolved"])


def ranked_findings(snapshot: Snapshot) -> list[dict[str, Any]]:
    return sorted(snapshot.findings, key=impact_key)


def resource_label(ref: dict[str, Any] | None) -> str:
    if not ref:
        return "-"
    ns = ref.get("namespace")
    return f"{ref.get('kind', '')} {ns}/{ref.get('name', '')}" if ns else f"{ref.get('kind', '')} {ref.get('name', '')}"


def impact_text(f: dict[str, Any]) -> str:
    imp = f.get("impact") or {}
    parts = []
    if "rps" in imp:
        parts.append(rate(imp["rps"]))
    if "share" in imp:
        parts.append(f"{percent(imp['share'], 1)} of traffic")
    if "requests" in imp:
        parts.append(f"{imp['requests']} requests")
    return ", ".join(parts) or "-"


def scalar_evidence(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """Evidence entries that read well as `key: value` (lists of records go to their own tables)."""
    out = []
    for k, v in ev.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            continue
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        out.append((str(k), str(v)))
    return out


def table_evidence(ev: dict[str, Any], limit: int = 10) -> list[tuple[str, list[str], list[list[str]]]]:
    """Evidence lists of records (e.g. hurt edges) as (name, columns, rows)."""
    out = []
    for k, v in ev.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            cols = list(dict.fromkeys(c for row in v[:limit] for c in row))
            out.append((str(k), cols, [[str(row.get(c, "")) for c in cols] for row in v[:limit]]))
    return out


def objective_percent(obj: Any) -> str:
    x = number(obj)
    if x is None:
        return "-" if obj is None else str(obj)
    return f"{x * 100:g}%" if x <= 1 else f"{x:g}%"


def slo_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """SLOs sorted worst first (alerting, then least budget left)."""
    order = {"page": 0, "ticket": 1}
    rows = []
    for s in snapshot.slos:
        br = s.get("burn_rates") or {}
        rem = s.get("budget_remaining")
        rows.append({
            "name": str(s.get("name", "?")),
            "service": str(s.get("service", "-")),
            "objective": objective_percent(s.get("objective")),
            "budget_remaining": rem,
            "budget_text": percent(rem, 1),
            "burn_rates": {str(k): (f"{number(v):.2f}x" if number(v) is not None else "-") for k, v in br.items()},
            "alert": str(s.get("alert") or ("no data" if s.get("state") == "no_data" else "ok")),
            "series": s.get("budget_series") or [],
        })
    rows.sort(key=lambda r: (order.get(r["alert"], 2), number(r["budget_remaining"]) if number(r["budget_remaining"]) is not None else 1.0))
    return rows


def severity_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        sev = str(f.get("severity", "info"))
        out[sev] = out.get(sev, 0) + 1
    return out


_HEALTH_ORDER = {"failing": 0, "degraded": 1, "unknown": 2, "healthy": 3, "idle": 4}


def node_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Every node of the graph with its inbound request rate and 5xx share, worst health first.

    The topology picture keeps at most a few hundred nodes; this list keeps all of them, so a
    printed report still says how every service and workload was doing.
    """
    nodes, edges = E.split(snapshot.graph)
    rps: dict[str, float] = {}
    err: dict[str, float] = {}
    for e in edges:
        t, r = str(e["target"]), E.request_rate(e)
        rps[t] = rps.get(t, 0.0) + r
        err[t] = err.get(t, 0.0) + r * E.error_rate(e)
    rows = []
    for d in nodes:
        n = str(d["id"])
        r = rps.get(n, 0.0)
        rows.append({"health": E.health(d), "type": E.node_type(d) or "node", "namespace": str(d.get("namespace") or "-"),
                     "name": E.node_label(d), "rps": rate(r) if n in rps else "-",
                     "errors": percent(err[n] / r, 1) if r else "-"})
    rows.sort(key=lambda x: (_HEALTH_ORDER.get(x["health"], 2), x["namespace"], x["name"], x["type"]))
    return rows


BEFORE_AFTER_METRICS = (("rate", "rate"), ("error_pct", "error %"), ("p95_ms", "p95 ms"), ("mtls_pct", "mTLS %"))


def before_after(snapshot: Snapshot, limit: int = 30) -> dict[str, Any] | None:
    """The "before/after" section (issue #14): the window before vs the report's, edges that moved, and the config
    changes between. None when the report compares nothing. Rows are plain strings, escaped by each renderer."""
    ba = snapshot.before_after or {}
    if not ba or not isinstance(ba.get("summary"), dict):
        return None
    rows = []
    edges = [e for e in ba.get("edges") or [] if isinstance(e, dict)]
    order = {"appeared": 0, "vanished": 1, "changed": 2}
    for e in sorted(edges, key=lambda e: order.get(str(e.get("status")), 3))[:limit]:
        moved = []
        for key, name in BEFORE_AFTER_METRICS:
            if e.get(f"{key}_verdict"):
                moved.append(f"{name} {_short(e.get(f'{key}_before'))} -> {_short(e.get(f'{key}_after'))} "
                             f"({e[f'{key}_verdict']})")
        rows.append({"edge": str(e.get("label") or f"{e.get('source')} -> {e.get('target')}"),
                     "status": str(e.get("status") or ""), "moved": "; ".join(moved) or "-"})
    changes = [{"time": when(c.get("time")), "op": str(c.get("op") or ""),
                "object": f"{c.get('kind')} {c.get('namespace') or ''}/{c.get('name')}".replace(" /", " "),
                "what": _change_summary(c), "who": str(c.get("who") or "-")}
               for c in sorted((c for c in ba.get("config_changes") or [] if isinstance(c, dict) and not c.get("initial")),
                               key=lambda c: number(c.get("time")) or 0.0)]  # oldest first; the first listing is no change
    before, after = ba.get("before") or {}, ba.get("after") or {}
    return {"before_end": when(before.get("end")), "after_end": when(after.get("end")),
            "window": duration(float(after.get("window") or 0)), "summary": ba["summary"], "edges": rows,
            "more_edges": max(0, len(edges) - limit), "changes": changes[-limit:]}


def _short(x: Any) -> str:
    n = number(x)
    return "-" if n is None else f"{n:.3g}"


def _change_summary(c: dict[str, Any]) -> str:
    from mesh.journal import summary
    try:
        return summary(c)
    except (KeyError, TypeError, AttributeError):  # a hand-edited snapshot: say what is there, not crash
        return str(c.get("op") or "")
