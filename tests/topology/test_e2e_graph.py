"""End to end on the shared bundled mesh: scrape the real Envoy sidecars, build the graph, break things.

Each phase scrapes into a fresh store, so the window holds only traffic seen
after the phase's config took effect.
"""
from __future__ import annotations

import pytest

from collector.query import istio_rates
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore
from topology import build_graph
from topology import attrs as A
from tests.util import wait_until

pytestmark = pytest.mark.e2e

BOOKINFO_EDGES = {
    ("productpage-v1", "details-v1"), ("productpage-v1", "reviews-v1"), ("productpage-v1", "reviews-v2"),
    ("productpage-v1", "reviews-v3"), ("reviews-v2", "ratings-v1"), ("reviews-v3", "ratings-v1"),
}


def named_edges(graph):
    def name(n):
        d = graph.nodes[n]
        return d[A.WORKLOAD] or d[A.SERVICE] or d[A.NODE_TYPE]
    return {(name(s), name(t)): d for s, t, _, d in graph.edges(keys=True, data=True)}


def graph_when(mesh, predicate, what, timeout=90.0, window=20.0):
    """Scrape into a fresh store until the graph of the last `window` seconds satisfies `predicate`."""
    store = TelemetryStore()
    scraper = Scraper(mesh.scrape_targets, store, interval=1.0)
    try:
        def ready():
            scraper.poll()
            g = build_graph(istio_rates(store, window), "workload", snapshot=mesh.snapshot())
            return (g,) if predicate(g) else None
        (graph,) = wait_until(ready, timeout=timeout, interval=1.0, what=what)
    finally:
        scraper.stop()
    return graph


def test_bookinfo_graph_is_complete_and_green(bundled_mesh):
    # requests still in flight when an earlier test cleared its scenario (or finishing on a draining listener)
    # can land in the first scrapes: wait for a window of healthy traffic, as an operator would after a fix
    def complete_and_healthy(g):
        edges = named_edges(g)
        return BOOKINFO_EDGES <= set(edges) and all(edges[k][A.HEALTH] == "Healthy" for k in BOOKINFO_EDGES)

    graph = graph_when(bundled_mesh, complete_and_healthy, "every Bookinfo edge, healthy", timeout=120)
    edges = named_edges(graph)
    gateway_edges = [k for k in edges if k[1] == "productpage-v1" and k[0] != "productpage-v1"]
    assert gateway_edges, "the ingress gateway's traffic into productpage is in the graph"
    for key in BOOKINFO_EDGES:
        e = edges[key]
        assert e[A.RATE] > 0 and e[A.HEALTH] == "Healthy" and e[A.HEALTH_COLOR] == "green", (key, e[A.HEALTH_REASON])
        assert e[A.MTLS_PERCENT] == pytest.approx(100.0)
        assert not e[A.MTLS_MISMATCH]
    roots = [d[A.WORKLOAD] for _, d in graph.nodes(data=True) if d.get(A.IS_ROOT)]
    assert roots and all("gateway" in r or r == "unknown" for r in roots)


def test_mtls_mismatch_turns_the_edge_red_with_uc_and_flags_intent(bundled_mesh, mesh_scenario):
    scenario = mesh_scenario("mtls-mismatch")
    source, host = scenario.edge
    service = host.split(".")[0]

    def hurt(g):
        return [e for (s, t), e in named_edges(g).items()
                if s == source and t.startswith(service) and e[A.RESPONSE_FLAGS].get("UC", 0) > 0]

    graph = graph_when(bundled_mesh, lambda g: hurt(g) and all(e[A.HEALTH] == "Failure" for e in hurt(g)),
                       f"{source} -> {service} failing with UC")
    for e in hurt(graph):
        assert e[A.HEALTH_COLOR] == "red"
        assert e[A.MTLS_INTENT] == "STRICT" and e[A.MTLS_MISMATCH] is True


def test_fault_delay_moves_latency_percentiles(bundled_mesh, mesh_scenario):
    def p50(g, src):
        e = named_edges(g).get((src, "ratings-v1"))
        return e.get(A.LATENCY_P50) if e else None

    before = graph_when(bundled_mesh, lambda g: p50(g, "reviews-v2") is not None, "baseline ratings latency")
    base = p50(before, "reviews-v2")
    assert base < 250
    scenario = mesh_scenario("fault-delay")
    source = scenario.edge[0]
    after = graph_when(bundled_mesh, lambda g: (p50(g, source) or 0) >= 250, "delayed ratings latency", window=10.0)
    e = named_edges(after)[(source, "ratings-v1")]
    assert e[A.LATENCY_P50] >= 250 and e[A.LATENCY_P95] >= e[A.LATENCY_P50]
