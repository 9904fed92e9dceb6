"""ClusterBackend.rates() against a real Debian Prometheus scraping the bundled mesh's Envoy sidecars."""
from __future__ import annotations

import re
import time

import httpx
import pandas as pd
import pytest

from collector import schema as s
from collector.sources.prom_api import PrometheusClient
from meshscope.cluster import RATE_METRICS, ClusterBackend, ClusterOptions, PrometheusUnavailable
from tests.cluster.authproxy import AuthProxy
from tests.util import free_port, wait_until

pytestmark = pytest.mark.e2e
WINDOW = 30.0


def backend(url: str, namespaces=None, **client) -> ClusterBackend:
    return ClusterBackend(ClusterOptions(prometheus_url=url, namespaces=namespaces),
                          prometheus=PrometheusClient(url, timeout=5, **client))


def query_count(prom) -> float:
    """Prometheus' own count of instant queries served (its /metrics), to count what we sent."""
    text = httpx.get(f"{prom.url}/metrics", timeout=5).text
    m = re.search(r'prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def edges(df: pd.DataFrame) -> set[tuple[str, str]]:
    req = df[(df[s.METRIC] == s.ISTIO_REQUESTS_TOTAL) & (df[s.REPORTER] == "destination")]
    return set(zip(req[s.SOURCE_WORKLOAD], req[s.DESTINATION_WORKLOAD]))


def test_rates_are_prometheus_answers_about_bookinfo(mesh_prometheus):
    from topology import build_graph

    be = backend(mesh_prometheus.url)
    df = be.rates(WINDOW)
    assert {"istio_requests_total", "istio_request_duration_milliseconds_bucket"} <= set(df[s.METRIC])
    got = edges(df)
    assert ("istio-ingressgateway", "productpage-v1") in got
    assert ("productpage-v1", "details-v1") in got
    assert {d for src, d in got if src == "productpage-v1"} >= {"details-v1"} and any(
        d.startswith("reviews-v") for src, d in got if src == "productpage-v1")
    req = df[df[s.METRIC] == s.ISTIO_REQUESTS_TOTAL]
    assert (req[s.RATE] > 0).all() and set(req[s.REPORTER]) == {"source", "destination"}
    buckets = df[df[s.METRIC].str.endswith("_bucket")]
    assert buckets[s.LE].notna().all() and (buckets[s.LE] == float("inf")).any()
    # the rate frame feeds the same graph code as the bundled mesh
    g = build_graph(df, "workload", ["bookinfo"])
    names = {d.get("workload") for _, d in g.nodes(data=True)}
    assert {"productpage-v1", "details-v1", "ratings-v1"} <= names
    st = be.status()["prometheus"]
    assert st["state"] == "ok" and st["queries"] == len(RATE_METRICS)


def test_edge_latency_is_the_same_as_from_buckets_with_every_label(mesh_prometheus):
    """Buckets come grouped without code/flags/principals: the percentiles the graph shows do not change."""
    from topology import build_graph

    def p95(df):
        g = build_graph(df, "workload", ["bookinfo"])
        return {(u, v): d.get("latency_p95_ms") for u, v, d in g.edges(data=True) if d.get("latency_p95_ms") is not None}

    def window_with_latency():  # a fresh mesh's first windows (or starved scrapes) may hold no buckets yet
        end = time.time() - 1
        ours = backend(mesh_prometheus.url).rates(WINDOW, end=end)
        return (end, ours) if p95(ours) else None

    end, ours = wait_until(window_with_latency, timeout=90, interval=2, what="a window with edge latencies")
    full = PrometheusClient(mesh_prometheus.url).istio_rates(WINDOW, end=end)  # every Istio label, per metric
    assert len(ours[ours[s.METRIC].str.endswith("_bucket")]) <= len(full[full[s.METRIC].str.endswith("_bucket")])

    mine, theirs = p95(ours), p95(full)
    assert mine and mine.keys() == theirs.keys()
    for edge, value in mine.items():
        assert value == pytest.approx(theirs[edge], rel=1e-6), edge


def test_one_query_per_metric_whatever_the_namespaces(mesh_prometheus):
    be = backend(mesh_prometheus.url, namespaces=["bookinfo", "istio-system", "other"])
    before = query_count(mesh_prometheus)
    be.rates(WINDOW)
    assert query_count(mesh_prometheus) - before == len(RATE_METRICS)


def test_namespace_selection_matches_kiali_per_namespace_union(mesh_prometheus):
    end = time.time() - 1  # the same instant for every query: answers are comparable exactly
    keys = [*s.ISTIO_LABELS, s.METRIC, s.LE]

    def frame(ns):
        df = backend(mesh_prometheus.url, namespaces=ns).rates(WINDOW, end=end)
        return df.sort_values(keys).reset_index(drop=True)

    everything = frame(None)
    bookinfo, gateway = frame(["bookinfo"]), frame(["istio-system"])
    both = frame(["bookinfo", "istio-system"])
    assert len(bookinfo) and len(gateway)
    for df, ns in ((bookinfo, "bookinfo"), (gateway, "istio-system")):
        mine = ((df[s.REPORTER] == "source") & (df[s.SOURCE_WORKLOAD_NAMESPACE] == ns)) | (
            (df[s.REPORTER] == "destination") & (df[s.DESTINATION_WORKLOAD_NAMESPACE] == ns)) | (
            df[s.DESTINATION_SERVICE].str.contains(f".{ns}.", regex=False))
        assert mine.all()
    # gateway-reported requests into bookinfo appear in both single-namespace answers: once in the union
    union = pd.concat([bookinfo, gateway]).drop_duplicates(keys).sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(both, union, check_dtype=False)
    merged = everything.merge(both, on=keys, suffixes=("", "_sel"))
    assert len(merged) == len(both) and (merged[s.RATE] == merged[f"{s.RATE}_sel"]).all()
    assert frame(["no-such-namespace"]).empty


def test_bearer_and_basic_auth_through_an_authenticating_proxy(mesh_prometheus):
    proxy = AuthProxy(mesh_prometheus.url, bearer="s3cret", user="meshscope", password="pa ss")
    try:
        assert edges(backend(proxy.url, token="s3cret").rates(WINDOW))
        assert proxy.seen[-1] == "Bearer s3cret"
        assert edges(backend(proxy.url, username="meshscope", password="pa ss").rates(WINDOW))
        assert proxy.seen[-1].startswith("Basic ")
        wrong = backend(proxy.url, token="nope")
        with pytest.raises(PrometheusUnavailable) as err:
            wrong.rates(WINDOW)
        assert err.value.kind == "auth" and "refused the credentials" in str(err.value)
        assert wrong.status()["prometheus"]["state"] == "error"
    finally:
        proxy.close()


def test_prometheus_down_is_a_status_not_a_crash(mesh_prometheus):
    notes: list[str] = []
    url = f"http://127.0.0.1:{free_port()}"
    be = ClusterBackend(ClusterOptions(prometheus_url=url), prometheus=PrometheusClient(url, timeout=2),
                        notify=notes.append)
    for _ in range(2):
        with pytest.raises(PrometheusUnavailable) as err:
            be.rates(WINDOW)
    assert err.value.kind == "unreachable" and f"cannot reach Prometheus at {url}" in str(err.value)
    st = be.status()["prometheus"]
    assert st["state"] == "error" and url in st["error"]
    assert len(notes) == 1 and notes[0].startswith("prometheus error")  # announced once, not per refresh
    # it comes back: the same backend pointed at the live server recovers and says so
    be.prometheus = PrometheusClient(mesh_prometheus.url, timeout=5)
    assert len(be.rates(WINDOW))
    assert be.status()["prometheus"]["state"] == "ok" and notes[-1].startswith("prometheus ok")
