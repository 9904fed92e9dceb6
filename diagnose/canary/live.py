"""Canary verdicts in the live loop: a regressing canary opens a finding like any runtime problem.

The live diagnoser's own window (seconds) is too short to judge a version, so the verdicts use
their own (default 5 minutes) and are recomputed at most every `every_s`: a refresh is cheap
(vectorized) but pointless more often than data can change a verdict. Only services with an
explicit weighted route are judged here: that is a rollout someone is running. Versions that
simply coexist behind one Service (bookinfo's reviews v1/v2/v3 by design) are still judged on
demand by GET /api/v1/canary, but are not alarms.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from diagnose.canary.findings import findings_of, weighted_hosts
from diagnose.canary.steps import judge
from diagnose.canary.verdict import Thresholds
from diagnose.findings import Finding

# in the live loop: act on roll back and promote; "hold" and "not enough traffic yet" are the API's to show
LIVE_VERDICTS = frozenset({"rollback", "promote"})


def finding_source(rates: Callable[..., Any], snapshot: Callable[[], Any], window_s: float = 300.0,
                   every_s: float = 10.0, th: Thresholds = Thresholds(),
                   clock: Callable[[], float] = time.monotonic,
                   journal: Callable[[], Any] | None = None) -> Callable[[float], list[Finding]]:
    """A live loop `extra` source: fn(now) -> canary findings (MS5010 roll back, MS5011 promote).

    `journal` gives the config journal: the window is then judged step by step where the weights moved,
    against the version the rollout started from (diagnose.canary.steps)."""
    cache: dict[str, Any] = {"at": float("-inf"), "found": []}

    def found(now: float) -> list[Finding]:
        if clock() - cache["at"] < every_s:
            return list(cache["found"])
        cache["at"] = clock()
        snap = snapshot()
        if snap is None:
            cache["found"] = []
            return []
        objects = list(getattr(snap, "objects", None) or [])
        root = getattr(getattr(snap, "mesh_config", None), "root_namespace", "istio-system")
        hosts = weighted_hosts(objects, root)
        if not hosts:
            cache["found"] = []
            return []
        verdicts = [v for v in judge(rates, objects, root, journal() if journal else None, window_s, now, th)
                    if v.service in hosts and v.verdict in LIVE_VERDICTS]
        cache["found"] = findings_of(verdicts, objects, root)
        return list(cache["found"])

    return found


__all__ = ["LIVE_VERDICTS", "finding_source"]
