"""The report input: everything a report shows, as one plain record that saves to and loads from JSON.

A running meshscope serves it (`GET /api/v1/report?format=json`), `meshscope
report --snapshot FILE` reads a saved one, and every format renders from it, so
HTML, PDF, Markdown and JSON always agree. The JSON form is documented by
`report.schema.json` next to this module.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from diagnose.findings import SEVERITY_RANK, Finding

SCHEMA_VERSION = "meshscope.report/v1"


class SnapshotError(ValueError):
    """A saved snapshot that cannot be used, naming the file and the field."""


@dataclass
class Window:
    """The time window the telemetry in the report covers (epoch seconds)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class MeshSummary:
    namespaces: list[str] = field(default_factory=list)
    services: int = 0
    workloads: int = 0
    health: dict[str, int] = field(default_factory=dict)  # health state -> node count
    requests_per_second: float | None = None
    error_rate: float | None = None  # share of requests answered 5xx


@dataclass
class Snapshot:
    """What a report is made of. `findings`, `slos`, `inventory` and `graph` are plain dicts so the
    snapshot round-trips through JSON unchanged; `findings` use `Finding.to_dict()`'s shape,
    `graph` is a list of Cytoscape elements (`{"data": {...}}`, edges have source/target)."""

    generated_at: float
    window: Window
    mesh: MeshSummary = field(default_factory=MeshSummary)
    graph: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    slos: list[dict[str, Any]] = field(default_factory=list)
    inventory: list[dict[str, Any]] = field(default_factory=list)
    title: str = "meshscope diagnostic report"
    source: str = "meshscope"
    problems: list[str] = field(default_factory=list, compare=False)  # entries skipped on load

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("problems")
        d["window"]["seconds"] = self.window.seconds
        return {"schema": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, d: Any, where: str = "snapshot") -> "Snapshot":
        """Validate as we read: a broken structure fails naming the field; a bad list entry (one finding,
        one SLO) is skipped and named in `problems`, so the rest of the report still renders."""

        def need(obj: Any, key: str, kind: type | tuple, path: str) -> Any:
            if not isinstance(obj, dict) or key not in obj:
                raise SnapshotError(f"{where}: missing field {path}")
            val = obj[key]
            if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
                raise SnapshotError(f"{where}: field {path} must be {_kind_name(kind)}, got {type(val).__name__}")
            return val

        problems: list[str] = []

        def opt_list(key: str, check=None) -> list:
            """A list of objects; a bad entry is skipped and noted, the rest is kept."""
            val = d.get(key, [])
            if not isinstance(val, list):
                raise SnapshotError(f"{where}: field {key} must be a list, got {type(val).__name__}")
            kept = []
            for i, item in enumerate(val):
                err = f"must be an object, got {type(item).__name__}" if not isinstance(item, dict) else (check(item) if check else None)
                if err:
                    problems.append(f"{where}: {key}[{i}]{err if err.startswith('.') else ' ' + err} (skipped)")
                else:
                    kept.append(item)
            return kept

        if not isinstance(d, dict):
            raise SnapshotError(f"{where}: top level must be a JSON object")
        schema = d.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise SnapshotError(f"{where}: field schema is {schema!r}, this meshscope reads {SCHEMA_VERSION!r}")
        num = (int, float)
        w = need(d, "window", dict, "window")
        window = Window(float(need(w, "start", num, "window.start")), float(need(w, "end", num, "window.end")))
        m = d.get("mesh", {})
        if not isinstance(m, dict):
            raise SnapshotError(f"{where}: field mesh must be an object")
        mesh = MeshSummary(
            namespaces=[str(x) for x in m.get("namespaces", [])],
            services=int(m.get("services", 0)),
            workloads=int(m.get("workloads", 0)),
            health={str(k): int(v) for k, v in (m.get("health") or {}).items()},
            requests_per_second=m.get("requests_per_second"),
            error_rate=m.get("error_rate"),
        )
        snap = cls(
            generated_at=float(need(d, "generated_at", num, "generated_at")),
            window=window,
            mesh=mesh,
            graph=opt_list("graph", _check_element),
            findings=opt_list("findings", _check_finding),
            slos=opt_list("slos", _check_slo),
            inventory=opt_list("inventory", _check_inventory),
            title=str(d.get("title", "meshscope diagnostic report")),
            source=str(d.get("source", "meshscope")),
        )
        snap.problems = problems
        return snap


def _check_element(e: dict[str, Any]) -> str | None:
    return None if isinstance(e.get("data"), dict) else ".data must be an object"


def _check_finding(f: dict[str, Any]) -> str | None:
    for key in ("code", "severity", "message"):
        if not isinstance(f.get(key), str):
            return f".{key} must be a string"
    if f["severity"] not in SEVERITY_RANK:
        return f".severity must be one of {', '.join(SEVERITY_RANK)}, got {f['severity']!r}"
    for key in ("evidence", "impact"):
        if not isinstance(f.get(key) or {}, dict):
            return f".{key} must be an object"
    if f.get("resource") is not None and not isinstance(f["resource"], dict):
        return ".resource must be an object"
    if not isinstance(f.get("related") or [], list) or not all(isinstance(r, dict) for r in f.get("related") or []):
        return ".related must be a list of objects"
    return None


def _check_slo(o: dict[str, Any]) -> str | None:
    if not isinstance(o.get("name"), str):
        return ".name must be a string"
    if not isinstance(o.get("burn_rates") or {}, dict):
        return ".burn_rates must be an object"
    return None


def _check_inventory(o: dict[str, Any]) -> str | None:
    return None if isinstance(o.get("kind"), str) and isinstance(o.get("name"), str) else ".kind and .name must be strings"


def _kind_name(kind: type | tuple) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def save_snapshot(snapshot: Snapshot, path: str | Path) -> None:
    Path(path).write_text(json.dumps(snapshot.to_dict(), indent=1, default=str), encoding="utf-8")


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a saved snapshot (or a JSON report); raises SnapshotError naming the file and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return Snapshot.from_dict(data, str(path))


# --- building one from live parts ---------------------------------------------------------------

def summarize_graph(elements: list[dict[str, Any]]) -> MeshSummary:
    """Counts for the summary from Cytoscape elements: namespaces, services, workloads, health, traffic."""
    from diagnose.reports import elements as E

    nodes, edges = E.split(elements)
    namespaces = sorted({str(n["namespace"]) for n in nodes if n.get("namespace") and n.get("namespace") != "unknown"})
    health: dict[str, int] = {}
    for n in nodes:
        h = E.health(n)
        health[h] = health.get(h, 0) + 1
    # a request through a service node crosses two edges (client -> service -> workload): count it once
    services = {str(n["id"]) for n in nodes if E.node_type(n) == "service"}
    first_hops = [e for e in edges if str(e["source"]) not in services]
    rps = sum(E.request_rate(e) for e in first_hops)
    err = sum(E.request_rate(e) * E.error_rate(e) for e in first_hops)
    return MeshSummary(
        namespaces=namespaces,
        services=sum(1 for n in nodes if E.node_type(n) == "service"),
        workloads=sum(1 for n in nodes if E.node_type(n) in ("workload", "app")),
        health=health,
        requests_per_second=round(rps, 4) if edges else None,
        error_rate=round(err / rps, 6) if rps else None,
    )


def inventory_from_objects(objects: Iterable[Any], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per config object (anything with kind/namespace/name/source) and how many findings name it."""
    counts: dict[tuple, int] = {}
    for f in findings:
        for ref in [f.get("resource")] + list(f.get("related") or []):
            if ref:
                key = (ref.get("kind"), ref.get("namespace"), ref.get("name"))
                counts[key] = counts.get(key, 0) + 1
    rows = []
    for o in objects:
        key = (o.kind, o.namespace, o.name)
        rows.append({"kind": o.kind, "namespace": o.namespace, "name": o.name,
                     "source": str(o.source) if getattr(o, "source", None) else None, "findings": counts.get(key, 0)})
    rows.sort(key=lambda r: (r["kind"], r["namespace"] or "", r["name"]))
    return rows


def build_snapshot(
    findings: Iterable[Finding | dict[str, Any]] = (),
    *,
    graph: list[dict[str, Any]] | None = None,
    slos: Iterable[dict[str, Any]] = (),
    config_objects: Iterable[Any] = (),
    window: tuple[float, float] | None = None,
    generated_at: float | None = None,
    mesh: MeshSummary | None = None,
    title: str = "meshscope diagnostic report",
    source: str = "meshscope",
) -> Snapshot:
    """What the composition root (and the API's /report route) calls with the live parts."""
    now = time.time() if generated_at is None else generated_at
    fdicts = [f.to_dict() if isinstance(f, Finding) else dict(f) for f in findings]
    elements = list(graph or [])
    start, end = window if window else (now - 600.0, now)
    return Snapshot(
        generated_at=now,
        window=Window(float(start), float(end)),
        mesh=mesh or summarize_graph(elements),
        graph=elements,
        findings=fdicts,
        slos=[dict(s) for s in slos],
        inventory=inventory_from_objects(config_objects, fdicts),
        title=title,
        source=source,
    )
