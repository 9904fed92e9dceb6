"""The builder on small hand-written rate frames: nodes, edges, de-duplication, scope, bad input."""
import math

import pandas as pd
import pytest

from collector import schema
from topology import NodeSelector, build_graph
from topology import attrs as A
from tests.topology.frames import both, bookinfo, frame, series


def by_name(graph):
    """{(source label, target label, protocol): edge attrs} using workload/service names."""
    def name(n):
        d = graph.nodes[n]
        return d[A.WORKLOAD] or d[A.SERVICE] or d[A.APP] or d[A.NODE_TYPE]
    return {(name(s), name(t), p): d for s, t, p, d in graph.edges(keys=True, data=True)}


def test_bookinfo_workload_graph_counts_each_request_once():
    g = build_graph(bookinfo(), "workload")
    edges = by_name(g)
    assert set(edges) == {
        ("istio-ingressgateway", "productpage-v1", "http"), ("productpage-v1", "details-v1", "http"),
        ("productpage-v1", "reviews-v1", "http"), ("productpage-v1", "reviews-v2", "http"),
        ("productpage-v1", "reviews-v3", "http"), ("reviews-v2", "ratings-v1", "http"), ("reviews-v3", "ratings-v1", "http"),
    }
    # reported by both proxies, counted once
    assert edges[("productpage-v1", "details-v1", "http")][A.RATE] == pytest.approx(10.0)
    pp = next(d for _, d in g.nodes(data=True) if d[A.WORKLOAD] == "productpage-v1")
    assert pp[A.RATES] == {"httpIn": 10.0, "httpOut": 20.0}
    gw = next(d for _, d in g.nodes(data=True) if d[A.WORKLOAD] == "istio-ingressgateway")
    assert gw[A.IS_ROOT] and not pp.get(A.IS_ROOT)


def test_series_split_by_labels_kiali_ignores_are_summed():
    df = frame(series("a-v1", "b-v1", 3.0, csp="mutual_tls"), series("a-v1", "b-v1", 1.0, csp="none"))
    edges = by_name(build_graph(df, appenders=[]))
    assert edges[("a-v1", "b-v1", "http")][A.RATE] == pytest.approx(4.0)


def test_source_only_failures_are_kept_and_flags_recorded():
    df = frame(both("a-v1", "b-v1", 9.0), series("a-v1", "b-v1", 1.0, reporter="source", code="503", flags="UC"))
    e = by_name(build_graph(df))[("a-v1", "b-v1", "http")]
    assert e[A.RATE] == pytest.approx(10.0)
    assert e[A.EDGE_RATES]["http5xx"] == pytest.approx(1.0)
    assert e[A.RESPONSES]["503"]["flags"] == {"UC": 1.0}
    assert e[A.RESPONSE_FLAGS] == {"UC": 1.0}
    assert e[A.PERCENT_ERR] == pytest.approx(10.0)


def test_unknown_source_and_unserved_destination():
    df = frame(series("unknown", "productpage-v1", 2.0),
               series("productpage-v1", "unknown", 1.0, reporter="source", code="404", flags="NR"))
    g = build_graph(df, appenders=[])
    kinds = sorted(d[A.NODE_TYPE] for _, d in g.nodes(data=True))
    assert kinds == ["service", "unknown", "workload"]


def test_app_graph_merges_versions_and_service_graph_reduces_to_services():
    g = build_graph(bookinfo(), "app", appenders=[])
    edges = by_name(g)
    assert edges[("reviews", "ratings", "http")][A.RATE] == pytest.approx(7.0)
    assert edges[("productpage", "reviews", "http")][A.RATE] == pytest.approx(10.0)
    s = build_graph(bookinfo(), "service", appenders=[])
    types = {d[A.NODE_TYPE] for _, d in s.nodes(data=True)}
    assert types == {"service", "workload"}  # services plus the root gateway workload
    sedges = by_name(s)
    assert sedges[("reviews", "ratings", "http")][A.RATE] == pytest.approx(7.0)
    assert ("istio-ingressgateway", "productpage", "http") in sedges


def test_injected_service_nodes_split_edges():
    g = build_graph(bookinfo(), "workload", inject_service_nodes=True, appenders=[])
    edges = by_name(g)
    assert edges[("productpage-v1", "reviews", "http")][A.RATE] == pytest.approx(10.0)
    assert edges[("reviews", "reviews-v3", "http")][A.RATE] == pytest.approx(4.0)
    svc = next(d for _, d in g.nodes(data=True) if d[A.SERVICE] == "reviews")
    assert svc[A.IS_INJECTED]


def test_namespace_scope_and_node_graph():
    df = pd.concat([bookinfo(), frame(both("x-v1", "y-v1", 5.0, src_ns="other", dst_ns="other"))], ignore_index=True)
    all_ns = {d[A.WORKLOAD] for _, d in build_graph(df, appenders=[]).nodes(data=True)}
    assert {"x-v1", "y-v1"} <= all_ns
    scoped = build_graph(df, namespaces=["bookinfo"], appenders=[])
    names = {d[A.WORKLOAD] for _, d in scoped.nodes(data=True)}
    assert "x-v1" not in names and "ratings-v1" in names
    gw = next(d for _, d in scoped.nodes(data=True) if d[A.WORKLOAD] == "istio-ingressgateway")
    assert gw[A.IS_OUTSIDE]
    node = build_graph(df, node=NodeSelector("workload", "bookinfo", "reviews-v2"), appenders=[])
    assert set(by_name(node)) == {("productpage-v1", "reviews-v2", "http"), ("reviews-v2", "ratings-v1", "http")}


def test_bad_telemetry_is_counted_and_skipped_without_losing_the_rest():
    rows = bookinfo()
    bad = frame(series("a-v1", "b-v1", float("nan")), series("a-v1", "b-v1", 1.0, protocol="carrier-pigeon"),
                # source namespace known but neither workload nor app: Kiali's "bad source telemetry"
                {**series("x-v1", "b-v1", 1.0), schema.SOURCE_WORKLOAD: "unknown", schema.SOURCE_CANONICAL_SERVICE: "unknown",
                 schema.SOURCE_APP: "unknown"})
    g = build_graph(pd.concat([rows, bad], ignore_index=True))
    assert g.graph[A.SKIPPED_SERIES] >= 2
    assert by_name(g)[("productpage-v1", "details-v1", "http")][A.RATE] == pytest.approx(10.0)
    clean = build_graph(rows)
    assert g.number_of_edges() == clean.number_of_edges()  # the NaN series carried no traffic: no edge drawn


def test_frame_without_rate_column_is_a_clear_error():
    with pytest.raises(ValueError, match="lacks column"):
        build_graph(pd.DataFrame({"metric": ["istio_requests_total"]}))


def test_empty_frame_gives_empty_graph():
    g = build_graph(bookinfo().iloc[0:0])
    assert g.number_of_nodes() == 0 and g.number_of_edges() == 0


def test_tcp_uses_received_bytes_for_sent_mode():
    df = frame(series("a-v1", "b-v1", 100.0, metric=schema.ISTIO_TCP_RECEIVED_BYTES, protocol="tcp"),
               series("a-v1", "b-v1", 7.0, metric=schema.ISTIO_TCP_SENT_BYTES, protocol="tcp"))
    e = by_name(build_graph(df))[("a-v1", "b-v1", "tcp")]
    assert e[A.RATE] == pytest.approx(100.0) and e[A.THROUGHPUT] == pytest.approx(100.0)
    assert e[A.HEALTH_COLOR] == "blue"
    assert not math.isnan(e[A.PERCENT_REQ])


def test_merged_versions_are_separate_contributions_even_across_reporters():
    # reviews-v2 is seen only by the destination proxy, reviews-v3 only by its own (source) proxy;
    # in the app graph both land on reviews -> ratings and must add up, not de-duplicate
    df = frame(series("reviews-v2", "ratings-v1", 3.0, reporter="destination"),
               series("reviews-v3", "ratings-v1", 4.0, reporter="source"))
    assert by_name(build_graph(df, "app", appenders=[]))[("reviews", "ratings", "http")][A.RATE] == pytest.approx(7.0)


def test_idle_edges_are_hidden_unless_asked_for():
    df = pd.concat([bookinfo(), frame(both("productpage-v1", "old-v1", 0.0))], ignore_index=True)
    assert "old-v1" not in {d[A.WORKLOAD] for _, d in build_graph(df).nodes(data=True)}
    shown = by_name(build_graph(df, include_idle_edges=True))
    assert shown[("productpage-v1", "old-v1", "http")][A.RATE] == 0.0


@pytest.mark.parametrize("client, server", [
    (("504", "UT"), ("0", "DC")),  # the caller's route timeout: the server saw the caller go away
    (("503", "URX"), ("503", "-")),  # retries: the server answered each attempt, the caller saw one request
    (("200", "-"), ("0", "DC")),  # a caller-side reset after the answer: the caller still counts one request
])
def test_a_request_both_sides_saw_differently_is_counted_once(client, server):
    """Kiali's fingerprint de-duplication adds the two sides' differing series; one reporter per edge does not."""
    df = frame(both("a-v1", "b-v1", 6.0),
               series("a-v1", "b-v1", 4.0, reporter="source", code=client[0], flags=client[1]),
               series("a-v1", "b-v1", 4.0, reporter="destination", code=server[0], flags=server[1]))
    for graph_type in ("workload", "app", "service"):
        edges = by_name(build_graph(df, graph_type))
        into_b = [e for (s, t, p), e in edges.items() if t in ("b-v1", "b") and s != t]
        assert len(into_b) == 1 and into_b[0][A.RATE] == pytest.approx(10.0), graph_type
        codes = {c: sum(r["flags"].values()) for c, r in into_b[0][A.RESPONSES].items()}
        assert codes.get(client[0], 0) == pytest.approx(4.0 + (6.0 if client[0] == "200" else 0.0))
    if client[0] != "200":  # the Kiali-compatible mode keeps its double count of differing fingerprints
        assert by_name(build_graph(df, one_reporter=False))[("a-v1", "b-v1", "http")][A.RATE] == pytest.approx(14.0)


def test_server_side_series_count_when_the_caller_does_not_report():
    df = frame(series("unknown", "b-v1", 5.0, reporter="destination"), series("a-v1", "b-v1", 2.0, reporter="destination"))
    edges = by_name(build_graph(df, appenders=[]))
    assert edges[("unknown", "b-v1", "http")][A.RATE] == pytest.approx(5.0)
    assert edges[("a-v1", "b-v1", "http")][A.RATE] == pytest.approx(2.0)


def test_mtls_share_counts_the_requests_that_failed_before_the_server():
    """A caller's plaintext refused on connect leaves no server-side series: those requests are not mTLS."""
    df = frame(series("a-v1", "b-v1", 10.0, reporter="source", code="503", flags="UC", csp="unknown"))
    e = by_name(build_graph(df))[("a-v1", "b-v1", "http")]
    assert e[A.MTLS_PERCENT] == 0.0 and e[A.MTLS_MEASURED_RATE] == pytest.approx(10.0)
    half = frame(both("a-v1", "b-v1", 5.0, csp="mutual_tls"),
                 series("a-v1", "b-v1", 5.0, reporter="source", code="503", flags="UC", csp="unknown"))
    assert by_name(build_graph(half))[("a-v1", "b-v1", "http")][A.MTLS_PERCENT] == pytest.approx(50.0)
    full = by_name(build_graph(frame(both("a-v1", "b-v1", 5.0, csp="mutual_tls"))))[("a-v1", "b-v1", "http")]
    assert full[A.MTLS_PERCENT] == pytest.approx(100.0)
