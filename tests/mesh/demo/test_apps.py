"""The demo apps on their own (no Envoy): Bookinfo answers, header forwarding, injected behavior."""
from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mesh.demo.apps import AppSpec, serve
from tests.mesh.evidence import get
from tests.util import free_port


class Recorder:
    """Stands in for the sidecar's outbound port: records requests, answers like details/reviews would."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                rec.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                if self.path.startswith("/reviews"):
                    body = json.dumps({"podname": "reviews-v9", "reviews": [{"reviewer": "R", "text": "ok"}]}).encode()
                    code = 200
                else:
                    body, code = b'{"error": "down"}', 503
                self.send_response(code)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def apps():
    outbound = Recorder()
    specs = [AppSpec("productpage-v1", "productpage", "v1", "bookinfo", free_port(), outbound.port),
             AppSpec("ratings-v1", "ratings", "v1", "bookinfo", free_port(), outbound.port)]
    servers = serve(specs, otlp_endpoint=None)
    yield {s.workload: s for s in specs}, outbound
    for s in servers:
        s.shutdown()
        s.server_close()
    outbound.httpd.shutdown()


def test_productpage_degrades_and_forwards_request_headers(apps):
    specs, outbound = apps
    rid = "0f0e0d0c-0b0a-4909-8807-060504030201"
    tp = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
    status, body = get(f"http://127.0.0.1:{specs['productpage-v1'].port}/productpage",
                       {"x-request-id": rid, "traceparent": tp, "end-user": "jason", "x-secret": "no"})
    assert status == 200  # details failed, the page still renders, as Bookinfo does
    assert "Error fetching product details!" in body and "reviews served by reviews-v9" in body
    calls = {c["path"]: c for c in outbound.seen[-2:]}
    assert calls["/details/0"]["host"] == "details:9080" and calls["/reviews/0"]["host"] == "reviews:9080"
    for c in calls.values():
        assert c["x-request-id"] == rid and c["traceparent"] == tp and c["end-user"] == "jason"
        assert "x-secret" not in c


def test_injected_behavior_errors_and_reset(apps):
    specs, _ = apps
    base = f"http://127.0.0.1:{specs['ratings-v1'].port}"
    assert json.loads(get(base + "/ratings/7")[1])["ratings"]["Reviewer1"] == 5
    req = urllib.request.Request(base + "/_meshscope/behavior", data=b'{"error_rate": 1.0, "error_code": 500}',
                                 method="POST")
    assert urllib.request.urlopen(req).status == 200
    assert get(base + "/ratings/7")[0] == 500
    req = urllib.request.Request(base + "/_meshscope/behavior", data=b"{}", method="POST")
    urllib.request.urlopen(req)
    assert get(base + "/ratings/7")[0] == 200
    bad = urllib.request.Request(base + "/_meshscope/behavior", data=b'{"nope": 1}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(bad)
    assert exc.value.code == 400
