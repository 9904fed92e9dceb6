"""Scraping a real Envoy: Istio-style series land in the store, a dead target is reported, not fatal."""
from __future__ import annotations

import httpx
import pytest

from collector import schema as s
from collector import selfmetrics
from collector.query import istio_rates
from collector.sources.prom_scrape import Scraper, ScrapeTarget
from collector.store import TelemetryStore
from tests.collector.envoy_static import static_envoy
from tests.util import BodyServer, free_port, wait_until


@pytest.fixture(scope="module")
def envoy(tmp_path_factory):
    with static_envoy(tmp_path_factory.mktemp("envoy")) as e:
        yield e


def test_scrape_real_envoy_and_survive_a_dead_target(envoy):
    store = TelemetryStore()
    dead = f"http://127.0.0.1:{free_port()}"
    scraper = Scraper(lambda: [ScrapeTarget(envoy.admin_url, {"workload": "productpage-v1"}), dead], store, timeout=2)
    try:
        envoy.get("/ok", 5)
        assert scraper.poll() > 0
        envoy.get("/ok", 30)
        envoy.get("/fail", 4)
        envoy.get("/down", 2)
        # counters update at once; poll until the new values are visible in a second scrape, and until the latest
        # round reached the live target (its 2 s timeout can pass on a loaded box: that round reads it as down)
        def rates():
            scraper.poll()
            health = scraper.health()
            r = istio_rates(store, 600)
            req = r[r[s.METRIC] == "istio_requests_total"]
            ok = req[req[s.RESPONSE_CODE] == "200"][s.RATE].sum()
            uf = req[req[s.RESPONSE_FLAGS] == "URX,UF"][s.RATE].sum()
            return (req, health) if ok > 0 and uf > 0 and health[envoy.admin_url].up else None
        req, health = wait_until(rates, timeout=60, what="rates of the real envoy, scraped up")
        assert set(req[s.SOURCE_WORKLOAD]) == {"productpage-v1"}
        assert set(req[s.RESPONSE_CODE]) >= {"200", "503"}
        assert health[envoy.admin_url].up and health[envoy.admin_url].samples > 0
        assert health[envoy.admin_url].labels == {"workload": "productpage-v1"}
        assert not health[dead].up and "Connect" in health[dead].last_error
        assert selfmetrics.SCRAPE_UP.labels(dead)._value.get() == 0
        kept = set(store.metrics()[s.METRIC])
        assert "istio_requests_total" in kept  # envoy_<prefix>_istio_... normalized
        assert all(m.startswith(("istio_", "envoy_cluster", "envoy_http", "envoy_listener")) or m == "envoy_server_uptime"
                   for m in kept)  # uptime: when the sidecar started (collector/query.py)
        assert not any(m.startswith("envoy_") and m.endswith("_bucket") for m in kept)  # Istio's histograms suffice
    finally:
        scraper.stop()


def test_background_loop_scrapes_on_interval_and_stops(envoy):
    store = TelemetryStore()
    scraper = Scraper([envoy.admin_url], store, interval=0.2)
    scraper.start()
    try:
        # three rounds that stored samples (a round whose scrape missed its timeout on a loaded box counts as a
        # round and stores nothing)
        wait_until(lambda: scraper.rounds >= 3 and store.metrics()[s.TIME].nunique() >= 3, timeout=30,
                   what="three scrape rounds stored")
    finally:
        scraper.stop()
    rounds = scraper.rounds
    assert store.metrics()[s.TIME].nunique() >= 3
    assert scraper.rounds == rounds  # stopped: no more rounds


def test_garbage_answer_is_counted_per_target(tmp_path):
    srv = BodyServer(b'istio_requests_total{reporter="source"} 1\nthis is not exposition\nistio_x{a="1} 2\n')
    url = srv.url + "/stats/prometheus"
    try:
        before = selfmetrics.malformed_total("exposition", url)
        store = TelemetryStore()
        scraper = Scraper([url], store)
        assert scraper.poll() == 1
        scraper.stop()
        assert selfmetrics.malformed_total("exposition", url) - before == 2
        assert scraper.health()[url].malformed == 2
        assert b"meshscope_collector_malformed_total" in selfmetrics.exposition()
    finally:
        srv.close()


def _series(store: TelemetryStore) -> set[tuple]:
    df = store.metrics().drop(columns=[s.VALUE, s.TIME], errors="ignore")
    return set(map(tuple, df.astype(str).itertuples(index=False)))


def test_envoy_is_asked_only_for_the_kept_series_and_nothing_kept_is_lost(envoy):
    """The stats filter sent to Envoy (`envoy_filter`) is a superset of what the scraper keeps: a filtered scrape
    stores the same series as a whole-body scrape before it (all of them) and after it (nothing more)."""
    envoy.get("/ok", 3)
    envoy.get("/fail", 2)
    envoy.get("/down", 1)
    envoy.get("/nowhere", 1)
    stores = _scraped_whole_filtered_whole(envoy.admin_url)
    assert set(stores[1].metrics()[s.METRIC]) >= {"istio_requests_total", "envoy_cluster_upstream_rq", "envoy_server_uptime"}
    whole = httpx.get(envoy.admin_url + "/stats/prometheus?usedonly").content
    asked = httpx.get(Scraper([envoy.admin_url], TelemetryStore())._url(ScrapeTarget(envoy.admin_url))).content
    assert len(asked) < len(whole)  # what Envoy renders and sends for a round
    for family in (b"envoy_server_initialization_time_ms", b"envoy_cluster_default_total_match_count",
                   b"envoy_listener_manager_"):  # families nothing reads are not even sent
        assert family in whole and family not in asked


def _scraped_whole_filtered_whole(url: str) -> list[TelemetryStore]:
    """Three stores scraped from `url` once each: whole body, filtered, whole again; the filtered one must hold
    every series the first whole scrape did and nothing the later one does not (traffic only adds series)."""
    stores = [TelemetryStore() for _ in range(3)]
    for store, server_filter in zip(stores, (False, True, False)):
        scraper = Scraper([url], store, server_filter=server_filter)
        try:
            assert scraper.poll() > 0
        finally:
            scraper.stop()
    before, filtered, after = map(_series, stores)
    assert before <= filtered <= after
    return stores


def test_a_stats_url_target_is_asked_with_the_filter_but_keeps_its_unused_series(envoy):
    """A target named by its /stats/prometheus URL (an Istio sidecar's stats port) gets the filter but not `usedonly`:
    the same series as a whole-body scrape (never-used ones included, at 0), from a smaller body."""
    envoy.get("/ok", 2)
    url = envoy.admin_url + "/stats/prometheus"
    stores = _scraped_whole_filtered_whole(url)
    zeros = stores[1].metrics()
    assert (zeros[s.VALUE] == 0).any()  # never-used counters are still stored
    asked_url = Scraper([url], TelemetryStore())._url(ScrapeTarget(url))
    assert "filter=" in asked_url and "usedonly" not in asked_url
    assert len(httpx.get(asked_url).content) < len(httpx.get(url).content)
    for other in (url + "?usedonly", envoy.admin_url + "/metrics"):  # a query or a path of its owner's: left alone
        assert Scraper([other], TelemetryStore())._url(ScrapeTarget(other)) == other


def test_a_target_that_refuses_the_filter_is_scraped_whole(tmp_path):
    """An Envoy (or a stats proxy) that answers 400 to the filter is asked again without it, and from then on."""
    import http.server
    import threading

    body = (b"# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 12\n"
            b'istio_requests_total{reporter="source"} 3\nenvoy_cluster_other 1\n')
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            asked.append(self.path)
            code = 400 if "filter=" in self.path else 200
            self.send_response(code)
            payload = b"unknown parameter" if code == 400 else body
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    store = TelemetryStore()
    scraper = Scraper([url], store)
    try:
        assert scraper.poll() == 2 and scraper.poll() == 2
        assert scraper.health()[url].up
    finally:
        scraper.stop()
        srv.shutdown()
    assert ["filter=" in p for p in asked] == [True, False, False]
