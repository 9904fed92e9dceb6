"""`meshscope serve --snapshot FILE` as a subprocess: a saved snapshot over real HTTP, no cluster, no Prometheus."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dashboard.sample import bookinfo_snapshot
from tests.util import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("MESHSCOPE_TOKEN", "MESHSCOPE_PROMETHEUS"):
        env.pop(name, None)
    return env


def _meshscope(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "meshscope", "serve", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


@pytest.fixture
def snapshot_file(tmp_path) -> Path:
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(bookinfo_snapshot()))
    return path


@pytest.fixture
def serve(snapshot_file):
    procs: list[subprocess.Popen] = []

    def start(*extra: str) -> str:
        port = free_port()
        proc = _meshscope("--snapshot", str(snapshot_file), "--port", str(port), *extra)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: proc.poll() is not None or httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
                   timeout=60, interval=0.25, what="meshscope serve --snapshot answering /healthz")
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        return url

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def test_serve_snapshot_answers_the_graph_without_prometheus(serve):
    url = serve()
    r = httpx.get(f"{url}/api/v1/graph", params={"graphType": "workload"}, timeout=30)
    assert r.status_code == 200, r.text
    names = {e["data"].get("name") for e in r.json()["elements"] if "source" not in e["data"]}
    assert {"productpage-v1", "reviews-v2", "ratings-v1"} <= names
    codes = {f["code"] for f in httpx.get(f"{url}/api/v1/findings", timeout=30).json()}
    assert "MS2001" in codes
    assert httpx.post(f"{url}/api/v1/scenarios/mtls-mismatch", timeout=30, headers={"X-Meshscope-CSRF": "1"}).status_code == 503  # no mesh behind it


def test_serve_snapshot_with_a_token(serve):
    url = serve("--token", "s3cret")
    assert httpx.get(f"{url}/api/v1/graph", timeout=30).status_code == 401
    r = httpx.get(f"{url}/api/v1/graph", headers={"Authorization": "Bearer s3cret"}, timeout=30)
    assert r.status_code == 200 and r.json()["elements"]


def test_serve_snapshot_refuses_a_public_bind_without_a_token(snapshot_file):
    proc = _meshscope("--snapshot", str(snapshot_file), "--host", "0.0.0.0", "--port", "0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"token" in out.lower() and b"Traceback" not in out


@pytest.mark.parametrize("content, message", [(None, "no such file"), ("{not json", "incident.json")])
def test_serve_snapshot_bad_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "incident.json"
    if content is not None:
        path.write_text(content)
    proc = _meshscope("--snapshot", str(path), "--port", "0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert message in out.decode() and "Traceback" not in out.decode()
