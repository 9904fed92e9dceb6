"""End to end with the shared bundled mesh: scrape its sidecars, tail its logs, and read it via Prometheus."""
from __future__ import annotations

import pytest

from collector import schema as s
from collector.query import golden_signals, istio_rates
from collector.sources.access_log import AccessLogTailer, LogFile
from collector.sources.prom_api import PrometheusClient
from collector.sources.prom_scrape import Scraper, ScrapeTarget
from collector.store import TelemetryStore
from tests.util import wait_until

pytestmark = pytest.mark.e2e


def _edges(rates):
    req = rates[(rates[s.METRIC] == s.ISTIO_REQUESTS_TOTAL) & (rates[s.RATE] > 0)]
    return set(zip(req[s.SOURCE_WORKLOAD], req[s.DESTINATION_SERVICE_NAME]))


def test_scrape_every_sidecar_into_rates(bundled_mesh):
    store = TelemetryStore()
    scraper = Scraper(bundled_mesh.scrape_targets, store, interval=1.0)
    want = {("productpage-v1", "details"), ("productpage-v1", "reviews")}

    def served(signals) -> set[tuple[str, str]]:
        # the mesh is shared: edges an earlier test's scenario used may sit idle at rate 0 in the window
        live = signals[signals["request_rate"] > 0]
        return {(w, svc.split(".")[0]) for w, svc in zip(live[s.SOURCE_WORKLOAD], live[s.DESTINATION_SERVICE])}

    try:
        scraper.poll()

        def have_rates():
            # everything asserted below, from one round: every sidecar answered it (a loaded box can miss a scrape's
            # timeout now and then), both reporters and both of productpage's edges have a rate (two rounds of
            # counters), and histograms reach /stats/prometheus only on Envoy's stats flush (the p50)
            scraper.poll()
            health = scraper.health()
            r = istio_rates(store, 120)
            signals = golden_signals(r)
            every_up = len(health) == len(bundled_mesh.scrape_targets()) and all(h.up for h in health.values())
            return (r, health) if (every_up and len(_edges(r)) >= 3 and set(r[s.REPORTER]) >= {"source", "destination"}
                                   and want <= served(signals) and signals["p50_ms"].notna().any()) else None
        rates, health = wait_until(have_rates, timeout=90, interval=1.0,
                                   what="every sidecar up, Istio rates of productpage's edges and latency buckets")
    finally:
        scraper.stop()
    assert len(health) == len(bundled_mesh.scrape_targets()) and all(h.up for h in health.values())
    assert len(_edges(rates)) >= 3 and set(rates[s.REPORTER]) >= {"source", "destination"}
    signals = golden_signals(rates)
    assert want <= served(signals), served(signals)
    assert (signals["p50_ms"].dropna() >= 0).all()


def test_sidecars_asked_for_kept_series_only_lose_none(bundled_mesh):
    """Every sidecar of the real mesh (Istio series in the `wasmcustom` namespace, RBAC, TLS, outlier and
    circuit-breaker stats) answers the stats filter with a superset of what the scraper keeps (#18): a filtered
    round stores the series of a whole-body round before it, and none a whole-body round after it lacks."""
    asking = Scraper(bundled_mesh.scrape_targets, TelemetryStore())
    assert all("filter=" in asking._url(ScrapeTarget(t.url)) for t in bundled_mesh.scrape_targets())  # really sent
    asking.stop()
    rounds = []
    for server_filter in (False, True, False):
        def whole_round():
            # one round in which every sidecar answered (a loaded box can miss a scrape's timeout now and then:
            # a round missing a target would compare fewer series, not the filter); a fresh store per attempt
            store = TelemetryStore()
            scraper = Scraper(bundled_mesh.scrape_targets, store, server_filter=server_filter)
            try:
                stored = scraper.poll()
                health = scraper.health()
            finally:
                scraper.stop()
            complete = len(health) == len(bundled_mesh.scrape_targets()) and all(h.up for h in health.values())
            return store if stored > 0 and complete else None
        store = wait_until(whole_round, timeout=60, interval=0.5, what=f"a round every sidecar answered "
                           f"({'filtered' if server_filter else 'whole'} bodies)")
        df = store.metrics().drop(columns=[s.VALUE, s.TIME])
        rounds.append(set(map(tuple, df.astype(str).itertuples(index=False))))
        families = set(df[s.METRIC])
    before, filtered, after = rounds
    assert before <= filtered <= after
    assert {"istio_requests_total", "envoy_cluster_upstream_rq", "envoy_server_uptime"} <= families


def test_tail_every_sidecar_access_log(bundled_mesh):
    store = TelemetryStore()
    files = [LogFile(a.path, a.workload, a.namespace, a.principal) for a in bundled_mesh.access_logs()]
    tailer = AccessLogTailer(files, store)
    try:
        def enough():
            tailer.poll()
            df = store.requests()
            return (df,) if len(df) >= 20 and set(df[s.REPORTER]) >= {"source", "destination"} else None
        (df,) = wait_until(enough, timeout=60, interval=0.5, what="access logs of the bundled mesh")
    finally:
        tailer.stop()
    assert tailer.malformed == 0
    inbound = df[df[s.REPORTER] == "destination"]
    assert inbound[s.MTLS].any()  # sidecar-to-sidecar traffic is mutual TLS by default
    assert (inbound[s.SOURCE_PRINCIPAL].str.startswith("spiffe://")).any()


def test_prometheus_scrapes_the_sidecars_and_answers_promql(bundled_mesh, prometheus):
    urls = [t.url for t in bundled_mesh.scrape_targets()]
    local_store = TelemetryStore()
    scraper = Scraper(bundled_mesh.scrape_targets, local_store)
    with prometheus.scrape(urls, timeout=60), PrometheusClient(prometheus.url) as client:
        try:
            def agree():
                scraper.poll()
                remote, local = _edges(istio_rates(client, 60)), _edges(istio_rates(local_store, 60))
                return (remote, local) if len(remote) >= 3 and remote == local else None
            remote, local = wait_until(agree, timeout=90, interval=1.0, what="Prometheus and local rates to agree")
        finally:
            scraper.stop()
    assert remote == local
