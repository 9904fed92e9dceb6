"""Importing SLOs written for Sloth (`version: prometheus/v1`), OpenSLO (`openslo/v1 SLO`) and Pyrra.

Those specs carry PromQL. When the query reads Istio's request metric for one
service (`istio_requests_total{destination_service="..."}` with a 5xx error
matcher), the SLO becomes a native availability SLO that meshscope evaluates
from its own tables; otherwise it stays a `promql` SLI, evaluated only when a
Prometheus server is configured. Periods and objectives keep their meaning;
alert windows follow meshscope's defaults for the period (Pyrra specs keep
Pyrra's windows).
"""
from __future__ import annotations

import re
from typing import Any

from diagnose.slo.spec import SLO, SpecError, parse_objective
from diagnose.slo.windows import DAY, parse_duration, pyrra_windows

_DEST = re.compile(r'destination_service="([^"]+)"')
_DEST_NAME = re.compile(r'destination_service_name="([^"]+)"')
_DEST_NS = re.compile(r'destination_service_namespace="([^"]+)"')
_REPORTER = re.compile(r'reporter="(source|destination)"')


def istio_service(error_query: str, total_query: str | None) -> tuple[str, str] | None:
    """(service FQDN, reporter) when a query pair is Istio's availability SLI for one service."""
    text = error_query + " " + (total_query or "")
    if "istio_requests_total" not in text or not re.search(r'response_code=~"[^"]*5', error_query):
        return None
    m = _DEST.search(text)
    if m:
        host = m.group(1)
    else:
        name, ns = _DEST_NAME.search(text), _DEST_NS.search(text)
        if not (name and ns):
            return None
        host = f"{name.group(1)}.{ns.group(1)}.svc.cluster.local"
    rep = _REPORTER.search(text)
    return host, rep.group(1) if rep else "source"


def _with_queries(slo: SLO, error_query: str, total_query: str | None) -> SLO:
    slo.error_query, slo.total_query = error_query, total_query
    found = istio_service(error_query, total_query)
    if found:
        slo.service, slo.reporter = found
        slo.sli = "availability"
    else:
        slo.sli, slo.service = "promql", slo.service or ""
    return slo


def from_sloth(doc: dict[str, Any], source: str | None = None) -> tuple[list[SLO], list[tuple[str, str]]]:
    """SLOs of a Sloth `prometheus/v1` document, plus (field, message) problems for the ones that are invalid."""
    service = str(doc.get("service") or "")
    out: list[SLO] = []
    problems: list[tuple[str, str]] = []
    if not service:
        problems.append(("service", "a Sloth spec needs `service`"))
    for i, s in enumerate(doc.get("slos") or []):
        where = f"slos[{i}]"
        try:
            if not isinstance(s, dict) or not s.get("name"):
                raise SpecError(f"{where}/name", "each Sloth SLO needs a name")
            sli = s.get("sli") or {}
            if isinstance(sli.get("events"), dict):
                err, total = sli["events"].get("error_query"), sli["events"].get("total_query")
                if not err or not total:
                    raise SpecError(f"{where}/sli/events", "events SLIs need error_query and total_query")
            elif isinstance(sli.get("raw"), dict) and sli["raw"].get("error_ratio_query"):
                err, total = sli["raw"]["error_ratio_query"], None
            else:
                raise SpecError(f"{where}/sli", "only events and raw SLIs can be imported (plugins cannot)")
            alerting = s.get("alerting") or {}
            slo = SLO(name=f"{service}-{s['name']}", service="", namespace=None,
                      objective=parse_objective(s.get("objective"), f"{where}/objective"),
                      description=str(s.get("description") or ""), source=source, origin="sloth",
                      page=not (alerting.get("page_alert") or {}).get("disable", False),
                      ticket=not (alerting.get("ticket_alert") or {}).get("disable", False))
            out.append(_with_queries(slo, str(err), str(total) if total else None))
        except SpecError as exc:
            problems.append((exc.field, str(exc)))
    return out, problems


def _prom_query(metric: Any) -> str | None:
    """The PromQL of an OpenSLO metric source (`metricSource.spec.query`)."""
    if not isinstance(metric, dict):
        return None
    src = metric.get("metricSource") or {}
    spec = src.get("spec") or {}
    q = spec.get("query") or spec.get("promql")
    return str(q) if q else None


def from_openslo(name: str, spec: dict[str, Any], source: str | None = None) -> SLO:
    """An SLO from an OpenSLO v1 `SLO` spec with an inline ratioMetric indicator."""
    objectives = spec.get("objectives") or []
    if not objectives or not isinstance(objectives[0], dict) or "target" not in objectives[0]:
        raise SpecError("spec/objectives", "an OpenSLO SLO needs objectives[0].target (e.g. 0.999)")
    windows = spec.get("timeWindow") or [{"duration": "30d"}]
    try:
        period = parse_duration(windows[0].get("duration", "30d"))
    except (ValueError, AttributeError) as exc:
        raise SpecError("spec/timeWindow[0]/duration", str(exc)) from None
    indicator = spec.get("indicator") or {}
    ratio = (indicator.get("spec") or {}).get("ratioMetric") or {}
    total = _prom_query(ratio.get("total"))
    bad = _prom_query(ratio.get("bad"))
    good = _prom_query(ratio.get("good"))
    if not total or not (bad or good):
        raise SpecError("spec/indicator/spec/ratioMetric", "only inline ratioMetric indicators with Prometheus "
                        "queries (good or bad, and total) can be imported")
    err = bad if bad else f"({total}) - ({good})"
    slo = SLO(name=name, service=str(spec.get("service") or ""), namespace=None,
              objective=parse_objective(objectives[0]["target"], "spec/objectives[0]/target"), period_s=period,
              description=str(spec.get("description") or ""), source=source, origin="openslo")
    return _with_queries(slo, err, total)


def from_pyrra(name: str, namespace: str | None, spec: dict[str, Any], source: str | None = None) -> SLO:
    """An SLO from a Pyrra `pyrra.dev/v1alpha1 ServiceLevelObjective` with a ratio indicator (Pyrra's windows)."""
    ratio = (spec.get("indicator") or {}).get("ratio") or {}
    errors, total = (ratio.get("errors") or {}).get("metric"), (ratio.get("total") or {}).get("metric")
    if not errors or not total:
        raise SpecError("spec/indicator/ratio", "only ratio indicators (errors.metric and total.metric) can be imported")
    try:
        period = parse_duration(spec.get("window", "28d"))
    except ValueError as exc:
        raise SpecError("spec/window", str(exc)) from None
    slo = SLO(name=name, service="", namespace=namespace,
              objective=parse_objective(spec.get("target"), "spec/target"), period_s=period,
              description=str(spec.get("description") or ""), source=source, origin="pyrra",
              windows=pyrra_windows(period if period else 28 * DAY))
    return _with_queries(slo, f"sum(rate({errors}[{{{{.window}}}}]))", f"sum(rate({total}[{{{{.window}}}}]))")
