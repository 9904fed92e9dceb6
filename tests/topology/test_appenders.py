"""Each appender on a small graph built from a hand-written frame (and a real config snapshot)."""
import math

import numpy as np
import pandas as pd
import pytest

from collector import schema
from collector.query import histogram_quantile
from mesh.config import Snapshot, load_text
from topology import HealthConfig, build_graph, build_pipeline
from topology import attrs as A
from topology.health import HealthRule, LatencyLimit, Tolerance, parse_annotation
from tests.topology.frames import both, bookinfo, buckets, frame, series
from tests.topology.test_build import by_name

CONFIG = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: details-v1, namespace: bookinfo}
spec:
  replicas: 0
  template:
    metadata: {labels: {app: details, version: v1}}
    spec: {containers: [{name: details, image: details}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mongodb-v1, namespace: bookinfo}
spec:
  template:
    metadata: {labels: {app: mongodb, version: v1}}
    spec: {containers: [{name: mongodb, image: mongo}]}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo, annotations: {"health.kiali.io/rate": "5xx,30,50,http,inbound"}}
spec: {selector: {app: ratings}, ports: [{port: 9080}]}
"""


@pytest.fixture(scope="module")
def snapshot():
    result = load_text(CONFIG, "bookinfo.yaml")
    assert not result.problems
    return Snapshot(result.objects)


def node(graph, workload):
    return next(d for _, d in graph.nodes(data=True) if d[A.WORKLOAD] == workload)


def test_pipeline_orders_and_rejects_unknown_names():
    names = [a.name for a in build_pipeline(None)]
    assert names[-2:] == ["outsider", "trafficGenerator"] and names.index("deadNode") < names.index("health")
    assert [a.name for a in build_pipeline([])] == ["outsider", "trafficGenerator"]
    with pytest.raises(ValueError, match="unknown appender"):
        build_pipeline(["health", "sparkles"])
    with pytest.raises(ValueError, match="not accepted"):
        build_pipeline(["health"], quantiles=(0.5,))
    assert build_pipeline(["responseTime"], quantiles=(0.5,))[0].quantiles == (0.5,)


def test_health_defaults_follow_kiali_thresholds():
    df = frame(both("a-v1", "b-v1", 95.0), both("a-v1", "b-v1", 5.0, code="500"),  # 5 % 5xx: degraded
               both("a-v1", "c-v1", 88.0), both("a-v1", "c-v1", 12.0, code="503"),  # 12 % 5xx: failing
               both("a-v1", "d-v1", 85.0), both("a-v1", "d-v1", 15.0, code="404"),  # 15 % 4xx: degraded
               both("a-v1", "e-v1", 95.0), both("a-v1", "e-v1", 5.0, code="404"),  # 5 % 4xx: healthy
               both("a-v1", "f-v1", 99.0), both("a-v1", "f-v1", 1.0, code="0"))  # no response: degraded
    edges = by_name(build_graph(df))
    got = {t: (e[A.HEALTH], e[A.HEALTH_COLOR]) for (_, t, _), e in edges.items()}
    assert got == {"b-v1": ("Degraded", "amber"), "c-v1": ("Failure", "red"), "d-v1": ("Degraded", "amber"),
                   "e-v1": ("Healthy", "green"), "f-v1": ("Degraded", "amber")}
    assert "5XX 12.0%" in edges[("a-v1", "c-v1", "http")][A.HEALTH_REASON]
    g = build_graph(df)
    # a node is judged on all its outbound requests together: 17 5xx of 500 = 3.4 %, degraded not failing
    assert node(g, "a-v1")[A.HEALTH] == "Degraded"
    assert node(g, "c-v1")[A.HEALTH] == "Failure"
    assert node(g, "e-v1")[A.HEALTH] == "Healthy"


def test_health_thresholds_configurable_per_namespace_and_by_annotation(snapshot):
    df = frame(both("reviews-v2", "ratings-v1", 80.0), both("reviews-v2", "ratings-v1", 20.0, code="500"))
    assert by_name(build_graph(df))[("reviews-v2", "ratings-v1", "http")][A.HEALTH] == "Failure"
    lenient = HealthConfig([HealthRule((Tolerance("5XX", 25, 50),), namespace="bookinfo")])
    e = by_name(build_graph(df, health=lenient))[("reviews-v2", "ratings-v1", "http")]
    assert e[A.HEALTH] == "Healthy"
    other_ns = HealthConfig([HealthRule((Tolerance("5XX", 25, 50),), namespace="prod")])
    assert by_name(build_graph(df, health=other_ns))[("reviews-v2", "ratings-v1", "http")][A.HEALTH] == "Failure"
    assert parse_annotation("5xx,30,50,http,inbound;bogus;4xx,50,10") == (Tolerance("5xx", 30, 50, "http", "inbound"),)
    cfg = HealthConfig.from_dict({"rate": [{"namespace": "bookinfo", "tolerance": [{"code": "5XX", "degraded": 1, "failure": 2}]}]})
    assert cfg.tolerances_for("bookinfo", "workload", "x")[0].failure == 2
    with pytest.raises(ValueError, match="health rate rule 0"):
        HealthConfig.from_dict({"rate": [{"tolerance": [{"code": "5XX"}]}]})


def test_error_rate_and_response_flags():
    df = frame(both("a-v1", "b-v1", 6.0), series("a-v1", "b-v1", 2.0, reporter="source", code="503", flags="URX,UF"),
               both("a-v1", "b-v1", 2.0, code="404", flags="NR"))
    e = by_name(build_graph(df))[("a-v1", "b-v1", "http")]
    assert e[A.RATE_BY_CLASS] == {"2xx": 6.0, "5xx": 2.0, "4xx": 2.0}
    assert e[A.ERROR_RATE] == pytest.approx(0.4)
    assert e[A.RESPONSE_FLAGS] == {"URX": 2.0, "UF": 2.0, "NR": 2.0}
    assert e[A.FLAGGED_RATE] == pytest.approx(4.0)


def test_response_time_percentiles_match_prometheus_method():
    hist = [(5.0, 10.0), (10.0, 60.0), (50.0, 95.0), (100.0, 99.0), (math.inf, 100.0)]
    df = frame(both("a-v1", "b-v1", 100.0), buckets("a-v1", "b-v1", hist))
    e = by_name(build_graph(df))[("a-v1", "b-v1", "http")]
    ref = pd.DataFrame({"le": [b for b, _ in hist], "rate": [c for _, c in hist]})
    for q, attr in ((0.5, A.LATENCY_P50), (0.95, A.LATENCY_P95), (0.99, A.LATENCY_P99)):
        assert e[attr] == pytest.approx(histogram_quantile(q, ref)["value"][0])
    assert e[A.LATENCY_P50] == pytest.approx(9.0)  # 50 of 100 falls 40/50 into (5, 10]


def test_latency_moves_when_requests_slow_down():
    fast = frame(both("a-v1", "b-v1", 10.0), buckets("a-v1", "b-v1", [(10.0, 9.0), (100.0, 10.0), (5000.0, 10.0), (math.inf, 10.0)]))
    slow = frame(both("a-v1", "b-v1", 10.0), buckets("a-v1", "b-v1", [(10.0, 0.0), (100.0, 0.0), (5000.0, 10.0), (math.inf, 10.0)]))
    p95 = [by_name(build_graph(f))[("a-v1", "b-v1", "http")][A.LATENCY_P95] for f in (fast, slow)]
    assert p95[0] < 100 < 2000 < p95[1]


def test_mtls_share_sums_merged_edges_and_flags_strict_mismatch(snapshot):
    # reviews v1 talks mTLS (10 rps), v2 plaintext (30 rps): the app edge is 25 % mTLS, not "locked"
    df = frame(series("reviews-v1", "ratings-v1", 10.0, csp="mutual_tls"), series("reviews-v2", "ratings-v1", 30.0, csp="none"))
    e = by_name(build_graph(df, "app", snapshot=snapshot))[("reviews", "ratings", "http")]
    assert e[A.MTLS_PERCENT] == pytest.approx(25.0)
    assert e[A.MTLS_INTENT] == "STRICT" and e[A.MTLS_MISMATCH] is True
    ok = frame(both("reviews-v1", "ratings-v1", 10.0))
    e2 = by_name(build_graph(ok, snapshot=snapshot))[("reviews-v1", "ratings-v1", "http")]
    assert e2[A.MTLS_PERCENT] == pytest.approx(100.0) and e2[A.MTLS_MISMATCH] is False
    # client sends plaintext to a STRICT server: only the source sees the resets (UC)
    reset = frame(series("reviews-v2", "ratings-v1", 5.0, reporter="source", code="503", flags="UC"))
    e3 = by_name(build_graph(reset, snapshot=snapshot))[("reviews-v2", "ratings-v1", "http")]
    assert e3[A.MTLS_MISMATCH] is True and e3[A.HEALTH] == "Failure" and e3[A.RESPONSE_FLAGS] == {"UC": 5.0}
    no_config = by_name(build_graph(reset))[("reviews-v2", "ratings-v1", "http")]
    assert A.MTLS_MISMATCH not in no_config


@pytest.mark.parametrize("rows, want", [
    # the two reporters' sampled rates differ a little: the share comes from the server's own labels
    ([series("a-v1", "b-v1", 10.4, reporter="source"), series("a-v1", "b-v1", 10.0)], 100.0),
    # plaintext refused on connect: the server never saw 4 of 10, so they count as not mutual TLS
    ([series("a-v1", "b-v1", 6.0, reporter="source"), series("a-v1", "b-v1", 4.0, reporter="source", code="503",
                                                             flags="UC"), series("a-v1", "b-v1", 6.0)], 60.0),
    # resets the server did see and report (its DC rows): not counted twice
    ([series("a-v1", "b-v1", 6.0, reporter="source"), series("a-v1", "b-v1", 4.0, reporter="source", code="503",
                                                             flags="UC"),
      series("a-v1", "b-v1", 6.0), series("a-v1", "b-v1", 4.0, code="0", flags="DC")], 100.0),
    # requests that never tried to connect (overflow, no healthy host) say nothing about the connection
    ([series("a-v1", "b-v1", 6.0, reporter="source"), series("a-v1", "b-v1", 4.0, reporter="source", code="503",
                                                             flags="UO"), series("a-v1", "b-v1", 6.0)], 100.0),
    # every request refused in plaintext: 0 %, not "full"
    ([series("a-v1", "b-v1", 5.0, reporter="source", code="503", flags="UC")], 0.0),
])
def test_mtls_share_is_over_requests_that_had_or_tried_a_connection(rows, want):
    e = by_name(build_graph(frame(*rows)))[("a-v1", "b-v1", "http")]
    assert e[A.MTLS_PERCENT] == pytest.approx(want)


@pytest.mark.parametrize("graph_type", ["workload", "app", "service"])
@pytest.mark.parametrize("slow_share, want", [(0.0, "Healthy"), (0.05, "Degraded"), (0.5, "Failure")])
def test_latency_objectives_colour_edges_and_nodes_as_errors_do(graph_type, slow_share, want):
    # 10 rps into ratings, no errors; `slow_share` of them take 250-1000 ms against "99 % within 250 ms"
    df = frame(both("reviews-v2", "ratings-v1", 10.0), both("productpage-v1", "details-v1", 10.0),
               buckets("reviews-v2", "ratings-v1", [(100.0, 10.0 * (1 - slow_share)), (250.0, 10.0 * (1 - slow_share)),
                                                    (1000.0, 10.0), (math.inf, 10.0)]),
               buckets("productpage-v1", "details-v1", [(100.0, 0.0), (1000.0, 10.0), (math.inf, 10.0)]))
    limits = (LatencyLimit("ratings", "bookinfo", 250.0, 99.0, source="SLO ratings-latency"),)
    g = build_graph(df, graph_type, health=HealthConfig(latency=limits))
    into = [d for _, t, d in g.edges(data=True) if "ratings" in (g.nodes[t][A.APP], g.nodes[t][A.SERVICE])]
    timed = [d for d in into if A.LATENCY_P99 in d]  # the edge that carries the latency (service -> workload)
    assert timed and all(d[A.HEALTH] == want and d[A.ERROR_RATE] == 0 for d in timed)
    edge = timed[0]
    dest = [d for _, d in g.nodes(data=True) if d[A.APP] == "ratings" or d[A.SERVICE] == "ratings"]
    if want == "Healthy":
        assert edge[A.HEALTH_REASON] == "" and all(d[A.HEALTH] == "Healthy" for d in dest)
    else:
        q = "p99" if want == "Degraded" else "p90"
        assert edge[A.HEALTH_REASON].startswith(f"latency {q} ") and "250 ms" in edge[A.HEALTH_REASON]
        assert "SLO ratings-latency" in edge[A.HEALTH_REASON]
        assert any(d[A.HEALTH] == want and d[A.HEALTH_REASON].startswith("inbound latency") for d in dest)
    # details is just as slow but has no latency objective: latency alone colours nothing
    other = [d for _, t, d in g.edges(data=True) if "details" in (g.nodes[t][A.APP], g.nodes[t][A.SERVICE])]
    assert other and all(d[A.HEALTH] == "Healthy" for d in other)
    # without the objective the same traffic is healthy
    plain = build_graph(df, graph_type)
    assert all(d[A.HEALTH] == "Healthy" for _, _, d in plain.edges(data=True))


def test_config_badges_idle_and_dead_nodes(snapshot):
    df = bookinfo()
    g = build_graph(df, snapshot=snapshot)
    assert node(g, "ratings-v1")[A.BADGES] == ["FAULT", "MTLS_STRICT", "VS"]
    assert "CB" in node(g, "reviews-v2")[A.BADGES] and "DR" in node(g, "reviews-v2")[A.BADGES]
    idle = node(g, "mongodb-v1")
    assert idle[A.IS_IDLE] and idle[A.HEALTH_COLOR] == "grey" and g.degree(next(n for n, d in g.nodes(data=True) if d is idle)) == 0
    assert node(g, "details-v1")[A.IS_DEAD]  # scaled to zero replicas but still answering in this window
    # a quiet node whose workload no longer exists is pruned
    quiet = pd.concat([df, frame(both("productpage-v1", "gone-v1", 0.0))], ignore_index=True)
    names = {d[A.WORKLOAD] for _, d in build_graph(quiet, snapshot=snapshot, include_idle_edges=True).nodes(data=True)}
    assert "gone-v1" not in names
    assert "gone-v1" in {d[A.WORKLOAD] for _, d in build_graph(quiet, include_idle_edges=True).nodes(data=True)}


def test_circuit_breaker_trip_hint(snapshot):
    df = frame(both("productpage-v1", "reviews-v2", 8.0), series("productpage-v1", "reviews-v2", 2.0, reporter="source",
                                                                   code="503", flags="UO"))
    e = by_name(build_graph(df, snapshot=snapshot))[("productpage-v1", "reviews-v2", "http")]
    assert e[A.CB_TRIPPED] is True


def test_throughput_uses_response_bytes():
    df = frame(both("a-v1", "b-v1", 10.0), series("a-v1", "b-v1", 2048.0, metric=schema.ISTIO_RESPONSE_BYTES + "_sum"))
    assert by_name(build_graph(df))[("a-v1", "b-v1", "http")][A.THROUGHPUT] == pytest.approx(2048.0)


def test_quantiles_agree_with_collector_histogram_quantile():
    from topology.quantile import quantiles

    rng = np.random.default_rng(3)
    rows = []
    for g in range(300):
        les = [1, 5, 10, 50, 100, np.inf]
        c = np.cumsum(rng.integers(0, 5, len(les))).astype(float)
        if g % 7 == 0:
            les, c = les[:-1], c[:-1]  # no +Inf bucket: undefined
        if g % 11 == 0:
            c = c * 0  # no observations: undefined
        rows += [(g, b, v) for b, v in zip(les, c)]
    df = pd.DataFrame(rows, columns=["grp", "le", "rate"])
    ids, vals = quantiles(df["grp"].to_numpy(), df["le"].to_numpy(), df["rate"].to_numpy(), (0.5, 0.9, 0.99))
    for q in (0.5, 0.9, 0.99):
        ref = histogram_quantile(q, df, by=["grp"]).set_index("grp")["value"].reindex(ids).to_numpy()
        np.testing.assert_allclose(vals[q], ref, equal_nan=True)


def test_latency_is_what_the_caller_saw():
    # a client-side fault delay shows only in source-reported durations
    df = frame(both("a-v1", "b-v1", 10.0),
               buckets("a-v1", "b-v1", [(10.0, 10.0), (500.0, 10.0), (math.inf, 10.0)]),
               buckets("a-v1", "b-v1", [(10.0, 0.0), (500.0, 10.0), (math.inf, 10.0)], reporter="source"),
               series("unknown", "b-v1", 10.0), buckets("unknown", "b-v1", [(10.0, 10.0), (math.inf, 10.0)]))
    edges = by_name(build_graph(df))
    assert edges[("a-v1", "b-v1", "http")][A.LATENCY_P50] == pytest.approx(255.0)
    assert edges[("unknown", "b-v1", "http")][A.LATENCY_P50] == pytest.approx(5.0)  # no source proxy: destination's view


def test_service_entries_and_egress_catch_alls_are_marked():
    se = load_text("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: bookinfo}
spec: {hosts: [httpbin.org], location: MESH_EXTERNAL, ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
""", "se.yaml")
    df = frame(series("reviews-v1", "unknown", 2.0, reporter="source", service="httpbin.org"),
               series("reviews-v1", "unknown", 1.0, reporter="source", service="PassthroughCluster"))
    # unknown destinations with a service name: what sidecars report for traffic leaving the mesh
    df["destination_service"] = ["httpbin.org", "PassthroughCluster"]
    df["destination_service_namespace"] = ["bookinfo", "bookinfo"]
    g = build_graph(df, snapshot=Snapshot(se.objects))
    marks = {d[A.SERVICE]: (d.get(A.IS_SERVICE_ENTRY), d.get(A.IS_EGRESS_CLUSTER)) for _, d in g.nodes(data=True)
             if d[A.NODE_TYPE] == "service"}
    assert marks["httpbin.org"][0] == {"name": "bookinfo/httpbin", "hosts": ["httpbin.org"], "location": "MESH_EXTERNAL"}
    assert marks["PassthroughCluster"] == (None, True)
    assert all(d.get(A.IS_INACCESSIBLE) for _, d in g.nodes(data=True) if d[A.SERVICE] == "PassthroughCluster")


def test_a_node_says_whose_requests_decided_its_health():
    """Failing on its calls (outbound) with clean inbound traffic: the reason says outbound, not a 0.0 % puzzle."""
    df = frame(both("a-v1", "b-v1", 10.0), both("b-v1", "c-v1", 6.0), both("b-v1", "c-v1", 4.0, code="503"))
    g = build_graph(df)
    b = node(g, "b-v1")
    assert b[A.HEALTH] == "Failure" and b[A.HEALTH_REASON].startswith("outbound 5XX 40.0%")
    assert node(g, "c-v1")[A.HEALTH_REASON].startswith("inbound 5XX 40.0%")


def test_a_service_whose_workloads_only_send_is_not_idle():
    snap = Snapshot(load_text("""
apiVersion: v1
kind: Service
metadata: {name: edge-gw, namespace: bookinfo}
spec: {selector: {app: edge-gw}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: edge-gw-v1, namespace: bookinfo}
spec: {template: {metadata: {labels: {app: edge-gw, version: v1}}}}
---
apiVersion: v1
kind: Service
metadata: {name: quiet, namespace: bookinfo}
spec: {selector: {app: quiet}, ports: [{port: 80}]}
""", "t.yaml").objects)
    g = build_graph(frame(both("edge-gw-v1", "b-v1", 7.0)), "service", snapshot=snap)
    svc = {d[A.SERVICE]: d for _, d in g.nodes(data=True) if d[A.NODE_TYPE] == "service"}
    assert not svc["edge-gw"].get(A.IS_IDLE) and svc["edge-gw"][A.RATES]["httpOut"] == pytest.approx(7.0)
    assert svc["quiet"][A.IS_IDLE]
