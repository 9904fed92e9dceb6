"""Crash loops: a supervised proxy or app that keeps dying is a finding, not a silent restart counter.

Input is what the bundled mesh's supervisor records (see `mesh.bundled.BundledMesh.crashes`):
per process, the time and exit code of each unexpected exit. A process that crashed
`min_crashes` times within `window_s` is looping (Kubernetes' CrashLoopBackOff needs a few
restarts too); a single crash is counted on /metrics and the graph but is no finding. The
finding resolves once the window holds fewer crashes, like a pod that has been stable again.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from diagnose.rule import Metadata


def _exit_text(code: int | None) -> str:
    if code is None:
        return "unknown"
    return f"signal {-code}" if code < 0 else f"code {code}"


def _window_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


@dataclass
class CrashLoop:
    metadata = Metadata(name="runtime.CrashLoop", description="a supervised proxy or app restarted repeatedly",
                        inputs=("ProcessCrashes",), codes=("MS3060",))
    window_s: float = 300.0
    min_crashes: int = 3

    def analyze(self, processes: Iterable[dict[str, Any]], now: float) -> list[Finding]:
        out = []
        for p in processes:
            recent = [c for c in p.get("crashes") or [] if now - self.window_s < float(c["time"]) <= now]
            if len(recent) < self.min_crashes:
                continue
            workloads = p.get("workloads") or []
            refs = [ResourceRef(kind="Workload", name=w["name"], namespace=w.get("namespace")) for w in workloads]
            f = make("MS3060", resource=refs[0] if len(refs) == 1 else None, related=refs[1:] if len(refs) == 1 else refs,
                     process=p["process"], kind=p.get("kind", "process"), count=len(recent),
                     window=_window_text(self.window_s), exit_code=_exit_text(recent[-1].get("exit_code")),
                     restarts=int(p.get("restarts", 0)))
            f.evidence = {"edge_key": f"process:{p['process']}", "crashes": recent, "restarts": p.get("restarts", 0),
                          "workloads": workloads}
            f.impact = {"crashes": len(recent)}
            out.append(f)
        return out
