"""ASM's `istio.alibabacloud.com ServiceLevelObjective`, both ways.

Import: each `spec.slos[]` entry becomes one meshscope SLO with the same burn-rate
math as the Sloth import (objective, period, multiwindow alerts for the period),
keeping ASM's labels, alert name, labels and annotations (`AsmSLO`) so exported
rules page the same receivers. Availability plugins without a filter become native
availability SLOs (evaluated from meshscope's own tables); with a PromQL `filter`
option they stay PromQL SLIs that carry the filter and ASM's failure definition
(5xx and 429), evaluated when a Prometheus is configured. Latency plugins become
native latency SLOs.

Export: meshscope's own availability and latency SLOs as ASM ServiceLevelObjective
objects (one per service, as ASM names them: asm-slo-{namespace}-{service}), and as
the PrometheusRule ASM generates from them. ASM builds its rules the Sloth way, so
the rule names and labels follow Sloth's (`slo:sli_error:ratio_rate5m`, sloth_id,
sloth_service, sloth_slo, sloth_severity); the ratios are meshscope's SLI queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnose.slo.promql import at_window, prom_duration, sli_queries
from diagnose.slo.spec import SLO, SpecError, service_fqdn
from diagnose.slo.windows import DAY
from mesh.config import ConfigObject
from mesh.config import asm as model
from mesh.config.kinds import type_name

API_VERSION = "istio.alibabacloud.com/v1"
ASM_FAILED_CODES = "5..|429"  # ASM's availability SLI counts 5xx and 429 as failed


@dataclass
class AsmSLO(SLO):
    """An SLO imported from ASM, with what ASM's generated rules carry besides the objective."""

    labels: dict[str, str] = field(default_factory=dict)  # spec.labels + slos[].labels
    alert_name: str = ""
    alert_labels: dict[str, str] = field(default_factory=dict)
    alert_annotations: dict[str, str] = field(default_factory=dict)
    page_labels: dict[str, str] = field(default_factory=dict)
    ticket_labels: dict[str, str] = field(default_factory=dict)
    filter: str = ""


def is_asm_slo(obj: ConfigObject) -> bool:
    return type_name(obj.kind, obj.api_version) == model.SLO


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def from_object(obj: ConfigObject) -> tuple[list[SLO], list[SpecError]]:
    """The SLOs of one ASM ServiceLevelObjective; a bad `slos[]` entry is a SpecError naming its field,
    the object's other entries still import."""
    spec = obj.spec
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        return [], [SpecError("spec/service", "an ASM ServiceLevelObjective needs spec.service")]
    period = spec.get("period", "30d")
    if period not in model.SLO_PERIODS:
        return [], [SpecError("spec/period", f"period is {period!r}; ASM allows {', '.join(model.SLO_PERIODS)}")]
    try:
        fqdn = service_fqdn(service, obj.namespace)
    except SpecError as exc:
        return [], [exc]
    base_labels = _strings(spec.get("labels"))
    source = str(obj.source) if obj.source else None
    out: list[SLO] = []
    errors: list[SpecError] = []
    entries = spec.get("slos")
    if not isinstance(entries, list) or not entries:
        return [], [SpecError("spec/slos", "spec.slos must list at least one SLO")]
    for i, s in enumerate(entries):
        where = f"spec/slos[{i}]"
        try:
            out.append(_one(s, where, obj, service, fqdn, float(period[:-1]) * DAY, base_labels, source))
        except SpecError as exc:
            errors.append(exc)
    return out, errors


def _one(s: Any, where: str, obj: ConfigObject, service: str, fqdn: str, period_s: float,
         base_labels: dict[str, str], source: str | None) -> AsmSLO:
    if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
        raise SpecError(f"{where}/name", "each ASM SLO needs a name")
    objective = model.objective(s.get("objective"))
    if objective is None or objective >= 100:
        raise SpecError(f"{where}/objective", f"objective {s.get('objective')!r} must be a percentage below 100 "
                        "(100% leaves no error budget to burn)")
    plugin = (s.get("sli") or {}).get("plugin") if isinstance(s.get("sli"), dict) else None
    if not isinstance(plugin, dict) or plugin.get("id") not in model.SLI_PLUGINS:
        raise SpecError(f"{where}/sli/plugin/id", f"sli.plugin.id must be one of {', '.join(model.SLI_PLUGINS)}")
    options = plugin.get("options") if isinstance(plugin.get("options"), dict) else {}
    alerting = s.get("alerting") if isinstance(s.get("alerting"), dict) else {}
    page = alerting.get("pageAlert") if isinstance(alerting.get("pageAlert"), dict) else {}
    ticket = alerting.get("ticketAlert") if isinstance(alerting.get("ticketAlert"), dict) else {}
    slo = AsmSLO(name=f"{service}-{s['name']}", service=fqdn, namespace=obj.namespace, objective=objective,
                 period_s=period_s, reporter="destination", source=source, origin="asm",
                 description=str((s.get("labels") or {}).get("description") or ""),
                 page=bool(alerting) and not page.get("disable", False),
                 ticket=bool(alerting) and not ticket.get("disable", False),
                 labels={**base_labels, **_strings(s.get("labels"))}, alert_name=str(alerting.get("name") or ""),
                 alert_labels=_strings(alerting.get("labels")), alert_annotations=_strings(alerting.get("annotations")),
                 page_labels=_strings(page.get("labels")), ticket_labels=_strings(ticket.get("labels")),
                 filter=str(options.get("filter") or ""))
    if plugin["id"] == "latency":
        threshold = model.latency_threshold_ms(options)
        if threshold is None:
            raise SpecError(f"{where}/sli/plugin/options", "a latency SLI needs a threshold (e.g. threshold: 200ms)")
        slo.sli, slo.threshold_ms = "latency", threshold
    elif slo.filter:
        sel = f'reporter="destination",destination_service="{fqdn}",{slo.filter}'
        slo.sli = "promql"
        slo.error_query = f'sum(rate(istio_requests_total{{{sel},response_code=~"{ASM_FAILED_CODES}"}}[{{{{.window}}}}]))'
        slo.total_query = f"sum(rate(istio_requests_total{{{sel}}}[{{{{.window}}}}]))"
    return slo


# -- export ---------------------------------------------------------------------------------
def _short(slo: SLO) -> tuple[str, str]:
    """(namespace, short service name) of an SLO's service FQDN."""
    parts = slo.service.split(".")
    ns = parts[1] if len(parts) > 2 and parts[2] == "svc" else (slo.namespace or "default")
    return ns, parts[0]


def exportable(slo: SLO) -> str | None:
    """Why an SLO cannot be an ASM SLO, or None when it can."""
    if slo.sli not in model.SLI_PLUGINS:
        return f"SLO {slo.key}: ASM SLIs are availability or latency, not {slo.sli}"
    period = f"{round(slo.period_s / DAY)}d"
    if abs(slo.period_s - round(slo.period_s / DAY) * DAY) > 1 or period not in model.SLO_PERIODS:
        return f"SLO {slo.key}: period {slo.period} is not one ASM allows ({', '.join(model.SLO_PERIODS)})"
    return None


def to_asm_objects(slos: list[SLO]) -> tuple[list[dict[str, Any]], list[str]]:
    """ASM ServiceLevelObjective objects for meshscope SLOs (one per service and period), plus why any was skipped."""
    grouped: dict[tuple[str, str, str], list[SLO]] = {}
    skipped: list[str] = []
    for slo in slos:
        why = exportable(slo)
        if why:
            skipped.append(why)
            continue
        ns, svc = _short(slo)
        grouped.setdefault((ns, svc, f"{round(slo.period_s / DAY)}d"), []).append(slo)
    out = []
    for (ns, svc, period), group in grouped.items():
        suffix = "" if period == "30d" else f"-{period}"
        entries = []
        for slo in group:
            plugin: dict[str, Any] = {"id": slo.sli}
            if slo.sli == "latency":
                plugin["options"] = {"threshold": f"{slo.threshold_ms:g}ms"}
            if isinstance(slo, AsmSLO) and slo.filter:
                plugin["options"] = {**plugin.get("options", {}), "filter": slo.filter}
            entry: dict[str, Any] = {"name": slo.name, "objective": f"{slo.objective:g}", "sli": {"plugin": plugin}}
            labels = dict(slo.labels) if isinstance(slo, AsmSLO) else {}
            if slo.description:
                labels.setdefault("description", slo.description)
            if labels:
                entry["labels"] = labels
            if slo.page or slo.ticket:
                alerting: dict[str, Any] = {"name": (slo.alert_name if isinstance(slo, AsmSLO) and slo.alert_name
                                                     else f"{slo.name}-burn-rate")}
                if isinstance(slo, AsmSLO):
                    if slo.alert_labels:
                        alerting["labels"] = dict(slo.alert_labels)
                    if slo.alert_annotations:
                        alerting["annotations"] = dict(slo.alert_annotations)
                for key, on, extra in (("pageAlert", slo.page, getattr(slo, "page_labels", {})),
                                       ("ticketAlert", slo.ticket, getattr(slo, "ticket_labels", {}))):
                    alerting[key] = {"labels": dict(extra)} if on else {"disable": True}
                entry["alerting"] = alerting
            entries.append(entry)
        out.append({"apiVersion": API_VERSION, "kind": "ServiceLevelObjective",
                    "metadata": {"name": f"asm-slo-{ns}-{svc}{suffix}", "namespace": ns},
                    "spec": {"service": svc, "period": period, "slos": entries}})
    return out, skipped


def to_prometheus_rule(slos: list[SLO], name: str = "asm-slo-rules", namespace: str = "monitoring") -> dict[str, Any]:
    """The PrometheusRule ASM would generate for these SLOs: Sloth-style recording rules per window,
    objective/budget metadata, and page and ticket multiwindow burn-rate alerts with ASM's labels."""
    groups = []
    for slo in slos:
        err_t, total_t = sli_queries(slo)
        ns, svc = _short(slo)
        sid = f"{svc}-{slo.name}"
        extra = dict(slo.labels) if isinstance(slo, AsmSLO) else {}
        ident = {"sloth_id": sid, "sloth_service": svc, "sloth_slo": slo.name}
        windows = sorted({w for a in slo.windows for w in (a.long_s, a.short_s)} | {slo.period_s})
        rules: list[dict[str, Any]] = []
        for w in windows:
            expr = at_window(err_t, w) if total_t is None else f"({at_window(err_t, w)})\n/\n({at_window(total_t, w)})"
            rules.append({"record": f"slo:sli_error:ratio_rate{prom_duration(w)}", "expr": expr,
                          "labels": {**extra, **ident, "sloth_window": prom_duration(w)}})
        sel = f'{{sloth_id="{sid}", sloth_service="{svc}", sloth_slo="{slo.name}"}}'
        rules += [{"record": "slo:objective:ratio", "expr": f"vector({slo.objective / 100!r})", "labels": {**extra, **ident}},
                  {"record": "slo:error_budget:ratio", "expr": f"vector(1-{slo.objective / 100!r})",
                   "labels": {**extra, **ident}},
                  {"record": "slo:time_period:days", "expr": f"vector({slo.period_s / DAY:g})", "labels": {**extra, **ident}}]
        alert_name = (slo.alert_name if isinstance(slo, AsmSLO) and slo.alert_name else f"{slo.name}-burn-rate")
        for severity, enabled, sev_labels in (("page", slo.page, getattr(slo, "page_labels", {})),
                                              ("ticket", slo.ticket, getattr(slo, "ticket_labels", {}))):
            pairs = [a for a in slo.windows if (a.severity in ("page", "critical")) == (severity == "page")]
            if not enabled or not pairs:
                continue
            expr = "\nor\n".join(
                f"(max(slo:sli_error:ratio_rate{prom_duration(a.long_s)}{sel} > ({a.factor:g} * {slo.budget!r})) without (sloth_window)"
                f"\nand\nmax(slo:sli_error:ratio_rate{prom_duration(a.short_s)}{sel} > ({a.factor:g} * {slo.budget!r})) without (sloth_window))"
                for a in pairs)
            labels = {**(slo.alert_labels if isinstance(slo, AsmSLO) else {}), **sev_labels, "sloth_severity": severity}
            annotations = {"summary": f"{{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn "
                                      "rate is over expected.",
                           "title": f"(page) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn "
                                    "rate is too fast." if severity == "page" else
                           f"(ticket) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate "
                           "is too fast.",
                           **(slo.alert_annotations if isinstance(slo, AsmSLO) else {})}
            rules.append({"alert": alert_name, "expr": expr, "labels": labels, "annotations": annotations})
        groups.append({"name": f"asm-slo-{ns}-{sid}", "rules": rules})
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"groups": groups}}
