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


# --- differential: the vectorised roll-up equals the session-13 start's, record for record ---------------------

HEALTHS = ("healthy", "healthy", "healthy", "idle", "failing", "degraded", "na")


def random_graph(seed: int, sizes: tuple[int, ...], n_edges: int, odd: bool = False, dense_pair: bool = False):
    """Nodes in namespaces of `sizes` workloads (a few apps each, some versions), plus the unknown source, an
    egress node, a box, a config node and edges to nodes not in the list. `odd` mixes in what saved snapshots
    may carry: missing and null fields (ends too), numbers as strings or ints, unknown health words, empty codes.
    `dense_pair` sends every edge between the first two namespaces (tens of thousands over one aggregate edge)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    nodes = [{"id": "unknown-src", "type": "unknown", "namespace": "unknown", "name": "unknown", "health": "na",
              "rps_in": 0.0, "rps_out": 3.0},
             {"id": "egress", "type": "service", "namespace": "", "name": "PassthroughCluster", "health": "healthy",
              "rps_in": 1.0, "rps_out": 0.0},
             {"id": "box-1", "type": "box", "namespace": "ns0", "app": "a0", "name": "a0", "health": "na"},
             {"id": "cfg-1", "type": "config", "namespace": "ns0", "name": "VirtualService ns0/a0", "health": "na"}]
    spans = []  # (first node index, count) per namespace
    for k, size in enumerate(sizes):
        spans.append((len(nodes), size))
        n_apps = max(1, size // 4)
        for i in range(size):
            app = f"a{int(rng.integers(n_apps))}"
            rps = float(np.round(rng.exponential(5.0), 3)) if rng.random() > 0.2 else 0.0
            node = {"id": f"wl-{k}-{i}", "type": "workload", "namespace": f"ns{k}", "app": app,
                    "name": f"{app}-v{i % 3}", "health": HEALTHS[int(rng.integers(len(HEALTHS)))], "rps_in": rps,
                    "rps_out": float(np.round(rng.exponential(3.0), 3)),
                    "error_pct": float(np.round(rng.random() * 30, 1)) if rng.random() > 0.6 else 0.0,
                    "outsider": bool(rng.random() > 0.9)}
            if k == 0 and i < 3:
                node["parent"] = "box-1"
            if odd:
                roll = rng.random()
                if roll < 0.05:
                    del node["app"]
                elif roll < 0.1:
                    node["app"], node["name"] = "", ""
                elif roll < 0.15:
                    node["rps_in"] = str(rps)
                elif roll < 0.2:
                    node["error_pct"] = None
                elif roll < 0.25:
                    node["health"] = "weird"
                elif roll < 0.3:
                    node["rps_in"] = int(rps)
                elif roll < 0.33:
                    del node["outsider"]
            nodes.append(node)
    ids = [n["id"] for n in nodes]

    def member(ns: int) -> str:
        first, size = spans[ns]
        return ids[first + int(rng.integers(size))]

    edges = []
    for j in range(n_edges):
        if dense_pair:
            src, dst = member(0), member(1)
        else:
            roll = rng.random()
            src = "unknown-src" if roll < 0.05 else ("ghost" if roll < 0.06 else member(int(rng.integers(len(sizes)))))
            dst = "egress" if roll > 0.97 else member(int(rng.integers(len(sizes))))
        rps = 0.0 if rng.random() < 0.15 else float(np.round(rng.exponential(2.0), 4))
        err = float(np.round(rng.random() * 60, 1)) if rng.random() < 0.3 else 0.0
        mtls = [None, 0.0, 100.0, float(np.round(rng.random() * 100, 1))][int(rng.integers(4))]
        health = "idle" if rps == 0 else ("failing" if err > 20 else ("degraded" if err > 5 else "healthy"))
        lat = [None if rng.random() < 0.2 else float(np.round(rng.exponential(40.0), 3)) for _ in range(3)]
        edge = {"id": f"e{j}", "source": src, "target": dst, "protocol": ["http", "grpc", "tcp"][int(rng.integers(3))],
                "rps": rps, "error_pct": err, "p50_ms": lat[0], "p95_ms": lat[1], "p99_ms": lat[2], "mtls_pct": mtls,
                "mtls_state": "mismatch" if rng.random() < 0.05 else ("none" if mtls is None else "partial"),
                "health": health, "codes": {"2xx": round(rps * (1 - err / 100), 6), "5xx": round(rps * err / 100, 6)},
                "flags": {"UF": round(rps * err / 100, 6)} if err else {}}
        if odd:
            roll = rng.random()
            if roll < 0.05:
                edge["codes"] = None
            elif roll < 0.1:
                del edge["protocol"]
            elif roll < 0.15:
                edge["rps"] = str(rps)
            elif roll < 0.2:
                edge["mtls_pct"], edge["mtls_state"] = None, None
            elif roll < 0.25:
                edge["codes"] = {"2xx": int(rps), 404: "0.5"}
            elif roll < 0.3:
                del edge["health"]
            elif roll < 0.33:
                edge["error_pct"] = None
            elif roll < 0.34:
                edge["source"] = None
            elif roll < 0.35:
                del edge["target"]
        edges.append(edge)
    return nodes, edges


def same(new, old) -> None:
    """Equal record for record, in the same order, with the same keys in the same order and bit-equal numbers."""
    import json

    assert new.group_of == old.group_of
    assert json.dumps(new.internal) == json.dumps(old.internal)
    assert len(new.nodes) == len(old.nodes) and len(new.edges) == len(old.edges)
    for got, want in zip(new.nodes, old.nodes):
        assert json.dumps(got) == json.dumps(want)
    for got, want in zip(new.edges, old.edges):
        assert json.dumps(got) == json.dumps(want)


def views(nodes, seed: int, big: bool) -> list[tuple[str, tuple[str, ...]]]:
    """Both levels with no expansion, one namespace, an app (opens its namespace too), two at once, and one the
    graph lacks; a big graph (kept cheap) its namespace view, its largest namespace opened, and its app view."""
    import random

    if big:
        return [("namespace", ()), ("namespace", ("agg:ns:ns0",)), ("app", ())]
    rnd = random.Random(seed)
    namespaces = sorted({n["namespace"] for n in nodes if n.get("type") == "workload"})
    apps = sorted({f"agg:app:{n['namespace']}/{n.get('app') or n.get('name') or n['id']}" for n in nodes
                   if n.get("type") == "workload"})
    ns = namespace_id(rnd.choice(namespaces))
    expand = [(), (ns,), (rnd.choice(apps),), (ns, rnd.choice(apps)), ("agg:ns:nowhere",)]
    return [(level, e) for level in ("namespace", "app") for e in expand]


DIFFERENTIAL = {  # name: (seed, namespace sizes, edges, odd, dense pair)
    "small-mixed": (1, (1, 2, 7, 30), 200, False, False),
    "odd-fields": (2, (1, 3, 12, 40, 5), 600, True, False),
    "one-big-namespace": (3, (5_000, 1, 40), 10_000, False, False),
    "dense-pair": (4, (300, 200), 20_000, False, True),
    "odd-dense": (5, (60, 1, 90), 3_000, True, True),
}


@pytest.mark.parametrize("case", sorted(DIFFERENTIAL))
def test_vectorised_rollup_equals_the_reference(case):
    from tests.topology.aggregate_reference import aggregate as reference

    seed, sizes, n_edges, odd, dense = DIFFERENTIAL[case]
    nodes, edges = random_graph(seed, sizes, n_edges, odd, dense)
    # an edge with no source or target is drawn and counted nowhere (the reference raised a TypeError on one)
    whole = [e for e in edges if e.get("source") is not None and e.get("target") is not None]
    assert len(whole) < len(edges) or not odd
    for level, expand in views(nodes, seed, big=len(edges) > 5_000):
        same(aggregate(nodes, edges, level, expand), reference(nodes, whole, level, expand))


def test_vectorised_rollup_equals_the_reference_on_a_built_graph(mesh):
    from tests.topology.aggregate_reference import aggregate as reference

    nodes, edges = mesh
    for level, expand in (("namespace", ()), ("namespace", ("agg:ns:ns2",)), ("app", ("agg:app:ns3/svc9",))):
        same(aggregate(nodes, edges, level, expand), reference(nodes, edges, level, expand))


def test_repeated_node_ids_and_edges_without_an_end_are_no_traceback():
    """Saved snapshots are checked for edge ends, not for unique ids: a repeated id resolves to its last record
    (as `group_of` does); an edge with no source or target is drawn and counted nowhere (both raised before)."""
    nodes, edges = random_graph(6, (3, 4), 40)
    nodes.append(dict(nodes[-1], rps_in=2.0))  # ns1's last workload twice
    edges.append({"id": "dangling", "source": None, "target": nodes[-1]["id"], "protocol": "http", "rps": 3.0})
    rolled = aggregate(nodes, edges)
    assert rolled.group_of[nodes[-1]["id"]] == namespace_id("ns1")
    assert "dangling" not in {e["id"] for e in rolled.edges}
    inside = sum(rate for group in rolled.internal.values() for rate in group.values())
    assert sum(e["rps"] for e in rolled.edges) + inside == pytest.approx(sum(e["rps"] for e in edges[:-1]))


@pytest.mark.parametrize("level", ["namespace", "app"])
def test_vectorised_rollup_equals_the_reference_on_degenerate_graphs(level):
    """No edges; only ungrouped nodes; every edge between ends that are no node; every namespace opened."""
    from tests.topology.aggregate_reference import aggregate as reference

    nodes, edges = random_graph(7, (3, 5), 30)
    ghost = [dict(e, source="ghost", target="ghost2") for e in edges]
    for n, e, expand in ((nodes, [], ()), (nodes[:2], edges[:3], ()), (nodes, ghost, ()),
                         (nodes, edges, ("agg:ns:ns0", "agg:ns:ns1"))):
        same(aggregate(n, e, level, expand), reference(n, e, level, expand))
