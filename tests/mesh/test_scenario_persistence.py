"""The active scenario survives kill -9: it is kept in the data dir and re-applied (and said so) at start."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, time
from pathlib import Path
from mesh.bundled import BundledConfig, BundledMesh
mesh = BundledMesh(BundledConfig(gateway_port=int(sys.argv[1]), control_port=None, data_dir=Path(sys.argv[2]),
                                 traffic_rate=1))
mesh.start()
mesh.apply_scenario(sys.argv[3])
print(json.dumps({"scenario": mesh.scenario}), flush=True)
while True:
    time.sleep(1)
"""


def test_active_scenario_survives_kill_9_and_is_reapplied(tmp_path):
    from mesh.bundled import BundledConfig, BundledMesh
    from mesh.scenarios import get
    from meshscope.app import BundledBackend

    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(free_port()), str(tmp_path), "fault-abort"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert json.loads(proc.stdout.readline())["scenario"] == "fault-abort"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    said: list[str] = []
    backend = BundledBackend(BundledConfig(gateway_port=free_port(), control_port=None, data_dir=tmp_path,
                                           traffic_rate=0))
    from collector.store import TelemetryStore
    store = TelemetryStore()
    backend.start(store, "http://127.0.0.1:9", said.append)
    try:
        mesh = backend.mesh
        assert mesh.scenario == "fault-abort" and mesh.restored_scenario == "fault-abort"
        applied = {o.ref for o in mesh.snapshot().objects}
        assert {o.ref for o in get("fault-abort").objects} <= applied
        assert any("fault-abort re-applied" in line for line in said), said
        mesh.clear_scenario()  # cleared on purpose: the next start is the baseline, and says nothing
        assert not mesh.scenario_path.exists()
    finally:
        backend.stop()
    again = BundledMesh(BundledConfig(gateway_port=free_port(), control_port=None, data_dir=tmp_path, traffic_rate=0))
    again.scenario_path.write_text("no-such-scenario\n")  # a stale or hand-edited file: a warning, no crash
    try:
        again.start()
        assert again.scenario is None and any("no-such-scenario" in w for w in again.warnings)
    finally:
        again.stop()
