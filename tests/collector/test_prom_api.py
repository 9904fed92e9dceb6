"""Prometheus HTTP API source against a real Prometheus scraping a real Envoy; errors over real HTTP."""
from __future__ import annotations

import http.server
import json
import math
import threading

import pytest

from collector import schema as s
from collector.query import histogram_quantile, istio_rates
from collector.sources.prom_api import PrometheusAPIError, PrometheusClient, PrometheusSource
from collector.store import TelemetryStore
from tests.collector.envoy_static import static_envoy
from tests.util import free_port, wait_until


@pytest.fixture(scope="module")
def envoy(tmp_path_factory):
    with static_envoy(tmp_path_factory.mktemp("envoy-prom")) as e:
        yield e


def test_istio_rate_frame_from_promql(prometheus, envoy):
    with prometheus.scrape([envoy.admin_url]), PrometheusClient(prometheus.url) as client:
        envoy.get("/ok", 2)
        wait_until(lambda: not client.query_vector("istio_requests_total").empty, timeout=90, interval=0.5,
                   what="series in Prometheus")
        assert set(istio_rates(client, 60).columns) == {*s.ISTIO_LABELS, s.METRIC, s.LE, s.RATE}  # same entry point


def test_istio_rate_frame_of_one_envoy(prometheus, envoy):
    with prometheus.scrape([envoy.admin_url]), PrometheusClient(prometheus.url) as client:
        envoy.get("/ok", 10)
        envoy.get("/fail", 3)
        # Prometheus needs two samples of each series inside the window for rate()
        def ready():
            envoy.get("/ok", 2)
            envoy.get("/fail", 1)
            # only this Envoy's series: the session Prometheus may also hold other tests' (bundled mesh)
            r = client.istio_rates(60, selector=f'instance="{envoy.admin_url.split("//")[1]}"')
            req = r[r[s.METRIC] == s.ISTIO_REQUESTS_TOTAL]
            codes = set(req[req[s.RATE] > 0][s.RESPONSE_CODE])
            return (r,) if {"200", "503"} <= codes else None
        (rates,) = wait_until(ready, timeout=90, interval=0.5, what="rates from Prometheus")
    assert list(rates.columns) == [*s.ISTIO_LABELS, s.METRIC, s.LE, s.RATE]
    req = rates[rates[s.METRIC] == s.ISTIO_REQUESTS_TOTAL]
    assert set(req[s.SOURCE_WORKLOAD]) == {"productpage-v1"}
    assert set(req[s.GRPC_RESPONSE_STATUS]) == {"unknown"}  # label absent -> "unknown"
    assert req[s.LE].isna().all()


def test_query_range_and_vector_shapes(prometheus, envoy):
    with prometheus.scrape([envoy.admin_url]), PrometheusClient(prometheus.url) as client:
        envoy.get("/ok", 3)
        wait_until(lambda: not client.query_vector('istio_requests_total{response_code="200"}').empty, timeout=90,
                   interval=0.5, what="series in Prometheus")
        vec = client.query_vector('sum(istio_requests_total) by (response_code)')
        assert {"response_code", "value"} <= set(vec.columns) and (vec["value"] > 0).all()
        import time
        now = time.time()
        rng = client.query_range_frame("up", now - 10, now, 1)
        assert {s.TIME, "value", "job"} <= set(rng.columns) and len(rng) >= 2
        scalar = client.query_vector("1 + 1")
        assert scalar["value"].iloc[0] == 2.0


def test_source_copies_counters_into_the_store(prometheus, envoy):
    store = TelemetryStore()
    with prometheus.scrape([envoy.admin_url]), PrometheusClient(prometheus.url) as client:
        envoy.get("/ok", 3)
        src = PrometheusSource(client, store, interval=0.5)
        wait_until(lambda: src.poll() and store.metrics()[s.TIME].nunique() >= 3 and len(istio_rates(store, 300)), timeout=90,
                   interval=1.0, what="three copies of the counters")
    local = istio_rates(store, 300)
    assert set(local[s.METRIC]) >= {s.ISTIO_REQUESTS_TOTAL}
    buckets = local[local[s.METRIC] == "istio_request_duration_milliseconds_bucket"]
    if len(buckets) and buckets[s.RATE].sum() > 0:
        p50 = histogram_quantile(0.5, buckets, by=[s.DESTINATION_SERVICE])["value"]
        assert (p50.dropna() >= 0).all()


def test_bad_query_is_a_clear_error(prometheus):
    with PrometheusClient(prometheus.url) as client:
        with pytest.raises(PrometheusAPIError) as e:
            client.query("sum(rate(x[5m]) by")
    assert e.value.kind == "bad_query" and "parse error" in str(e.value)


def test_unreachable_and_timeout():
    with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(PrometheusAPIError) as e:
            client.query("up")
    assert e.value.kind == "unreachable" and "cannot reach" in str(e.value)

    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            release.wait(5)  # answer only after the client gave up

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with PrometheusClient(f"http://127.0.0.1:{srv.server_address[1]}", timeout=0.5) as client:
            with pytest.raises(PrometheusAPIError) as e:
                client.query("up")
        assert e.value.kind == "timeout"
    finally:
        release.set()
        srv.shutdown()
        srv.server_close()


class _AuthProxy(http.server.BaseHTTPRequestHandler):
    """Stands in for an authenticating gateway in front of Prometheus (Thanos/Mimir style)."""
    expected = ""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("authorization") != self.expected:
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up"}, "value": [1, "+Inf"]}]}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("kwargs,header", [
    ({"token": "s3cret"}, "Bearer s3cret"),
    ({"username": "ms", "password": "pw"}, "Basic bXM6cHc="),
])
def test_bearer_and_basic_auth(kwargs, header):
    handler = type("H", (_AuthProxy,), {"expected": header})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        with PrometheusClient(url, **kwargs) as ok:
            assert math.isinf(ok.query_vector("up")["value"].iloc[0])
        with PrometheusClient(url) as anonymous:
            with pytest.raises(PrometheusAPIError) as e:
                anonymous.query("up")
        assert e.value.kind == "auth"
    finally:
        srv.shutdown()
        srv.server_close()
