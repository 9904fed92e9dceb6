"""SLOs in PromQL: the SLI queries of an SLO, its windows' error ratios read from Prometheus, and rule files.

Against a real cluster, history lives in Prometheus (or Thanos/Mimir), so the
engine asks it for each window's error ratio instead of keeping its own counts.
The same queries also become Prometheus recording and alerting rules
(`prometheus_rules`), Sloth-style, for teams that want their Alertmanager to
page directly; `promtool test rules` checks them against the engine in the tests.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from diagnose.slo.spec import SLO
from diagnose.slo.windows import format_duration

ScalarQuery = Callable[[str, float], "float | None"]  # (promql, at) -> value, None when the result is empty
WINDOW = "{{.window}}"


def prom_duration(seconds: float) -> str:
    """A Prometheus duration: whole units where exact (5m, 1h30m), milliseconds below a second."""
    if seconds >= 1 and abs(seconds - round(seconds)) < 1e-9:
        return format_duration(seconds)
    return f"{max(1, round(seconds * 1000))}ms"


def _le_matcher(threshold_ms: float) -> str:
    """Match the bucket bound whether Prometheus stores it as `250` or `250.0` (Prometheus 3 normalises)."""
    if float(threshold_ms).is_integer():
        n = int(threshold_ms)
        return f'le=~"{n}(\\\\.0)?"'
    return f'le="{threshold_ms:g}"'


def sli_queries(slo: SLO) -> tuple[str, str | None]:
    """(error query, total query) with `{{.window}}`; for a ratio-only SLI the total is None."""
    if slo.sli == "promql":
        return str(slo.error_query), slo.total_query
    sel = f'reporter="{slo.reporter}",destination_service="{slo.service}"'
    if slo.sli == "availability":
        return (f'sum(rate(istio_requests_total{{{sel},response_code=~"5..|0"}}[{WINDOW}]))',
                f"sum(rate(istio_requests_total{{{sel}}}[{WINDOW}]))")
    total = f"sum(rate(istio_request_duration_milliseconds_count{{{sel}}}[{WINDOW}]))"
    good = f"sum(rate(istio_request_duration_milliseconds_bucket{{{sel},{_le_matcher(slo.threshold_ms)}}}[{WINDOW}]))"
    return f"({total} - {good})", total


def at_window(template: str, window_s: float) -> str:
    return template.replace(WINDOW, prom_duration(window_s))


def ratio_from_prometheus(query: ScalarQuery, slo: SLO, now: float) -> Callable[[float], tuple[float, float]]:
    """A ratio function for `evaluate`: window -> (error ratio, total rate) from Prometheus at `now`."""
    err_t, total_t = sli_queries(slo)

    def ratio(window_s: float) -> tuple[float, float]:
        err = query(at_window(err_t, window_s), now)
        if total_t is None:  # a raw ratio SLI
            return (_finite(err), 1.0 if err is not None else 0.0)
        total = query(at_window(total_t, window_s), now)
        if not total or not math.isfinite(total):
            return 0.0, 0.0
        return min(max(_finite(err) / total, 0.0), 1.0), total * window_s
    return ratio


def _finite(v: float | None) -> float:
    return v if v is not None and math.isfinite(v) else 0.0


def scalar_query(client: Any) -> ScalarQuery:
    """Adapt `collector.sources.prom_api.PrometheusClient` to (promql, at) -> summed value or None."""
    def query(promql: str, at: float) -> float | None:
        frame = client.query_vector(promql, at)
        return float(frame["value"].sum()) if len(frame) else None
    return query


def _rule_name(slo: SLO) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", slo.key)


def prometheus_rules(slos: list[SLO]) -> dict[str, Any]:
    """Recording rules per window and one page and one ticket alert per SLO (a Prometheus rule file)."""
    groups = []
    for slo in slos:
        err_t, total_t = sli_queries(slo)
        labels = {"slo": slo.key, "service": slo.service}
        windows = sorted({w for a in slo.windows for w in (a.long_s, a.short_s)})
        rules: list[dict[str, Any]] = []
        for w in windows:
            expr = at_window(err_t, w) if total_t is None else f"({at_window(err_t, w)}) / ({at_window(total_t, w)})"
            rules.append({"record": f"meshscope:slo_error_ratio:rate{prom_duration(w)}", "expr": expr,
                          "labels": dict(labels)})
        for severity, enabled in (("page", slo.page), ("ticket", slo.ticket)):
            pairs = [a for a in slo.windows if (a.severity in ("page", "critical")) == (severity == "page")]
            if not enabled or not pairs:
                continue
            sel = f'{{slo="{slo.key}"}}'
            expr = " or ".join(
                f"(meshscope:slo_error_ratio:rate{prom_duration(a.long_s)}{sel} > ({a.factor:g} * {slo.budget!r})"
                f" and meshscope:slo_error_ratio:rate{prom_duration(a.short_s)}{sel} > ({a.factor:g} * {slo.budget!r}))"
                for a in pairs)
            rules.append({"alert": "MeshscopeSLOBurnRate", "expr": expr,
                          "labels": {**labels, "severity": severity},
                          "annotations": {"summary": f"SLO {slo.key} is burning its error budget ({severity})"}})
        groups.append({"name": f"meshscope-slo-{_rule_name(slo)}", "rules": rules})
    return {"groups": groups}
