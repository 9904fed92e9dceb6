"""A `DataSource` over a saved snapshot: browse an incident after the fact, and test the UI fast.

Snapshot JSON (version 1), written by the live loop or `dashboard.sample`:

    {"meshscope_snapshot": 1, "generated_at": epoch_s, "window_s": 300, "mesh": "...",
     "graphs": {"workload": {"nodes": [...], "edges": [...]}, ...},   # keyed by graph type
     "series": {element_id: series}, "service_series": {fqdn: {"inbound": {version: series}, "outbound": ...}},
     "findings": [finding dict + "elements"], "slos": [...], "spans": [...], "config": [...], "scenarios": []}

Node and edge fields are the ones listed in `dashboard/query.py`; this module only
indexes them and adds the display strings (labels, classes) Cytoscape draws.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.coalesced import Coalesced
from dashboard.elements import from_topology, ui_elements
from dashboard.query import (GRAPH_TYPES, TRACE_STATUSES, GraphResult, QueryError, TraceFilters, Unavailable,
                             checked_finding_filters, finding_matches)
from dashboard.trace_summary import LIST_COLUMNS, pick_traces
from diagnose.findings import SEVERITY_RANK, fingerprint_of

SUPPORTED_VERSION = 1
REPORT_FORMATS = ("html", "md", "json", "pdf")
REPORT_SCHEMA = "meshscope.report/v1"


class SnapshotError(ValueError):
    """A snapshot file that cannot be read; the message names the file and what is wrong."""


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read and check a snapshot file, with errors that name the file, line and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError(f"{p}: cannot read snapshot: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA:
        data = from_report_snapshot(data, str(p))
    check_snapshot(data, str(p))
    return data


def from_report_snapshot(report: dict[str, Any], name: str = "snapshot") -> dict[str, Any]:
    """Read the report engineer's snapshot (`diagnose/reports/snapshot.py`) as a UI snapshot.

    It carries the graph (topology's Cytoscape export), findings, SLOs and the
    config inventory; it has no series, spans or YAML, so those pages show less.
    """
    graph = report.get("graph") or []
    if not isinstance(graph, list):
        raise SnapshotError(f"{name}: field graph must be a list of Cytoscape elements")
    nodes, edges = from_topology(graph)
    window = report.get("window") or {}
    config = [{"api_version": "", "kind": o.get("kind", "?"), "namespace": o.get("namespace"), "name": o.get("name", "?"),
               "source": o.get("source"), "yaml": "", "lines": {}} for o in report.get("inventory") or []]
    return {"meshscope_snapshot": SUPPORTED_VERSION, "generated_at": report.get("generated_at", 0),
            "window_s": float(window.get("end", 0)) - float(window.get("start", 0)) if window else 0.0,
            "mesh": report.get("title", name), "graphs": {"workload": {"nodes": nodes, "edges": edges}},
            "series": {}, "service_series": {}, "findings": list(report.get("findings") or []),
            "slos": list(report.get("slos") or []), "spans": [], "config": config, "scenarios": []}


def check_snapshot(data: Any, name: str = "snapshot") -> None:
    if not isinstance(data, dict):
        raise SnapshotError(f"{name}: expected a JSON object at the top level")
    version = data.get("meshscope_snapshot")
    if version != SUPPORTED_VERSION:
        raise SnapshotError(f"{name}: field meshscope_snapshot is {version!r}; this meshscope reads version {SUPPORTED_VERSION}")
    graphs = data.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise SnapshotError(f"{name}: field graphs must be an object with at least one graph type")
    for gtype, g in graphs.items():
        if gtype not in GRAPH_TYPES:
            raise SnapshotError(f"{name}: graphs.{gtype}: unknown graph type (known: {', '.join(GRAPH_TYPES)})")
        ids = set()
        for i, n in enumerate(g.get("nodes", [])):
            if not isinstance(n, dict) or "id" not in n:
                raise SnapshotError(f"{name}: graphs.{gtype}.nodes[{i}]: a node needs an id")
            ids.add(n["id"])
        for i, e in enumerate(g.get("edges", [])):
            for end in ("source", "target"):
                if e.get(end) not in ids:
                    raise SnapshotError(f"{name}: graphs.{gtype}.edges[{i}].{end}: unknown node {e.get(end)!r}")


class SnapshotSource:
    """Serves one snapshot; everything is indexed once at load so page callbacks stay cheap."""

    def __init__(self, snapshot: dict[str, Any], origin: str = "snapshot"):
        check_snapshot(snapshot, origin)
        self.snapshot = snapshot
        self.origin = origin
        self._graph_cache: dict[tuple, GraphResult] = {}
        self._building = Coalesced()  # a page and the server's preparation asking at once: one build
        self.graph_builds = 0  # graphs built (cache misses), for tests and self-checks
        self._findings = sorted(snapshot.get("findings", []), key=lambda f: (
            -SEVERITY_RANK.get(f.get("severity"), 0), -(f.get("impact") or {}).get("rps", 0)))
        for f in self._findings:
            f.setdefault("fingerprint", fingerprint_of(f.get("code", ""), f.get("resource"), f.get("evidence")))
        self._config = {(o["kind"], o.get("namespace"), o["name"]): o for o in snapshot.get("config", [])}
        spans = pd.DataFrame(snapshot.get("spans") or [], columns=[
            "trace_id", "span_id", "parent_span_id", "service_name", "name", "kind", "start_time", "end_time",
            "duration_ms", "status_code", "response_code", "response_flags", "attributes"])
        self._spans = spans
        self._trace_summaries = summarize_traces(spans)

    @classmethod
    def from_file(cls, path: str | Path) -> SnapshotSource:
        return cls(load_snapshot(path), origin=str(path))

    def now(self) -> float:
        return float(self.snapshot.get("generated_at", 0))

    # --- graph -------------------------------------------------------------------------
    def graph(self, graph_type: str = "workload", namespaces: list[str] | None = None,
              window_s: float | None = None) -> GraphResult:
        if graph_type not in GRAPH_TYPES:
            raise QueryError("graphType", f"unknown graph type {graph_type!r} (known: {', '.join(GRAPH_TYPES)})")
        key = (graph_type, tuple(sorted(namespaces or ())))
        result = self._graph_cache.get(key)
        if result is None:
            result = self._building.get(key, lambda: self._cached(key, graph_type, namespaces))
        if window_s and window_s != result.window_s and not any("window" in n for n in result.notes):
            result.notes.append(f"a snapshot holds one window ({result.window_s:.0f}s); showing that")
        return result

    def _cached(self, key: tuple, graph_type: str, namespaces: list[str] | None) -> GraphResult:
        """The graph of `key`, built once: a caller that waited for a build finds it kept."""
        result = self._graph_cache.get(key)
        if result is None:
            result = self._graph_cache[key] = self._build_graph(graph_type, namespaces)
            self.graph_builds += 1
        return result

    def warm(self) -> None:
        """Build the graphs the snapshot holds, off the request path (the server calls this as it starts), so
        no first page waits for one; a page asking meanwhile shares the build under way."""
        for graph_type in self.snapshot["graphs"]:
            self.graph(graph_type)

    def _build_graph(self, graph_type: str, namespaces: list[str] | None) -> GraphResult:
        graphs = self.snapshot["graphs"]
        notes = []
        g = graphs.get(graph_type)
        if g is None:
            fallback = next(iter(graphs))
            notes.append(f"graph type {graph_type} is not in this snapshot; showing {fallback}")
            g, graph_type = graphs[fallback], fallback
        nodes, edges = g.get("nodes", []), g.get("edges", [])
        all_ns = sorted({n.get("namespace") for n in nodes if n.get("namespace") and n.get("namespace") != "unknown"})
        if namespaces:
            wanted = set(namespaces)
            inside = {n["id"] for n in nodes if n.get("namespace") in wanted}
            edges = [e for e in edges if e["source"] in inside or e["target"] in inside]
            touched = inside | {e["source"] for e in edges} | {e["target"] for e in edges}
            nodes = [dict(n, outsider=n["id"] not in inside) for n in nodes if n["id"] in touched]
        elements = ui_elements(nodes, edges)
        return GraphResult(elements, graph_type, all_ns, float(self.snapshot.get("window_s", 0)),
                           float(self.snapshot.get("generated_at", 0)), notes)

    def element_metrics(self, element_id: str, window_s: float | None = None, graph_type: str | None = None,
                        namespaces: list[str] | None = None) -> dict[str, Any] | None:
        """The series saved for the id (a snapshot holds one window and one series per element)."""
        return self.snapshot.get("series", {}).get(element_id)

    def service_metrics(self, service: str, window_s: float | None = None,
                        end: float | None = None) -> dict[str, Any] | None:  # a snapshot holds one window: no end
        return self.snapshot.get("service_series", {}).get(service)

    def services(self) -> list[dict[str, Any]]:
        graphs = self.snapshot["graphs"]
        nodes = next(iter(graphs.values())).get("nodes", [])
        out = []
        for n in nodes:
            if n.get("type") != "service":
                continue
            fqdn = f"{n['name']}.{n['namespace']}.svc.cluster.local"
            out.append({"service": fqdn, "name": n["name"], "namespace": n["namespace"], "id": n["id"],
                        "health": n.get("health", "na"), "rps": n.get("rps_in", 0.0), "error_pct": n.get("error_pct", 0.0),
                        "has_metrics": fqdn in self.snapshot.get("service_series", {})})
        return out

    # --- findings ----------------------------------------------------------------------
    def findings(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        filters = checked_finding_filters(filters)
        return [f for f in self._findings if finding_matches(f, filters)]

    def finding(self, fingerprint: str) -> dict[str, Any] | None:
        f = next((f for f in self._findings if f["fingerprint"] == fingerprint), None)
        if f is None:
            return None
        out = dict(f)
        out["yaml_excerpts"] = [x for x in (self._excerpt(r) for r in [f.get("resource")] + list(f.get("related") or [])) if x]
        return out

    def _excerpt(self, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if not ref:
            return None
        obj = self._config.get((ref.get("kind"), ref.get("namespace"), ref.get("name")))
        if obj is None:
            return None
        text_lines = obj.get("yaml", "").splitlines()
        hl = _line_of(obj.get("lines", {}), ref.get("path") or "")
        return {"ref": f"{ref['kind']} {ref.get('namespace')}/{ref['name']}", "path": ref.get("path"),
                "source": obj.get("source"), "lines": [[i + 1, t] for i, t in enumerate(text_lines)],
                "highlight": [hl] if hl else []}

    # --- SLOs, traces, config ------------------------------------------------------------
    def slos(self) -> list[dict[str, Any]]:
        return list(self.snapshot.get("slos", []))

    def traces(self, filters: TraceFilters) -> list[dict[str, Any]]:
        if filters.status not in TRACE_STATUSES:
            raise QueryError("status", f"unknown status {filters.status!r} (known: {', '.join(TRACE_STATUSES)})")
        s = self._trace_summaries
        if s.empty:
            return []
        return filter_traces(s, filters)

    def trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        spans = self._spans[self._spans["trace_id"] == trace_id]
        if spans.empty:
            return None
        return order_spans(spans.sort_values("start_time").to_dict("records"))

    def config_objects(self) -> list[dict[str, Any]]:
        out = []
        for (kind, ns, name), obj in self._config.items():
            codes = [f["code"] for f in self._findings
                     if any(r and (r.get("kind"), r.get("namespace"), r.get("name")) == (kind, ns, name)
                            for r in [f.get("resource"), *(f.get("related") or [])])]
            paths = [r.get("path") for f in self._findings
                     for r in [f.get("resource"), *(f.get("related") or [])]
                     if r and (r.get("kind"), r.get("namespace"), r.get("name")) == (kind, ns, name) and r.get("path")]
            marks = sorted({line for line in (_line_of(obj.get("lines", {}), p) for p in paths) if line})
            out.append({**obj, "findings": codes, "highlight": marks})
        return out

    # --- scenarios and reports -----------------------------------------------------------
    def scenarios(self) -> list[dict[str, Any]]:
        return list(self.snapshot.get("scenarios", []))

    def apply_scenario(self, name: str | None) -> None:
        raise Unavailable("a saved snapshot cannot apply scenarios; run `meshscope up` for the bundled mesh")

    def report(self, fmt: str) -> tuple[bytes, str]:
        """Rendered by `diagnose.reports` (the one report pipeline), from this snapshot's data."""
        if fmt not in REPORT_FORMATS:
            raise QueryError("format", f"unsupported report format {fmt!r} (supported: {', '.join(REPORT_FORMATS)})")
        from types import SimpleNamespace

        from diagnose.reports import CONTENT_TYPES, build_snapshot, render

        g = next(iter(self.snapshot["graphs"].values()))
        graph = [{"data": {**n, "node_type": n.get("type")}} for n in g.get("nodes", [])] + \
                [{"data": dict(e)} for e in g.get("edges", [])]
        end = self.now()
        objects = [SimpleNamespace(kind=o["kind"], namespace=o.get("namespace"), name=o["name"], source=o.get("source"))
                   for o in self._config.values()]
        snap = build_snapshot(self._findings, graph=graph, slos=self.slos(), config_objects=objects,
                              window=(end - float(self.snapshot.get("window_s", 0)), end), generated_at=end,
                              title=f"meshscope report: {self.snapshot.get('mesh', self.origin)}", source=self.origin)
        return render(snap, fmt), CONTENT_TYPES[fmt]


def _line_of(lines: dict[str, int], path: str) -> int:
    """The line of a YAML path, or of its nearest known parent (as `ConfigObject.line_of`)."""
    p = path
    while p:
        if p in lines:
            return int(lines[p])
        cut = max(p.rfind("/"), p.rfind("["))
        p = p[:cut] if cut > 0 else ""
    return 0


def summarize_traces(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per trace from a spans table (schema span columns, times as epoch seconds); vectorized.

    The whole list in one go: the reference `dashboard.trace_summary`'s mergeable parts must equal (the live
    list keeps those incrementally). The root is the trace's parentless span that started first (ties: service,
    then name), so the answer does not depend on the order spans are stored in.
    """
    cols = LIST_COLUMNS
    if spans.empty:
        return pd.DataFrame(columns=cols)
    g = spans.groupby("trace_id", sort=False)
    errors = (spans["status_code"] == "ERROR").groupby(spans["trace_id"], sort=False).sum()
    services = (spans[["trace_id", "service_name"]].drop_duplicates().sort_values("service_name")
                .groupby("trace_id", sort=False)["service_name"].agg(list))
    out = pd.DataFrame({"start": g["start_time"].min(), "end": g["end_time"].max(), "spans": g.size(),
                        "errors": errors, "services": services})
    roots = (spans[spans["parent_span_id"] == ""].sort_values(["start_time", "service_name", "name"], kind="stable")
             .drop_duplicates("trace_id").set_index("trace_id"))
    out["root_service"] = roots["service_name"].reindex(out.index).fillna("?")
    out["root_name"] = roots["name"].reindex(out.index).fillna("?")
    out["duration_ms"] = ((out["end"] - out["start"]) * 1000).round(2)
    out["status"] = (out["errors"] > 0).map({True: "error", False: "ok"})
    return out.reset_index()[cols]


def filter_traces(summary: pd.DataFrame, filters: TraceFilters) -> list[dict[str, Any]]:
    """The newest trace summaries that pass the filters, as records (newest first; ties by trace id).

    The live list's filter (`dashboard.trace_summary.pick_traces`) over a summary's columns, so a saved snapshot
    lists exactly what the running mesh did.
    """
    rows = pick_traces(summary["trace_id"].to_numpy(), summary["start"].to_numpy(dtype=float),
                       summary["duration_ms"].to_numpy(dtype=float), (summary["status"] == "error").to_numpy(),
                       summary["services"].to_numpy(), filters)
    return summary.iloc[rows].to_dict("records")


def order_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first order with a depth field, so a waterfall reads top to bottom like the call tree.

    A span whose parent is not among `spans` starts a tree of its own and is marked `orphan`:
    its parent may still be in an exporter's batch, or was never sampled or sent.
    """
    children: dict[str, list] = {}
    ids = {s["span_id"] for s in spans}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else ""
        children.setdefault(parent, []).append(s)
    out: list[dict[str, Any]] = []
    stack = [(s, 0) for s in reversed(children.get("", []))]
    while stack:
        s, depth = stack.pop()
        out.append({**s, "depth": depth, "orphan": depth == 0 and bool(s["parent_span_id"])})
        stack.extend((c, depth + 1) for c in reversed(children.get(s["span_id"], [])))
    return out


# older private names, kept for callers that imported them (meshscope.live_source)
_order_spans = order_spans
