"""A series given twice in one answer (Envoy writes one when two stats reduce to one name and tag set).

Stored twice, the two values alternate within every scrape and each drop between them reads as a counter reset: a
steady counter's rate came out 2450/s instead of 100/s. As Prometheus does, the first sample of the answer is kept
and the later ones are refused (reason `duplicate_series`, with their line), whether the lines changed since the
last scrape or not (the scraper re-parses only changed lines and reuses the rows of the others).
"""
from __future__ import annotations

import pytest

from collector import selfmetrics
from collector.query import rates_from_samples
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore
from tests.util import BodyServer

_SERIES = ('istio_requests_total{reporter="source",source_workload="a",destination_service="b.ns.svc.cluster.local",'
           'response_code="200"} %d\n')


@pytest.mark.parametrize("second_changes", [True, False])
def test_a_repeated_series_keeps_its_first_sample(second_changes):
    scrape = {"n": 0}

    def body(_path):
        n = scrape["n"]
        return ("# TYPE istio_requests_total counter\n" + _SERIES % (100 + 10 * n) + "other_gauge 1\n"
                + _SERIES % (5 + n if second_changes else 5)).encode()

    with BodyServer(body) as srv:
        url = srv.url + "/metrics"
        store = TelemetryStore()
        scraper = Scraper([url], store, keep=None)
        before = selfmetrics.malformed_by_reason("exposition").get("duplicate_series", 0)
        try:
            for n in range(3):
                scrape["n"] = n
                scraper.poll()
                assert scraper.health()[url].malformed == 1
        finally:
            scraper.stop()
    assert selfmetrics.malformed_by_reason("exposition").get("duplicate_series", 0) == before + 3
    rejects = [r for r in selfmetrics.recent_rejects(10, "exposition") if r.reason == "duplicate_series"]
    assert rejects and rejects[0].line == 4
    m = store.metrics()
    counter = m[m.metric == "istio_requests_total"].sort_values("time")
    assert list(counter.value) == [100, 110, 120]  # one sample per scrape: the first copy's
    rates = rates_from_samples(m)
    span = (counter.time.iloc[-1] - counter.time.iloc[0]).total_seconds()
    rate = rates[rates.metric == "istio_requests_total"].rate.sum()
    assert rate * span == pytest.approx(20.0, rel=1e-3)  # the first copy rose by 20; the repeats made it ~490
