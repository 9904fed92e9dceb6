"""`meshscope up` as a user runs it: a subprocess that prints where everything is, serves, and stops on Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.util import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_meshscope_up_prints_where_everything_is_serves_and_stops_on_ctrl_c(tmp_path):
    gw, ctl, ui = free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "meshscope", "up", "--gateway-port", str(gw), "--control-port",
                             str(ctl), "--port", str(ui), "--otlp-port", "0", "--data-dir", str(tmp_path),
                             "--rate", "5", "--scrape-interval", "1", "--scenario", "fault-abort"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines: list[str] = []
        while not any(ln.startswith("Ready.") for ln in lines):
            line = proc.stdout.readline()
            assert line, "meshscope up exited early:\n" + "".join(lines)
            lines.append(line)
        out = "".join(lines)
        assert f"http://127.0.0.1:{gw}/productpage" in out
        assert f"http://127.0.0.1:{ctl}" in out and f"http://127.0.0.1:{ui}" in out
        assert "scenario            fault-abort" in out and "bookinfo/reviews-v2" in out
        assert "SLOs" in out and "OTLP/HTTP receiver" in out
        with httpx.Client(base_url=f"http://127.0.0.1:{ui}", timeout=30) as api:
            assert api.get("/healthz").status_code == 200
            # the scenario given on the command line shows up as a diagnosed finding
            found = wait_until(lambda: [f for f in api.get("/api/v1/findings", params={"status": "open"}).json()
                                        if f["code"] == "MS3010"], timeout=180, interval=1, what="MS3010 (fault abort)")
            assert "FI" in found[0]["evidence"]["response_flags"]
            page = api.get("/")
            assert page.status_code == 200 and "meshscope" in page.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0  # stops a whole mesh; slow on a loaded machine
        rest = proc.stdout.read()
        assert "stopping" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unknown_scenario_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "meshscope", "up", "--scenario", "no-such", "--data-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "unknown scenario" in r.stdout


def test_binding_beyond_loopback_without_a_token_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MESHSCOPE_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "meshscope", "up", "--host", "0.0.0.0", "--data-dir", str(tmp_path),
                        "--gateway-port", str(free_port()), "--control-port", str(free_port()), "--otlp-port", "0",
                        "--port", str(free_port())],
                       cwd=ROOT, capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 2 and "token" in r.stdout.lower()


def test_a_mesh_not_up_in_time_says_how_to_give_it_longer_and_leaves_nothing_running(tmp_path):
    r = subprocess.run([sys.executable, "-m", "meshscope", "up", "--ready-timeout", "0.05s", "--rate", "0", "--no-ui",
                        "--data-dir", str(tmp_path), "--gateway-port", str(free_port()), "--control-port",
                        str(free_port()), "--otlp-port", "0", "--port", str(free_port())],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "after 0.05s" in r.stdout and "--ready-timeout" in r.stdout and "Traceback" not in r.stdout + r.stderr
    # the sidecars and demo apps it had started are stopped (their command lines name the data dir)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes left running: {left}"


def test_ready_timeout_must_be_a_duration(tmp_path):
    r = subprocess.run([sys.executable, "-m", "meshscope", "up", "--ready-timeout", "soon", "--data-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "--ready-timeout" in r.stderr
