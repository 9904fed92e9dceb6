"""The report input: everything a report shows, as one plain record that saves to and loads from JSON.

A running meshscope serves it (`GET /api/v1/report?format=json`), `meshscope
report --snapshot FILE` reads a saved one, and every format renders from it, so
HTML, PDF, Markdown and JSON always agree. The JSON form is documented by
`report.schema.json` next to this module.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from diagnose.findings import SEVERITY_RANK

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
    # two windows compared (issue #14): topology.compare's table of the window before vs this one, plus the
    # config changes between them ({} when not compared); see view.before_after
    before_after: dict[str, Any] = field(default_factory=dict)
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
        ba = d.get("before_after", {})
        if isinstance(ba, dict):
            snap.before_after = ba
        else:
            problems.append(f"{where}: before_after must be an object, got {type(ba).__name__} (skipped)")
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


def __getattr__(name: str) -> Any:
    """`build_snapshot` and friends moved to `diagnose.reports.build`; still importable from here."""
    if name in ("build_snapshot", "summarize_graph", "inventory_from_objects"):
        from diagnose.reports import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
