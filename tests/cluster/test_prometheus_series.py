"""Time series from Prometheus (`ClusterBackend.rates_range`): one range query per metric, whatever the
number of points, with the values the per-point instant queries give. Real Debian Prometheus scraping
the bundled mesh; requests are counted where they arrive (an authenticating proxy in front of it)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import pytest

from collector import schema as s
from collector.sources.prom_api import PrometheusClient
from meshscope import live_source
from meshscope.cluster import RATE_METRICS, ClusterBackend, ClusterOptions, PrometheusUnavailable
from meshscope.live_source import LiveSource
from tests.cluster.authproxy import AuthProxy
from tests.meshscope.pinned import PinnedSource
from tests.util import free_port, wait_until

pytestmark = pytest.mark.e2e
WINDOW = 10.0
KEYS = [*s.ISTIO_LABELS, s.METRIC, s.LE]



def backend(url: str, **client) -> ClusterBackend:
    return ClusterBackend(ClusterOptions(prometheus_url=url, namespaces=["bookinfo"]),
                          prometheus=PrometheusClient(url, timeout=10, **client))


@pytest.fixture
def counted(mesh_prometheus):
    """(backend, proxy): every request the backend makes passes the proxy, which records it."""
    proxy = AuthProxy(mesh_prometheus.url, bearer="series")
    try:
        yield backend(proxy.url, token="series"), proxy
    finally:
        proxy.close()


def test_range_series_are_the_instant_frames_at_the_same_times(mesh_prometheus):
    be = backend(mesh_prometheus.url)
    step = 2.0

    def compared_at(end: float) -> int:
        """Instants of the range where both frames hold rows (each equal to the other); equal sizes everywhere."""
        series = be.rates_range(WINDOW, end - 9 * step, end, step)
        assert [round(t, 3) for t, _ in series] == [round(end - step * i, 3) for i in range(9, -1, -1)]
        compared = 0
        for t, ranged in series:
            instant = be.rates(WINDOW, end=t)
            assert len(ranged) == len(instant), t
            if instant.empty:
                continue
            both = instant.merge(ranged, on=KEYS, how="outer", suffixes=("_instant", "_range"), indicator=True)
            assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"][KEYS[:4]]
            assert both[f"{s.RATE}_range"].to_numpy() == pytest.approx(both[f"{s.RATE}_instant"].to_numpy(), rel=1e-9)
            compared += 1
        last = series[-1][1]
        metrics = set(last[s.METRIC]) if not last.empty else set()
        return compared if metrics >= {s.ISTIO_REQUESTS_TOTAL, f"{s.ISTIO_REQUEST_DURATION_MS}_bucket"} else 0

    # scrapes that missed their timeout on a busy box leave windows without two samples (empty at both ends, which
    # proves little): ask again at a later end until at least two instants hold rows; a mismatch fails every time
    wait_until(lambda: compared_at(round(time.time() - 2, 3)) >= 2,  # every sample of these instants has landed
               timeout=90, interval=1.0, what="a 20 s stretch with rates at two instants or more, range == instant")


def _range_queries(proxy, since: int) -> int:
    """Range queries the proxy passed since its `since`-th request (a data_version fingerprint, an instant query
    asked at most once a second, may come between: it is not a chart's cost)."""
    return sum(p.startswith("/api/v1/query_range") for p in proxy.paths[since:])


def test_a_series_costs_one_request_per_metric_whatever_its_length(counted):
    be, proxy = counted
    end = time.time() - 1
    costs = {}
    for points in (5, 60):
        before = len(proxy.paths)
        got = be.rates_range(WINDOW, end - 2.0 * (points - 1), end, 2.0)
        costs[points] = len(proxy.paths) - before
        assert costs[points] == _range_queries(proxy, before)  # nothing but range queries
        assert len(got) == points
    assert costs == {5: len(RATE_METRICS), 60: len(RATE_METRICS)}
    assert be.status()["prometheus"]["state"] == "ok"


def test_side_panel_and_service_series_cost_the_same_at_20_and_60_points(counted, monkeypatch):
    be, proxy = counted
    src = PinnedSource(SimpleNamespace(backend=be), time.time() - 1)
    edge = next(e["data"] for e in src.graph("workload", None, WINDOW).elements if "source" in e["data"])
    costs = {}
    for points in (20, 60):
        monkeypatch.setattr(live_source, "SERIES_POINTS", points)
        before = len(proxy.paths)
        series = src.element_metrics(edge["id"], WINDOW, graph_type="workload")
        assert series is not None and len(series["t"]) == points
        services = src.service_metrics("productpage.bookinfo", WINDOW)
        assert services and all(len(v["t"]) == points for v in services["inbound"].values())
        costs[points] = _range_queries(proxy, before)
    # one range query per metric for each chart; the panel reused the graph the page drew
    assert costs == {20: 2 * len(RATE_METRICS), 60: 2 * len(RATE_METRICS)}
    assert src.graph_builds == 1


def test_prometheus_down_makes_series_unavailable_not_a_crash(mesh_prometheus):
    url = f"http://127.0.0.1:{free_port()}"
    be = ClusterBackend(ClusterOptions(prometheus_url=url), prometheus=PrometheusClient(url, timeout=2),
                        notify=lambda message: None)
    src = LiveSource(SimpleNamespace(backend=be))
    with pytest.raises(PrometheusUnavailable) as err:
        src.service_metrics("productpage.bookinfo", WINDOW)
    assert err.value.kind == "unreachable" and f"cannot reach Prometheus at {url}" in str(err.value)
    assert be.status()["prometheus"]["state"] == "error"
    be.prometheus = PrometheusClient(mesh_prometheus.url, timeout=10)  # back: the same backend recovers
    end = time.time() - 1
    assert isinstance(be.rates_range(WINDOW, end - 4, end, 2.0)[-1][1], pd.DataFrame)
    assert be.status()["prometheus"]["state"] == "ok"
