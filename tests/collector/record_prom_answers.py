"""Record real Prometheus HTTP API answers as fixtures for the prom_api fuzz tests (run by hand, not by pytest).

    .venv/bin/python -m tests.collector.record_prom_answers   # writes tests/collector/data/prom_answers.json

A real Prometheus (Debian's, with `--enable-feature=native-histograms`) scrapes two endpoints served
here: the recorded Envoy/Istio scrape (`envoy_stats_prometheus.txt`, text format, its counters rising
between scrapes) and a protobuf endpoint with one native histogram carrying Istio labels (the text
format cannot carry native histograms). Then it is asked the queries meshscope sends; the answers
are stored verbatim, with the Prometheus version.
"""
from __future__ import annotations

import http.server
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from mesh.controlplane.bootstrap import uleb128  # protobuf varints are unsigned LEB128
from tests.util import free_port, wait_until

DATA = Path(__file__).parent / "data"
OUT = DATA / "prom_answers.json"
ISTIO = {"reporter": "destination", "source_workload": "productpage-v1", "source_workload_namespace": "bookinfo",
         "destination_service": "reviews.bookinfo.svc.cluster.local", "destination_workload": "reviews-v1",
         "destination_workload_namespace": "bookinfo", "response_code": "200"}


# ---- a few protobuf primitives (io.prometheus.client.MetricFamily, delimited) ------------------------
def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return uleb128(num << 3 | wire) + payload


def _bytes(num: int, b: bytes) -> bytes:
    return _field(num, 2, uleb128(len(b)) + b)


def native_histogram_family(count: int) -> bytes:
    """One MetricFamily (type HISTOGRAM) with a native histogram (schema 0: buckets (1,2], (2,4], (4,8] ...)."""
    pos = [count // 2, count // 4, count - count // 2 - count // 4]  # absolute counts of 3 buckets
    deltas = [pos[0], pos[1] - pos[0], pos[2] - pos[1]]
    span = _field(1, 0, uleb128(_zigzag(0))) + _field(2, 0, uleb128(3))
    hist = (_field(1, 0, uleb128(count)) + _field(2, 1, struct.pack("<d", 3.5 * count)) + _field(5, 0, uleb128(_zigzag(0)))
            + _field(6, 1, struct.pack("<d", 1e-128)) + _field(7, 0, uleb128(0)) + _bytes(12, span)
            + _bytes(13, b"".join(uleb128(_zigzag(d)) for d in deltas)))
    labels = b"".join(_bytes(1, _bytes(1, k.encode()) + _bytes(2, v.encode())) for k, v in ISTIO.items())
    metric = labels + _bytes(7, hist)
    family = (_bytes(1, b"istio_request_duration_milliseconds") + _bytes(2, b"native histogram")
              + _field(3, 0, uleb128(4)) + _bytes(4, metric))
    return uleb128(len(family)) + family


def main() -> None:
    text = (DATA / "envoy_stats_prometheus.txt").read_text()
    started = time.time()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            n = int(time.time() - started) + 10
            if self.path.startswith("/native"):
                body = native_histogram_family(n * 4)
                ctype = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            else:  # the real scrape, every counter of an istio_ series rising with time
                body = re.sub(r"^(envoy_\w*istio_\w+(?:\{[^}]*\})?) (\d+)$", lambda m: f"{m[1]} {int(m[2]) + n}",
                              text, flags=re.M).encode()
                ctype = "text/plain; version=0.0.4"
            self.send_response(200)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:  # Prometheus stopped mid-scrape at the end
                pass

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="meshscope-record-"))
    port = free_port()
    target = f"127.0.0.1:{server.server_address[1]}"
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
              "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                                  "static_configs": [{"targets": [target]}],
                                  "metric_relabel_configs": [{"source_labels": ["__name__"],
                                                              "regex": "envoy_(?:[a-zA-Z0-9]+_)*?(istio_.+)",
                                                              "target_label": "__name__", "replacement": "$1"}]},
                                 {"job_name": "native", "metrics_path": "/native",
                                  "static_configs": [{"targets": [target]}]}]}
    (work / "prometheus.yml").write_text(json.dumps(config))
    proc = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=native-histograms",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def q(path, **params):
            return httpx.post(f"{url}/api/v1/{path}", data=params, timeout=10).json()
        def points() -> int:
            t = time.time()
            res = q("query_range", query="rate(istio_request_duration_milliseconds[10s])", start=f"{t - 4:.3f}",
                    end=f"{t:.3f}", step="1")["data"]["result"]
            return bool(res) and len(res[0].get("histograms", ())) >= 5 and \
                bool(q("query", query="rate(istio_requests_total[10s] offset 5s)")["data"]["result"])
        wait_until(points, timeout=120, interval=0.5, what="5 s of rates of both targets")
        now = time.time()
        from collector.sources.prom_api import PrometheusSource
        answers = {
            "version": httpx.get(f"{url}/api/v1/status/buildinfo", timeout=10).json()["data"]["version"],
            "source_match": q("query", query=PrometheusSource(None, None).match.strip()),  # type: ignore[arg-type]
            "rate_vector": q("query", query="sum by (source_workload,destination_workload,response_code,reporter) "
                                            "(rate(istio_requests_total[10s]))"),
            "bucket_vector": q("query", query="sum by (destination_workload,le) "
                                              "(rate(istio_request_duration_milliseconds_bucket[10s]))"),
            "native_vector": q("query", query="istio_request_duration_milliseconds"),
            "mixed_vector": q("query", query='{__name__=~"istio_requests_total|istio_request_duration_milliseconds"}'),
            "native_rate_vector": q("query", query="sum by (destination_workload) "
                                                   "(rate(istio_request_duration_milliseconds[10s]))"),
            "rate_matrix": q("query_range", query="sum by (response_code) (rate(istio_requests_total[10s]))",
                             start=f"{now - 4:.3f}", end=f"{now:.3f}", step="1"),
            "native_matrix": q("query_range", query="istio_request_duration_milliseconds",
                               start=f"{now - 4:.3f}", end=f"{now:.3f}", step="1"),
            "scalar": q("query", query="1 + 1"),
            "string": q("query", query='"text"'),
        }
        OUT.write_text(json.dumps(answers, indent=1) + "\n")
        print(f"wrote {OUT} (Prometheus {answers['version']})", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
