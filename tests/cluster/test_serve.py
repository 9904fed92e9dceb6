"""`meshscope serve` end to end, as a subprocess: the replayed Kubernetes API for config, the real
Prometheus (scraping the bundled mesh) for metrics, real HTTP to its UI/API."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import bookinfo_docs
from tests.cluster.kubedata import list_bodies
from tests.util import free_port, wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BROKEN_VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "ratings-canary", "namespace": "bookinfo"},
             "spec": {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings", "subset": "v9"}}]}]}}


class Serve:
    """One `meshscope serve` process; stopped with SIGTERM (as Kubernetes stops a pod)."""

    def __init__(self, tmp: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "serve.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("MESHSCOPE_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshscope", "serve", "--port", str(self.port), "--otlp-port", "0",
             "--data-dir", str(tmp / "data"), *args],
            cwd=ROOT, env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200,
                   timeout=90, interval=0.25, what="meshscope serve answering /healthz")
        assert self.proc.poll() is None, self.output()

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def cluster_kubeconfig(kube_api, tmp_path):
    kube_api.lists.update(list_bodies(bookinfo_docs() + [BROKEN_VS]))
    return kube_api.kubeconfig(tmp_path)


def edge_pairs(graph: dict) -> set[tuple[str, str]]:
    nodes = {e["data"]["id"]: e["data"] for e in graph["elements"] if "source" not in e["data"]}
    return {(nodes[e["data"]["source"]]["name"], nodes[e["data"]["target"]]["name"])
            for e in graph["elements"] if "source" in e["data"]}


def test_serve_shows_the_cluster_through_prometheus(mesh_prometheus, cluster_kubeconfig, tmp_path):
    serve = Serve(tmp_path, "--kubeconfig", str(cluster_kubeconfig), "--prometheus", mesh_prometheus.url,
                  "--namespaces", "bookinfo")
    try:
        assert serve.get("/healthz").json()["status"] == "ok"

        def to_reviews(pairs) -> bool:
            return any(src == "productpage-v1" and dst.startswith("reviews-v") for src, dst in pairs)

        def to_ratings(pairs) -> bool:
            return any(src.startswith("reviews-v") and dst == "ratings-v1" for src, dst in pairs)

        def graph():
            # every edge asserted below: each is scraped from other sidecars (reviews' and ratings' come in on their
            # own scrapes, which a loaded Prometheus can miss), so the first two edges do not bring the others
            r = serve.get("/api/v1/graph", graphType="workload", window="30")
            assert r.status_code == 200, r.text
            pairs = edge_pairs(r.json())
            first = {("istio-ingressgateway", "productpage-v1"), ("productpage-v1", "details-v1")} <= pairs
            return pairs if first and to_reviews(pairs) and to_ratings(pairs) else None

        pairs = wait_until(graph, timeout=60, interval=1, what="Bookinfo edges from Prometheus in /api/v1/graph")
        assert to_reviews(pairs) and to_ratings(pairs)

        def broken_subset():
            found = serve.get("/api/v1/findings").json()
            return [f for f in found if f["code"] == "MS1002" and f["resource"]["name"] == "ratings-canary"]

        hit = wait_until(broken_subset, timeout=60, interval=1, what="the cluster's broken VirtualService as a finding")[0]
        assert hit["resource"]["namespace"] == "bookinfo" and "v9" in hit["message"]
        assert "k8s:" in (hit["resource"].get("source") or "")
    finally:
        code = serve.stop()
    out = serve.output()
    assert code == 0 and "Traceback" not in out, out
    assert "prometheus          " + mesh_prometheus.url in out and "kubernetes          " in out


def test_serve_with_prometheus_down_reports_it_and_keeps_serving(cluster_kubeconfig, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    serve = Serve(tmp_path, "--kubeconfig", str(cluster_kubeconfig), "--prometheus", dead,
                  "--prometheus-timeout", "2")
    try:
        r = serve.get("/api/v1/graph")
        assert r.status_code >= 400 and r.headers["content-type"].startswith("application/json")
        assert f"cannot reach Prometheus at {dead}" in r.json()["error"]
        assert serve.get("/healthz").status_code == 200 and serve.proc.poll() is None
    finally:
        code = serve.stop()
    out = serve.output()
    assert code == 0 and "Traceback" not in out, out
    assert f"prometheus          NOT AVAILABLE: cannot reach Prometheus at {dead}" in out


def test_serve_refuses_bad_setups_with_one_line(tmp_path, kube_api):
    def run(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSCOPE_")}
        return subprocess.run([sys.executable, "-m", "meshscope", "serve", "--port", str(free_port()),
                               "--otlp-port", "0", "--data-dir", str(tmp_path / "d"), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    r = run("--kubeconfig", str(kube_api.kubeconfig(tmp_path)))
    assert r.returncode == 2 and "--prometheus URL is required" in r.stderr
    r = run("--prometheus", "http://127.0.0.1:9", "--host", "0.0.0.0")
    assert r.returncode == 2 and "pass a token" in r.stderr
    with socket.socket() as busy:  # another process holds the OTLP port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run("--kubeconfig", str(kube_api.kubeconfig(tmp_path)), "--prometheus", "http://127.0.0.1:9",
                "--otlp-port", str(port))
    assert r.returncode == 1 and "cannot start" in r.stderr and f"OTLP port {port}" in r.stderr, r.stderr
    path = kube_api.kubeconfig(tmp_path)
    kube_api.stop()
    r = run("--kubeconfig", str(path), "--prometheus", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot read the cluster: GET /api/v1/namespaces" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
