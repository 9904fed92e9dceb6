"""CPU of one Overview page request on a live stack: the layout and its JSON, as the `route` callback answers.

Starts the bundled mesh at 10 requests/s and the whole stack around it (collectors, live diagnoser, UI) in this
process, applies the mtls-mismatch scenario so there are findings and incidents to show, waits until their count
has held for 15 s, then
renders the Overview 40 times on this thread and reports the median and 90th percentile of the thread's CPU time
per request (CPU, not wall time: the box is shared). One mesh: run it alone. For a baseline, run this file from
a checkout of the older code (`git worktree add /tmp/base <commit>`, copy this file into its bench/, run
`python -m bench overview` there) right before or after, and quote both with the load average.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

from bench.common import report

RENDERS = 40
WARMUP = 5
STEADY_S = 15  # the open findings' count unchanged this long (s) before measuring


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from plotly.utils import PlotlyJSONEncoder

    from dashboard.app import AppContext
    from dashboard.pages import overview
    from mesh.bundled import BundledConfig, BundledMesh
    from mesh.controlplane.registry import free_local_port
    from meshscope.app import DEMO_SLOS, BundledBackend, Stack, StackOptions

    with tempfile.TemporaryDirectory() as tmp:
        mesh = BundledMesh(BundledConfig(gateway_port=free_local_port(), control_port=0, data_dir=Path(tmp) / "mesh",
                                         traffic_rate=10.0, ready_timeout=180.0))
        mesh.start()
        stack = None
        try:
            stack = Stack(BundledBackend(mesh=mesh, scrape_interval=1.0),
                          StackOptions(port=_free_port(), otlp_port=0, data_dir=Path(tmp) / "stack",
                                       diagnose_interval=1.0, refresh_s=2.0, slo_paths=[DEMO_SLOS])).start()
            mesh.apply_scenario("mtls-mismatch")
            source = stack.source
            deadline, seen, steady = time.monotonic() + 240, -1, 0
            while time.monotonic() < deadline and steady < STEADY_S:  # the scenario's findings, all of them
                n = len(source.findings({"status": "open"}))
                steady, seen = (steady + 1 if n == seen and n else 0), n
                time.sleep(1.0)  # a bench, not a test: polling once a second
            ctx = AppContext()

            def render() -> str:
                return json.dumps(overview.layout(source, ctx, {}), cls=PlotlyJSONEncoder)

            for _ in range(WARMUP):
                render()
            cpu = []
            for _ in range(RENDERS):
                t0 = time.thread_time()
                render()
                cpu.append(time.thread_time() - t0)
            cpu.sort()
            print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
                  f"{len(source.findings({'status': 'open'}))} open findings", flush=True)
            report("overview_request_cpu_median", cpu[len(cpu) // 2] * 1000, "ms")
            report("overview_request_cpu_p90", cpu[int(len(cpu) * 0.9)] * 1000, "ms")
        finally:
            if stack is not None:
                stack.stop()
            mesh.stop()
