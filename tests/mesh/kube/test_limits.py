"""The Kubernetes list/watch decoder under hostile answers: deep JSON, oversize bodies, endless events."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mesh.kube import KubeError, KubeSource, api_client
from tests.util import wait_until

VS_PATH = "/apis/networking.istio.io/v1/virtualservices"


class RawServer:
    """Answers every GET with the same raw bytes (what no well-behaved API server sends)."""

    def __init__(self, body: bytes):
        outer = self
        self.body = body

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw_cluster(kube_api, tmp_path):
    servers = []

    def make(body: bytes):
        srv = RawServer(body)
        servers.append(srv)
        kube_api.url = f"http://127.0.0.1:{srv.httpd.server_address[1]}"
        return api_client(str(kube_api.kubeconfig(tmp_path)))
    yield make
    for s in servers:
        s.stop()


def test_deeply_nested_list_response_is_a_clear_error(raw_cluster):
    api = raw_cluster(b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(KubeError, match="nests too deeply"):
        KubeSource(api).list_all()


def test_oversize_list_response_is_a_clear_error(raw_cluster, monkeypatch):
    monkeypatch.setenv("MESHSCOPE_MAX_INPUT_BYTES", "1000")
    api = raw_cluster(b'{"items": [], "padding": "' + b"x" * 5000 + b'"}')
    with pytest.raises(KubeError, match="over the 1000 bytes limit"):
        KubeSource(api).list_all()


def test_watch_event_over_the_cap_drops_the_stream_not_the_process(kube_api, tmp_path, monkeypatch):
    from pathlib import Path
    kube_api.load_dir(Path(__file__).parent / "data")
    monkeypatch.setenv("MESHSCOPE_MAX_EVENT_BYTES", "70000")
    huge = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "huge", "namespace": "bookinfo", "resourceVersion": "9999",
                         "annotations": {"pad": "x" * 300_000}},
            "spec": {"hosts": ["huge"]}}
    small = {**huge, "metadata": {"name": "small", "namespace": "bookinfo", "resourceVersion": "10000"}}
    kube_api.script_watch(VS_PATH, [{"type": "ADDED", "object": huge}], [{"type": "ADDED", "object": small}])
    src = KubeSource(api_client(str(kube_api.kubeconfig(tmp_path))), backoff_initial=0.05)
    src.start()
    try:
        wait_until(lambda: "event limit" in (src.status()["VirtualService"]["last_error"] or "")
                   or any(o.name == "small" for o in src.objects()), timeout=30, what="the oversize event refused")
        # the oversize event is never applied; the watch reconnects and takes the next one
        wait_until(lambda: any(o.name == "small" for o in src.objects()), timeout=30, what="watch resumed")
        assert not any(o.name == "huge" for o in src.objects())
        assert src.status()["VirtualService"]["reconnects"] >= 1
    finally:
        src.stop()
