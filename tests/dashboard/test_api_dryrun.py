"""GET /api/v1/dryrun over real HTTP: dry-run policies, their sidecars' shadow counters (served by a real local
HTTP server standing in for a sidecar's stats port) and the prediction beside them; 400/503 as elsewhere."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest

from dashboard.server import start
from mesh.config import Snapshot, load_paths, load_text
from tests.dashboard.test_api_impact import LiveLike
from tests.diagnose.whatif.test_replay import BOOKINFO, _window

DRY = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-dry, namespace: bookinfo, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{from: [{source: {namespaces: ["other"]}}]}]
"""
STATS = """# TYPE envoy_http_rbac_istio_dry_run_deny__shadow_denied counter
envoy_http_rbac_istio_dry_run_deny__shadow_denied{envoy_http_conn_manager_prefix="inbound_9080"} 41
envoy_http_rbac_istio_dry_run_deny__shadow_allowed{envoy_http_conn_manager_prefix="inbound_9080"} 7
envoy_http_rbac_istio_dry_run_deny__shadow_denied{broken 7
"""


class _Stats(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = (STATS if self.server.dry else "envoy_cluster_upstream_rq_total 3\n").encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _sidecar(dry: bool) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stats)
    httpd.dry = dry  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class _Backend:
    def __init__(self, objects, workloads):
        self._snap = Snapshot(objects)
        self.mesh = SimpleNamespace(registry=SimpleNamespace(workloads=workloads)) if workloads is not None else None

    def snapshot(self):  # noqa: ANN201
        return self._snap

    def rates(self, window_s, end=None):  # noqa: ANN001, ANN201
        return _window()


@pytest.fixture(scope="module")
def sidecars():
    ratings, details = _sidecar(True), _sidecar(False)
    yield [SimpleNamespace(namespace="bookinfo", name="ratings-v1", stats_port=ratings.server_address[1], is_gateway=False),
           SimpleNamespace(namespace="bookinfo", name="details-v1", stats_port=details.server_address[1], is_gateway=False),
           SimpleNamespace(namespace="bookinfo", name="gone-v1", stats_port=1, is_gateway=False)]
    for s in (ratings, details):
        s.shutdown()
        s.server_close()


def _get(backend, **params):
    ui = start(LiveLike(backend), port=0)
    try:
        return httpx.get(f"{ui.url}/api/v1/dryrun", params=params, timeout=30)
    finally:
        ui.stop()


def test_shadow_denials_beside_the_prediction(sidecars):
    objects = load_paths([BOOKINFO]).objects + load_text(DRY, "dry.yaml").objects
    r = _get(_Backend(objects, sidecars), window="600")
    assert r.status_code == 200, r.text
    body = r.json()
    [p] = body["policies"]
    assert p["policy"] == "bookinfo/ratings-dry" and p["action"] == "DENY" and p["source"].startswith("dry.yaml:")
    # the replay: other/batch -> ratings-v1 (0.5 rps in the window) is what enforcing it would deny
    assert [(e["source"], e["destination"]) for e in p["predicted"]] == [("other/batch", "bookinfo/ratings-v1")]
    assert p["predicted_rps"] == pytest.approx(0.5)
    # the sidecars: ratings' shadow rules denied 41 (the garbage line skipped); details has no dry-run counters
    assert p["shadow"] == {"bookinfo/ratings-v1": {"denied": 41.0, "allowed": 7.0, "engine": "deny"}}
    assert "unreachable: bookinfo/gone-v1" in body["shadow_note"]
    [f] = body["findings"]
    assert f["code"] == "MS5006" and f["evidence"]["shadow_denied"] == 41 and f["evidence"]["predicted_rps"] == 0.5


def test_without_readable_sidecars_the_prediction_still_shows():
    objects = load_paths([BOOKINFO]).objects + load_text(DRY, "dry.yaml").objects
    body = _get(_Backend(objects, None)).json()
    assert body["policies"][0]["shadow"] is None and "prediction only" in body["shadow_note"]
    assert body["policies"][0]["predicted_rps"] == pytest.approx(0.5) and body["findings"] == []


def test_no_dry_run_policy_says_so_and_bad_window_is_400():
    backend = _Backend(load_paths([BOOKINFO]).objects, None)
    body = _get(backend).json()
    assert body["policies"] == [] and "no dry-run" in body["shadow_note"]
    r = _get(backend, window="0")
    assert r.status_code == 400 and r.json()["param"] == "window"
    r = _get(backend, colour="red")
    assert r.status_code == 400 and r.json()["param"] == "colour"


def test_config_page_shows_shadow_denials_beside_the_prediction(sidecars):
    import json

    from dashboard.pages.config import dry_run_section

    objects = load_paths([BOOKINFO]).objects + load_text(DRY, "dry.yaml").objects
    text = json.dumps([c.to_plotly_json() for c in dry_run_section(LiveLike(_Backend(objects, sidecars)))],
                      default=lambda o: o.to_plotly_json())
    assert "bookinfo/ratings-dry" in text and "bookinfo/ratings-v1: 41 denied / 7 allowed" in text
    assert "other/batch -> bookinfo/ratings-v1 0.5 rps" in text
    assert dry_run_section(LiveLike(_Backend(load_paths([BOOKINFO]).objects, None))) == []  # none: no section
