"""`meshscope analyze --impact --kubeconfig K --prometheus URL`: the cluster's config from the replaying API server,
the rates from a Prometheus HTTP API on 127.0.0.1 whose answer holds a series meshscope cannot read."""
from __future__ import annotations

import http.server
import json
import threading
from argparse import ArgumentParser
from pathlib import Path

from collector import selfmetrics
from meshscope.commands import analyze as cmd

DATA = Path(__file__).resolve().parents[1] / "mesh" / "kube" / "data"
SERIES = {"source_workload": "productpage-v1", "source_workload_namespace": "bookinfo",
          "destination_workload": "reviews-v1", "destination_workload_namespace": "bookinfo",
          "destination_service": "reviews.bookinfo.svc.cluster.local", "reporter": "source",
          "response_code": "200", "response_flags": "-"}


class _PromAPI(http.server.BaseHTTPRequestHandler):
    """Answers every query with one readable series and one native histogram (which the rate frame skips)."""

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        result = [{"metric": SERIES, "value": [1700000000, "2.5"]},
                  {"metric": {**SERIES, "response_code": "503"},
                   "histogram": [1700000000, {"count": "3", "sum": "1.5", "buckets": []}]}]
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_impact_counts_skipped_series_under_its_prometheus(kube_api, tmp_path):
    kube_api.load_dir(DATA)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PromAPI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    proposed = tmp_path / "vs.yaml"
    proposed.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, "
                        "namespace: bookinfo}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: "
                        "{host: reviews, subset: v1}\n")
    parser = ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--impact", str(proposed), "--kubeconfig", str(kube_api.kubeconfig(tmp_path)),
                              "--prometheus", url, "--format", "json"])
    before = selfmetrics.malformed_total(source="prom_api", origin=url, reason="native_histogram")
    try:
        cmd.run(args)
    finally:
        httpd.shutdown()
        httpd.server_close()
    # one native-histogram series per metric asked (requests, duration buckets, TCP sent and received)
    assert selfmetrics.malformed_total(source="prom_api", origin=url, reason="native_histogram") == before + 4
