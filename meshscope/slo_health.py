"""Latency SLOs as graph health: the composition root hands topology the limits diagnose knows.

Topology cannot import diagnose (dependencies point one way), so the live graph receives the
latency SLOs as plain `topology.health.LatencyLimit`s inside its `HealthConfig`. The config
object is cached per set of limits: the health appender recomputes its per-node tolerance sets
only when that object changes, not on every build.
"""
from __future__ import annotations

import threading
from typing import Any

from topology.health import HealthConfig, LatencyLimit

_lock = threading.Lock()
_cache: dict[tuple[LatencyLimit, ...], HealthConfig] = {}


def latency_limits(slos: list[Any]) -> tuple[LatencyLimit, ...]:
    """One limit per latency SLO on a mesh service (`name.namespace.svc...`); promql/availability SLIs give none."""
    out = []
    for slo in slos:
        if getattr(slo, "sli", None) != "latency" or not getattr(slo, "threshold_ms", None):
            continue
        parts = str(slo.service or "").split(".")
        if not parts[0]:
            continue
        namespace = parts[1] if len(parts) > 1 else (slo.namespace or "")
        out.append(LatencyLimit(parts[0], namespace, float(slo.threshold_ms), float(slo.objective),
                                source=f"SLO {slo.name}"))
    return tuple(sorted(out, key=repr))


def health_for(stack: Any) -> HealthConfig | None:
    """The live graph's HealthConfig: Kiali's tolerances plus the stack's latency SLOs (None without any)."""
    engine = getattr(getattr(stack, "diagnoser", None), "slo_engine", None)
    limits = latency_limits(engine.slos) if engine is not None else ()
    if not limits:
        return None
    with _lock:
        config = _cache.get(limits)
        if config is None:
            _cache.clear()  # the SLO set changed: the old object is not needed again
            config = _cache[limits] = HealthConfig(latency=limits)
        return config
