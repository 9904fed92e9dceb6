"""Crashes are events: the bundled mesh's restarted processes on /metrics and as crash-loop findings.

The supervisor (mesh) records each unexpected exit; this module, in the composition root,
shows them where an SRE looks: `meshscope_process_restarts_total` and
`meshscope_process_crashes_recent` on /metrics (one collector for the process, listing
every running bundled mesh), and MS3060 findings through the live loop's `extra` source.
Backends without supervised processes (a real cluster) contribute nothing.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

RECENT_S = 300.0
_meshes: "weakref.WeakSet[Any]" = weakref.WeakSet()
_lock = threading.Lock()
_registered = False


def crashes_of(backend: Any) -> list[dict[str, Any]]:
    """The backend's crashed processes (`BundledMesh.crashes()` shape), or [] when it has none."""
    mesh = getattr(backend, "mesh", None)
    fn = getattr(mesh, "crashes", None)
    try:
        return list(fn()) if fn is not None else []
    except Exception:  # a mesh that is stopping: no numbers this time, never a failed scrape
        return []


def restarts_by_workload(backend: Any) -> dict[tuple[str, str], int]:
    """(namespace, workload) -> restarts of its sidecar (what the graph shows on the node)."""
    out: dict[tuple[str, str], int] = {}
    for p in crashes_of(backend):
        if p.get("kind") != "sidecar":
            continue
        for w in p.get("workloads") or []:
            key = (w.get("namespace") or "", w["name"])
            out[key] = out.get(key, 0) + int(p.get("restarts", 0))
    return out


class _Collector:
    """prometheus-client collector over every live bundled mesh (registered once per process)."""

    def collect(self):  # noqa: ANN201
        restarts = CounterMetricFamily("meshscope_process_restarts", "Restarts of a bundled-mesh process after a crash.",
                                       labels=["process", "kind", "workload", "namespace"])
        recent = GaugeMetricFamily("meshscope_process_crashes_recent",
                                   f"Crashes of a bundled-mesh process in the last {RECENT_S:g} s.",
                                   labels=["process", "kind", "workload", "namespace"])
        now = time.time()
        for mesh in list(_meshes):
            for p in crashes_of(type("B", (), {"mesh": mesh})()):
                ws = p.get("workloads") or [{"name": "", "namespace": ""}]
                w = ws[0] if len(ws) == 1 else {"name": "", "namespace": ""}
                labels = [p["process"], p.get("kind", ""), w.get("name", ""), w.get("namespace", "")]
                restarts.add_metric(labels, float(p.get("restarts", 0)))
                recent.add_metric(labels, float(sum(1 for c in p.get("crashes") or [] if now - c["time"] <= RECENT_S)))
        yield restarts
        yield recent


def expose(backend: Any) -> None:
    """Put the backend's mesh (if any) on /metrics (the collector package's registry, served by the UI)."""
    global _registered
    mesh = getattr(backend, "mesh", None)
    if mesh is None or not hasattr(mesh, "crashes"):
        return
    with _lock:
        _meshes.add(mesh)
        if not _registered:
            from collector.selfmetrics import REGISTRY

            REGISTRY.register(_Collector())
            _registered = True


def finding_source(backend: Any) -> Callable[[float], list]:
    """The live loop's `extra` source: MS3060 for each process in a crash loop at the evaluation time."""
    from diagnose.rules.runtime.crash_loop import CrashLoop

    rule = CrashLoop()

    def found(now: float) -> list:
        return rule.analyze(crashes_of(backend), now)

    return found
