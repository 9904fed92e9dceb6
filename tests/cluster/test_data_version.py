"""Idle is idle on a cluster (#18): `ClusterBackend.data_version` moves exactly when what the diagnoser reads moves
(Prometheus' Istio series, the config's objects), so the live diagnoser skips cycles over unchanged inputs and runs
one when something moved. A real Prometheus scrapes a real exporter on 127.0.0.1; the config comes from the
replaying Kubernetes API."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.sources.prom_api import PrometheusClient
from collector.store import TelemetryStore
from diagnose.live import LiveDiagnoser, LiveSources
from meshscope import cluster
from meshscope.cluster import ClusterBackend, ClusterOptions
from meshscope.otel_backend import OtelBundledBackend
from mesh.bundled import BundledConfig
from tests.cluster.test_kube_backend import VS_PATH, vs
from tests.util import wait_until

pytestmark = pytest.mark.e2e


class Exporter:
    """An Istio proxy's request counter on /metrics; `requests` is what the next scrape reads."""

    def __init__(self) -> None:
        self.requests = 10
        self.scrapes = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = ("# TYPE istio_requests_total counter\n"
                        'istio_requests_total{reporter="destination",source_workload="a",destination_workload="b",destination_workload_namespace="ns",'
                        f'destination_service="b.ns.svc.cluster.local",response_code="200"}} {me.requests}\n').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                me.scrapes += 1

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def scraped(prometheus):
    """The session Prometheus scraping one exporter for the module (every second); fingerprints are not cached.
    Tests move its counter up from wherever the previous test left it."""
    ttl, cluster.METRICS_VERSION_TTL_S = cluster.METRICS_VERSION_TTL_S, 0.0
    exporter = Exporter()
    try:
        with prometheus.scrape([exporter.url]):
            yield prometheus, exporter
    finally:
        exporter.close()
        cluster.METRICS_VERSION_TTL_S = ttl


def _backend(url: str, **options) -> ClusterBackend:
    return ClusterBackend(ClusterOptions(prometheus_url=url, **options), api_client=object(),
                          prometheus=PrometheusClient(url, timeout=5))


def _seen(be: ClusterBackend, value: int) -> tuple:
    def ready():
        version = be.data_version()
        return version if ("istio_requests_total", "sum", str(value)) in version[1] else None
    return wait_until(ready, timeout=30, interval=0.2, what=f"Prometheus holding the count {value}")


def _scrapes_pass(exporter: Exporter, n: int = 3) -> None:
    seen = exporter.scrapes
    wait_until(lambda: exporter.scrapes >= seen + n, timeout=30, interval=0.1, what=f"{n} more scrapes")


def test_the_metrics_fingerprint_moves_with_new_samples_not_with_scrapes(scraped):
    prom, exporter = scraped
    be = _backend(prom.url)
    first = _seen(be, exporter.requests)
    assert ("istio_requests_total", "count", "1") in first[1]
    _scrapes_pass(exporter)  # the same counter scraped again: nothing moved
    assert be.data_version() == first
    exporter.requests += 2
    moved = _seen(be, exporter.requests)
    assert moved != first
    # selected namespaces that hold none of the series: nothing there, whatever the traffic elsewhere
    other = _backend(prom.url, namespaces=["elsewhere"])
    assert other.data_version()[1] == ()
    mine = _backend(prom.url, namespaces=["ns"])  # the destination is in "ns"
    assert ("istio_requests_total", "sum", str(exporter.requests)) in wait_until(lambda: mine.data_version()[1],
                                                                                 timeout=10)


def test_the_diagnoser_skips_cycles_until_prometheus_holds_new_traffic(scraped):
    prom, exporter = scraped
    be = _backend(prom.url)
    _seen(be, exporter.requests)
    diag = LiveDiagnoser(LiveSources(rates=be.rates, snapshot=be.snapshot), interval_s=0.05,
                         data_version=be.data_version, idle_interval_s=3600).start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 1, timeout=30, what="the first cycle")
        _scrapes_pass(exporter)
        wait_until(lambda: diag.skipped_cycles >= 5, timeout=30, interval=0.05, what="cycles skipped while idle")
        assert diag.last_evaluation["count"] == 1
        exporter.requests += 10
        wait_until(lambda: diag.last_evaluation["count"] == 2, timeout=30, interval=0.05, what="a cycle for new traffic")
        skipped = diag.skipped_cycles
        _scrapes_pass(exporter)
        wait_until(lambda: diag.skipped_cycles >= skipped + 5, timeout=30, interval=0.05, what="idle again")
        assert diag.last_evaluation["count"] == 2
    finally:
        diag.stop()


def test_a_config_change_moves_the_version_and_an_unchanged_object_does_not(scraped, bookinfo_cluster):
    prom, exporter = scraped
    server, kubeconfig = bookinfo_cluster
    be = ClusterBackend(ClusterOptions(prometheus_url=prom.url, kubeconfig=str(kubeconfig), debounce_s=0.2))
    be.start()
    try:
        before = _seen(be, exporter.requests)
        diag = LiveDiagnoser(LiveSources(rates=be.rates, snapshot=be.snapshot), interval_s=0.05,
                             data_version=be.data_version, idle_interval_s=3600).start()
        try:
            wait_until(lambda: diag.last_evaluation.get("count", 0) >= 1, timeout=30, what="the first cycle")
            rebuilds = be.status()["kubernetes"]["rebuilds"]
            server.script_watch(VS_PATH, [{"type": "ADDED", "object": vs("extra", "7000")}])
            wait_until(lambda: be.status()["kubernetes"]["rebuilds"] > rebuilds, timeout=15, what="a rebuild")
            after = be.data_version()
            assert after[0] != before[0] and after[1] == before[1]
            wait_until(lambda: diag.last_evaluation["count"] >= 2, timeout=30, interval=0.05, what="a cycle for the new VS")
            count, rebuilds = diag.last_evaluation["count"], be.status()["kubernetes"]["rebuilds"]
            # the same object again (a resync, a relist): a rebuild, but nothing the diagnoser reads moved
            server.script_watch(VS_PATH, [{"type": "MODIFIED", "object": vs("extra", "7000")}])
            wait_until(lambda: be.status()["kubernetes"]["rebuilds"] > rebuilds, timeout=15, what="a rebuild")
            assert be.data_version() == after
            skipped = diag.skipped_cycles
            wait_until(lambda: diag.skipped_cycles >= skipped + 5, timeout=30, interval=0.05, what="cycles skipped")
            assert diag.last_evaluation["count"] == count
        finally:
            diag.stop()
    finally:
        be.stop()


def test_the_otel_backend_moves_with_its_store_and_prometheus(scraped, tmp_path):
    prom, exporter = scraped
    be = OtelBundledBackend(BundledConfig(data_dir=Path(tmp_path)), prom.url)
    be.store = TelemetryStore()  # what start() keeps (the store its OTLP/gRPC receiver fills); no mesh started here
    want = ("istio_requests_total", "sum", str(exporter.requests))
    first = wait_until(lambda: v if want in (v := be.data_version())[1] else None,
                       timeout=30, interval=0.2, what="Prometheus holding the count")
    _scrapes_pass(exporter)
    assert be.data_version() == first
    from tests.collector.test_store import requests
    be.store.add_requests(requests([time.time()]))
    assert be.data_version() != first
