"""Stopping the mesh leaves nothing behind: no processes (even on SIGTERM, Ctrl-C or SIGKILL), no run files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, time
from pathlib import Path
from mesh.bundled import BundledConfig, BundledMesh
mesh = BundledMesh(BundledConfig(gateway_port=int(sys.argv[1]), control_port=0, data_dir=Path(sys.argv[2]),
                                 traffic_rate=2))
mesh.start()
print(json.dumps({"pids": mesh.pids(), "run_dir": str(mesh.run_dir)}), flush=True)
while True:
    time.sleep(1)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_no_orphans_after_signal(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(free_port()), str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        info = json.loads(proc.stdout.readline())
        pids = list(info["pids"].values())
        assert len(pids) == 8  # 7 Envoys (6 sidecars + gateway) and the demo apps process
        assert all(alive(p) for p in pids)
        proc.send_signal(sig)
        proc.wait(timeout=60)  # a loaded machine stops 8 processes slowly
        wait_until(lambda: not any(alive(p) for p in pids), timeout=30, what="every child process gone")
        if sig != signal.SIGKILL:  # a killed process cannot clean up; its children still die (PDEATHSIG)
            assert not Path(info["run_dir"]).exists()
            assert (tmp_path / "logs").is_dir()  # access logs stay for later reading
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_busy_gateway_port_is_a_clear_error(tmp_path):
    import socket

    from mesh.bundled import BundledConfig, BundledMesh

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        mesh = BundledMesh(BundledConfig(gateway_port=s.getsockname()[1], control_port=None, data_dir=tmp_path))
        with pytest.raises(RuntimeError, match=r"gateway port \(--gateway-port\) \d+ is already in use"):
            mesh.start()
    assert not (tmp_path / "run").exists()


def test_a_listener_port_taken_meanwhile_is_reported(tmp_path):
    """Another process grabs a sidecar's port between allocation and bind: start fails fast, naming it."""
    import socket

    from mesh.bundled import BundledConfig, BundledMesh
    from mesh.controlplane.registry import Registry, free_local_port

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken: set[int] = set()
    calls = iter(range(1000))

    def allocate() -> int:  # the second port handed out (productpage's outbound listener) is busy
        return busy.getsockname()[1] if next(calls) == 1 else free_local_port(taken)

    mesh = BundledMesh(BundledConfig(gateway_port=free_local_port(), control_port=None, data_dir=tmp_path,
                                     traffic_rate=0, ready_timeout=90))
    mesh.registry = Registry(allocate=allocate)
    try:
        with pytest.raises(RuntimeError, match="could not bind its port") as exc:
            mesh.start()
        assert "bookinfo." in str(exc.value)
    finally:
        busy.close()
    assert not mesh.pids()
