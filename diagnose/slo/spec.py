"""Service level objectives as meshscope reads them: `meshscope.io/v1alpha1 ServiceLevelObjective`.

```yaml
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: reviews-latency, namespace: bookinfo}
spec:
  service: reviews            # short name (in metadata.namespace) or FQDN
  sli: {type: latency, thresholdMs: 250}   # or {type: availability}
  objective: 99.5             # percent of good events
  period: 30d                 # default 30d; a short period (e.g. 1h) scales the alert windows
  reporter: source            # source (callers' view, default) or destination
  alerting: {page: true, ticket: true}
```

Objects come through the config model (`mesh.config.load_text/load_paths`, so
`meshscope apply -f` can carry them) and every bad field becomes a problem that
names the file, line and field; the other SLOs in the file still load.
Sloth and OpenSLO documents are imported by `diagnose.slo.importers`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnose.slo.windows import DAY, AlertWindow, format_duration, google_windows, parse_duration
from mesh.config import ConfigObject, LoadProblem

API_VERSION = "meshscope.io/v1alpha1"
KIND = "ServiceLevelObjective"
SLI_TYPES = ("availability", "latency")
REPORTERS = ("source", "destination")
ENVOY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                    600000, 1800000, 3600000)


@dataclass
class SLO:
    """One objective on one service. `sli` is availability, latency, or promql (imported specs)."""

    name: str
    service: str  # FQDN, e.g. reviews.bookinfo.svc.cluster.local ("" for promql SLIs)
    objective: float  # percent, 0 < objective < 100
    sli: str = "availability"
    namespace: str | None = None
    threshold_ms: float | None = None
    period_s: float = 30 * DAY
    reporter: str = "source"
    description: str = ""
    page: bool = True
    ticket: bool = True
    source: str | None = None  # file:line
    origin: str = "meshscope"  # meshscope | sloth | openslo
    error_query: str | None = None  # PromQL with {{.window}}, for promql SLIs
    total_query: str | None = None
    windows: list[AlertWindow] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.windows:
            self.windows = google_windows(self.period_s)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def budget(self) -> float:
        return (100.0 - self.objective) / 100.0

    @property
    def period(self) -> str:
        return format_duration(self.period_s)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "service": self.service, "sli": self.sli,
                "threshold_ms": self.threshold_ms, "objective": self.objective, "period": self.period,
                "reporter": self.reporter, "description": self.description, "source": self.source,
                "origin": self.origin}


class SpecError(ValueError):
    """A bad field in an SLO document: `field` is its YAML path."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path


def service_fqdn(service: str, namespace: str | None, domain: str = "cluster.local") -> str:
    if "." in service:
        return service
    if not namespace:
        raise SpecError("spec/service", f"service {service!r} is a short name but metadata.namespace is not set")
    return f"{service}.{namespace}.svc.{domain}"


def parse_objective(value: Any, field_path: str) -> float:
    """Percent from 99.9, "99.9", "99.9%" or a ratio 0.999."""
    try:
        v = float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        raise SpecError(field_path, f"objective must be a number like 99.9, got {value!r}") from None
    if 0 < v < 1:
        v *= 100.0
    if not 0 < v < 100:
        raise SpecError(field_path, f"objective must be between 0 and 100 (exclusive), got {value!r}")
    return v


def _period(value: Any, field_path: str) -> float:
    if not isinstance(value, str):  # `period: 30` is ambiguous (seconds? days?): refuse it
        raise SpecError(field_path, f"period must be a duration like 30d or 28d, got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SpecError(field_path, str(exc)) from None


def slo_from_spec(name: str, namespace: str | None, spec: Any, source: str | None = None) -> SLO:
    """An SLO from the `spec` of a meshscope ServiceLevelObjective (raises SpecError naming the field)."""
    if not isinstance(spec, dict):
        raise SpecError("spec", "spec must be a mapping")
    if not isinstance(spec.get("service"), str) or not spec["service"]:
        raise SpecError("spec/service", "spec.service is required (a service name or FQDN)")
    sli = spec.get("sli", {"type": "availability"})
    if isinstance(sli, str):
        sli = {"type": sli}
    if not isinstance(sli, dict) or sli.get("type", "availability") not in SLI_TYPES:
        raise SpecError("spec/sli/type", f"sli.type must be one of {', '.join(SLI_TYPES)}")
    kind = sli.get("type", "availability")
    threshold = None
    if kind == "latency":
        raw = sli.get("thresholdMs", sli.get("threshold_ms"))
        try:
            threshold = float(raw)
        except (TypeError, ValueError):
            raise SpecError("spec/sli/thresholdMs", f"a latency SLI needs thresholdMs (a number of ms), got {raw!r}") from None
        if not threshold > 0 or threshold == float("inf"):
            raise SpecError("spec/sli/thresholdMs", "thresholdMs must be a positive number of milliseconds")
    if "objective" not in spec:
        raise SpecError("spec/objective", "spec.objective is required (percent, e.g. 99.9)")
    reporter = spec.get("reporter", "source")
    if reporter not in REPORTERS:
        raise SpecError("spec/reporter", f"reporter must be one of {', '.join(REPORTERS)}")
    alerting = spec.get("alerting") or {}
    if not isinstance(alerting, dict):
        raise SpecError("spec/alerting", "alerting must be a mapping like {page: true, ticket: true}")
    return SLO(name=name, namespace=namespace, service=service_fqdn(spec["service"], namespace),
               objective=parse_objective(spec["objective"], "spec/objective"), sli=kind, threshold_ms=threshold,
               period_s=_period(spec.get("period", "30d"), "spec/period"), reporter=reporter,
               description=str(spec.get("description") or ""), page=bool(alerting.get("page", True)),
               ticket=bool(alerting.get("ticket", True)), source=source)


def is_slo_object(obj: ConfigObject) -> bool:
    return obj.kind == KIND and obj.api_version == API_VERSION


def slo_from_object(obj: ConfigObject) -> SLO:
    """The SLO a loaded ServiceLevelObjective object declares (SpecError naming the field otherwise)."""
    return slo_from_spec(obj.name, obj.namespace, obj.spec, str(obj.source) if obj.source else None)


def problem_for(obj: ConfigObject, err: SpecError) -> LoadProblem:
    file = obj.source.file if obj.source else "<input>"
    return LoadProblem(file=file, line=obj.line_of(err.field), message=f"{err.field}: {err}", kind=obj.kind,
                       name=obj.name, field=err.field)
