"""The query layer: the one seam between the UI/API and the rest of meshscope.

Pages and API routes never compute telemetry or findings; they ask a *source*
for ready-made data and lay it out. The composition root builds a live source
over the collector store, topology, diagnoser and bundled mesh; `SnapshotSource`
(in `dashboard/snapshot_source.py`) serves a saved snapshot. Both satisfy
`DataSource`, so every page works the same against either.

Shapes (plain JSON-able dicts, so the API can return them as they are):

- graph element: Cytoscape JSON, ``{"data": {...}, "classes": "...", "position": {...}}``, built by
  `dashboard.elements.ui_elements(nodes, edges)`. Node records: id, type
  (workload|app|service|serviceentry|unknown|aggregate|box), name, namespace, app, version,
  health (healthy|degraded|failing|idle|na), health_reason, rps_in, rps_out, error_pct, badges,
  outsider, parent (compound box). Edge records: id, source, target, protocol, rps, error_pct,
  p50_ms, p95_ms, p99_ms, mtls_pct, mtls_state (full|partial|none|mismatch), mtls_intent, health,
  health_reason, codes {code or class: rps}, flags {flag: rps}, cb_tripped. `ui_elements` adds
  labels (label_rps, label_err, label_p95, lock), the ends' names (source_label, target_label,
  target_app) and each node's inbound codes/flags. `elements.from_topology` makes these records
  from `topology.to_cytoscape`.
- finding: `diagnose.findings.Finding.to_dict()` plus ``elements`` (graph ids it touches).
- series: ``{"t": [epoch s...], "rps": [...], "error_pct": [...], "p50": [...], "p95": [...], "p99": [...]}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

GRAPH_TYPES = ("workload", "app", "versionedApp", "service")
HEALTH_STATES = ("failing", "degraded", "healthy", "idle", "na")
FINDING_FILTERS = ("severity", "category", "namespace", "status", "code", "element")
TRACE_STATUSES = ("any", "ok", "error")


class QueryError(ValueError):
    """A request the source cannot answer as asked (unknown graph type, bad filter value).

    The message names the offending parameter; the API turns it into a 400.
    """

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


class Unavailable(RuntimeError):
    """The source does not offer this (e.g. scenarios without a bundled mesh)."""


@dataclass
class GraphResult:
    """Elements to draw plus what the UI shows about them."""

    elements: list[dict[str, Any]]
    graph_type: str
    namespaces: list[str]  # namespaces present in the (unfiltered) graph, for the filter
    window_s: float
    updated_at: float  # epoch seconds the data describes (snapshot time or now)
    notes: list[str] = field(default_factory=list)  # e.g. "graph type app not in snapshot"

    def to_dict(self) -> dict[str, Any]:
        return {
            "elements": self.elements,
            "graphType": self.graph_type,
            "namespaces": self.namespaces,
            "window_s": self.window_s,
            "updated_at": self.updated_at,
            "notes": self.notes,
        }


@dataclass
class TraceFilters:
    service: str | None = None
    status: str = "any"  # any | ok | error
    min_duration_ms: float = 0.0
    limit: int = 100
    end: float | None = None  # epoch s: traces that started before then (time travel); None is now
    window_s: float | None = None  # how far back from `end` (None: the source's default, 15 min live)


@runtime_checkable
class DataSource(Protocol):
    """What the dashboard reads. Raise `QueryError` for bad arguments, `Unavailable` for absent features."""

    def now(self) -> float:
        """Epoch seconds the data describes: time.time() when live, the capture time for a snapshot."""

    def graph(self, graph_type: str = "workload", namespaces: list[str] | None = None,
              window_s: float | None = None) -> GraphResult: ...

    def findings(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]: ...

    def finding(self, fingerprint: str) -> dict[str, Any] | None:
        """One finding plus ``yaml_excerpt`` ({file, lines: [[no, text]], highlight: [no]}) when it has config."""

    def slos(self) -> list[dict[str, Any]]: ...

    def traces(self, filters: TraceFilters) -> list[dict[str, Any]]:
        """Trace summaries: trace_id, root_service, root_name, start, duration_ms, status, spans, services."""

    def trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        """Spans of one trace (schema span columns, times as epoch seconds), parents before children."""

    def element_metrics(self, element_id: str, window_s: float | None = None, graph_type: str | None = None,
                        namespaces: list[str] | None = None) -> dict[str, Any] | None:
        """Golden-metric series of one graph node or edge.

        `graph_type` and `namespaces` name the graph request the element was drawn in (the
        same id can be in several graph types with different numbers); a source that is
        not told may look it up among the graphs it served.
        """

    def service_metrics(self, service: str, window_s: float | None = None,
                        end: float | None = None) -> dict[str, Any] | None:
        """``{"inbound": {version: series}, "outbound": {version: series}}`` for one service; `end` (epoch s, time
        travel) ends the series in the past, None is now."""

    def services(self) -> list[dict[str, Any]]:
        """Services with namespace, health, rps and error % (overview and service picker)."""

    def config_objects(self) -> list[dict[str, Any]]:
        """Istio/Kubernetes objects: kind, namespace, name, source, yaml, findings (codes)."""

    def scenarios(self) -> list[dict[str, Any]]:
        """Bundled-mesh fault scenarios (name, description, active); empty when none can be applied."""

    def apply_scenario(self, name: str | None) -> None:
        """Apply a scenario by name, or clear the active one with None."""

    def report(self, fmt: str) -> tuple[bytes, str]:
        """A report as (body, content type); `QueryError` for unsupported formats."""


def finding_matches(finding: dict[str, Any], filters: dict[str, str]) -> bool:
    """True when a finding passes every filter; comma lists mean any-of (severity=error,warning)."""
    for key, want in filters.items():
        if not want:
            continue
        wanted = {w.strip() for w in str(want).split(",") if w.strip()}
        if key == "namespace":
            refs = [finding.get("resource") or {}] + list(finding.get("related") or [])
            have = {r.get("namespace") for r in refs if r}
            edge = (finding.get("evidence") or {}).get("namespace")
            if edge:
                have.add(edge)
        elif key == "element":
            have = set(finding.get("elements") or [])
        else:
            have = {finding.get(key)}
        if not wanted & have:
            return False
    return True


def checked_finding_filters(filters: dict[str, str] | None) -> dict[str, str]:
    """The non-empty filters of a findings request; `QueryError` names an unknown key or severity."""
    from diagnose.findings import SEVERITIES

    kept = {k: v for k, v in (filters or {}).items() if v not in (None, "", [])}
    for key, value in kept.items():
        if key not in FINDING_FILTERS:
            raise QueryError(key, f"unknown filter (known: {', '.join(FINDING_FILTERS)})")
        if key == "severity":
            bad = [x for x in str(value).split(",") if x and x not in SEVERITIES]
            if bad:
                raise QueryError("severity", f"unknown severity {bad[0]!r} (known: {', '.join(SEVERITIES)})")
    return kept
