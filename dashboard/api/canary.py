"""GET /api/v1/canary?window=600: a verdict for every service whose traffic is split across versions.

Each newer version against the stable one (diagnose.canary): promote / hold / rollback /
insufficient_traffic, with confidence and evidence (per rollout step, where the config journal shows the
weights moved inside the window), plus the findings (MS5010-MS5012; a rollback names
the VirtualService weights and carries the rollback YAML). Computed from the live rate frame on request,
so it updates as data arrives.
"""
from __future__ import annotations

import time

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_float, check_known, live_backend
from dashboard.query import DataSource

MAX_WINDOW_S = 30 * 86400.0


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/canary")
    @api_route
    def api_canary():  # noqa: ANN202
        check_known({"window"})
        window = arg_float("window", 600.0, minimum=1.0, maximum=MAX_WINDOW_S)
        backend = live_backend(source, "canary verdicts")
        from diagnose.canary.findings import findings_of
        from diagnose.canary.steps import journal_of, judge

        snap = backend.snapshot()
        verdicts = judge(backend.rates, list(snap.objects), snap.mesh_config.root_namespace, journal_of(backend),
                         window, time.time(), requests=getattr(backend, "requests", None))  # per-path check
        findings = findings_of(verdicts, list(snap.objects), snap.mesh_config.root_namespace)
        return {"window_s": window, "verdicts": [v.to_dict() for v in verdicts],
                "findings": [f.to_dict() for f in findings]}
