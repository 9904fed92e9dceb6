"""Aggregation invariants on synthetic meshes: every request counted once, worst health wins, ids stable."""
from collections import defaultdict

import pytest

from dashboard.elements import from_topology
from topology import build_graph, to_cytoscape
from topology.aggregate import HEALTH_RANK, aggregate, app_id, is_aggregate_id, namespace_id
from topology.synthetic import synthetic_rates


def records(graph_type="workload", seed=11, **kw):
    size = dict(workloads=240, services=60, edges=700, namespaces=6)
    size.update(kw)
    return from_topology(to_cytoscape(build_graph(synthetic_rates(seed=seed, error_share=0.2, **size), graph_type)))


@pytest.fixture(scope="module")
def mesh():
    return records()


def rate_by_protocol(edges):
    out = defaultdict(float)
    for e in edges:
        out[e["protocol"]] += e["rps"]
    return out


def check_counted_once(nodes, edges, rolled):
    """Aggregate edges + internal traffic = the expanded graph's traffic, per protocol; no dangling edges."""
    totals = rate_by_protocol(rolled.edges)
    for inside in rolled.internal.values():
        for proto, rate in inside.items():
            totals[proto] += rate
    for proto, rate in rate_by_protocol(edges).items():
        assert totals[proto] == pytest.approx(rate, rel=1e-9)
    ids = {n["id"] for n in rolled.nodes}
    assert len(ids) == len(rolled.nodes)
    assert all(e["source"] in ids and e["target"] in ids for e in rolled.edges)
    assert all(n.get("parent") in (None, *ids) for n in rolled.nodes)


@pytest.mark.parametrize("level,expand", [("namespace", ()), ("namespace", ("agg:ns:ns2",)), ("app", ()),
                                          ("namespace", ("agg:app:ns1/svc7",)), ("app", ("agg:app:ns3/svc9",))])
def test_every_request_is_counted_once(mesh, level, expand):
    nodes, edges = mesh
    check_counted_once(nodes, edges, aggregate(nodes, edges, level, expand))


@pytest.mark.parametrize("graph_type", ["app", "versionedApp", "service"])
def test_other_graph_types_aggregate_too(graph_type):
    nodes, edges = records(graph_type, workloads=120, services=30, edges=300, namespaces=4)
    for level in ("namespace", "app"):
        rolled = aggregate(nodes, edges, level)
        check_counted_once(nodes, edges, rolled)
        if level == "namespace":  # an app graph's apps are single nodes already: nothing to group at app level
            assert any(n["type"] == "aggregate" for n in rolled.nodes)


def test_worst_member_health_wins_with_counts_and_rolled_numbers(mesh):
    nodes, edges = mesh
    rolled = aggregate(nodes, edges)
    by_id = {n["id"]: n for n in nodes}
    aggs = [n for n in rolled.nodes if n["type"] == "aggregate"]
    assert len(aggs) == 6
    for agg in aggs:
        members = [by_id[m] for m in rolled.members(agg["id"])]
        assert agg["members"] == len(members) and all(m["namespace"] == agg["namespace"] for m in members)
        assert agg["health"] == max((m["health"] for m in members), key=HEALTH_RANK.get)
        assert sum(agg["health_counts"].values()) == len(members)
        rps = sum(m["rps_in"] for m in members)
        assert agg["rps_in"] == pytest.approx(rps, abs=1e-3)
        err = sum(m["rps_in"] * m["error_pct"] for m in members) / rps
        assert agg["error_pct"] == pytest.approx(err, abs=0.051)
        worst = agg["worst"]
        assert worst and worst[0]["health"] == agg["health"]
        assert [HEALTH_RANK[w["health"]] for w in worst] == sorted((HEALTH_RANK[w["health"]] for w in worst), reverse=True)


def test_aggregate_edges_sum_rate_and_weight_error_and_mtls_by_rate(mesh):
    nodes, edges = mesh
    rolled = aggregate(nodes, edges)
    group = rolled.group_of
    members = defaultdict(list)
    for e in edges:
        members[(group[e["source"]], group[e["target"]], e["protocol"])].append(e)
    for agg in (e for e in rolled.edges if e.get("aggregate")):
        mine = members[(agg["source"], agg["target"], agg["protocol"])]
        rps = sum(e["rps"] for e in mine)
        assert agg["members"] == len(mine) and agg["rps"] == pytest.approx(rps)
        assert agg["error_pct"] == pytest.approx(sum(e["rps"] * e["error_pct"] for e in mine) / rps, abs=0.051)
        assert agg["health"] == max((e["health"] for e in mine), key=HEALTH_RANK.get)
        p95s = [e["p95_ms"] for e in mine if e.get("p95_ms") is not None]
        assert agg["p95_ms"] == pytest.approx(max(p95s), abs=1e-3)  # a bound: percentiles do not add
        measured = [e for e in mine if e.get("mtls_pct") is not None]
        share = sum(e["rps"] * e["mtls_pct"] for e in measured) / sum(e["rps"] for e in measured)
        assert agg["mtls_pct"] == pytest.approx(share, abs=0.051)
        codes = defaultdict(float)
        for e in mine:
            for k, v in e["codes"].items():
                codes[k] += v
        assert agg["codes"] == pytest.approx({k: v for k, v in codes.items() if v})


def test_expanding_one_aggregate_keeps_every_other_id(mesh):
    nodes, edges = mesh
    collapsed = aggregate(nodes, edges)
    target = "agg:ns:ns4"
    opened = aggregate(nodes, edges, expand=[target])
    before, after = {n["id"] for n in collapsed.nodes}, {n["id"] for n in opened.nodes}
    assert before - {target} <= after and target not in after
    new = after - before
    # what appeared is the namespace's apps (or a lone workload), all in that namespace
    assert new and all((n["namespace"] == "ns4") for n in opened.nodes if n["id"] in new)
    assert any(i.startswith("agg:app:ns4/") for i in new)
    # edges between untouched aggregates keep their ids and numbers
    kept = {e["id"]: e for e in collapsed.edges if target not in (e["source"], e["target"])}
    again = {e["id"]: e for e in opened.edges}
    for eid, e in kept.items():
        assert again[eid]["rps"] == pytest.approx(e["rps"])
    # and the same request twice gives the same ids (stable across refreshes)
    assert {n["id"] for n in aggregate(nodes, edges, expand=[target]).nodes} == after


def test_expanding_an_app_opens_its_namespace_and_shows_members(mesh):
    nodes, edges = mesh
    ns_view = aggregate(nodes, edges, expand=["agg:ns:ns1"])
    app = next(n for n in ns_view.nodes if n["type"] == "aggregate" and n["namespace"] == "ns1")
    opened = aggregate(nodes, edges, expand=[app["id"]])  # the namespace opens with it
    ids = {n["id"] for n in opened.nodes}
    assert app["id"] not in ids and "agg:ns:ns1" not in ids
    assert set(ns_view.members(app["id"])) <= ids and len(ns_view.members(app["id"])) == app["members"]
    check_counted_once(nodes, edges, opened)


def test_nodes_without_a_namespace_and_groups_of_one_stay_as_they_are():
    nodes = [{"id": "u", "type": "unknown", "namespace": "unknown", "name": "unknown", "health": "na", "rps_in": 0},
             {"id": "a1", "type": "workload", "namespace": "a", "app": "x", "name": "x-v1", "health": "healthy", "rps_in": 5},
             {"id": "a2", "type": "workload", "namespace": "a", "app": "y", "name": "y-v1", "health": "failing",
              "rps_in": 5, "error_pct": 40.0},
             {"id": "b1", "type": "workload", "namespace": "b", "app": "z", "name": "z-v1", "health": "healthy", "rps_in": 1}]
    edges = [{"id": "e1", "source": "u", "target": "a1", "protocol": "http", "rps": 5, "health": "healthy"},
             {"id": "e2", "source": "a1", "target": "a2", "protocol": "http", "rps": 5, "error_pct": 40.0, "health": "failing"},
             {"id": "e3", "source": "a2", "target": "b1", "protocol": "http", "rps": 1, "health": "healthy"}]
    rolled = aggregate(nodes, edges)
    ids = {n["id"] for n in rolled.nodes}
    assert ids == {"u", namespace_id("a"), "b1"}
    a = next(n for n in rolled.nodes if n["id"] == namespace_id("a"))
    assert a["health"] == "failing" and a["health_counts"] == {"healthy": 1, "failing": 1}
    assert a["error_pct"] == pytest.approx(20.0) and rolled.internal[namespace_id("a")] == {"http": 5.0}
    assert {(e["source"], e["target"]) for e in rolled.edges} == {("u", namespace_id("a")), (namespace_id("a"), "b1")}
    check_counted_once(nodes, edges, rolled)
    assert is_aggregate_id(app_id("a", "x")) and not is_aggregate_id("a1")


def test_edge_cases_empty_graph_and_bad_level():
    assert aggregate([], []).nodes == []
    with pytest.raises(ValueError, match="unknown level"):
        aggregate([{"id": "a"}], [], "cluster")
