"""`topology.diff` aligns the two windows' edge tables column-wise (issue #14: two 10k-workload windows in well
under a second); its answer must be exactly the per-edge definition's, on a pair as large as the benchmark's."""
from __future__ import annotations

import math

import numpy as np
import pytest

from collector import schema
from topology import attrs as A
from topology.build import GraphBuilder
from topology.diff import diff_graphs
from topology.export.cytoscape import node_label
from topology.options import GraphOptions
from topology.synthetic import synthetic_rates


def _changed(before: float, after: float, rel: float, floor: float) -> bool:
    if max(abs(before), abs(after)) < floor:
        return False
    return abs(after - before) / max(abs(before), floor) > rel


def reference(before, after, rate_threshold=0.5, min_rate=0.01, latency_threshold=0.5, error_threshold=0.05) -> dict:
    """The diff by its definition, one edge at a time (the implementation before vectorising), as plain data."""
    def edge_label(g, s, t, p):
        return f"{node_label(g.nodes[s])} -> {node_label(g.nodes[t])} ({p})"

    out = {"nodes_added": sorted(node_label(after.nodes[n]) for n in after.nodes if n not in before),
           "nodes_removed": sorted(node_label(before.nodes[n]) for n in before.nodes if n not in after),
           "node_health_changes": sorted(
               (node_label(after.nodes[n]), before.nodes[n].get(A.HEALTH), after.nodes[n].get(A.HEALTH))
               for n in after.nodes if n in before and before.nodes[n].get(A.HEALTH) != after.nodes[n].get(A.HEALTH)
               and before.nodes[n].get(A.HEALTH) is not None and after.nodes[n].get(A.HEALTH) is not None)}
    be = {(s, t, p): d for s, t, p, d in before.edges(keys=True, data=True)}
    ae = {(s, t, p): d for s, t, p, d in after.edges(keys=True, data=True)}
    out["edges_added"] = sorted(edge_label(after, *k) for k in ae if k not in be)
    out["edges_removed"] = sorted(edge_label(before, *k) for k in be if k not in ae)
    changes = []
    for k, da in ae.items():
        db = be.get(k)
        if db is None:
            continue
        label = edge_label(after, *k)
        if _changed(db[A.RATE], da[A.RATE], rate_threshold, min_rate):
            changes.append((*k, label, A.RATE, db[A.RATE], da[A.RATE]))
        if db.get(A.HEALTH) != da.get(A.HEALTH) and db.get(A.HEALTH) and da.get(A.HEALTH):
            changes.append((*k, label, A.HEALTH, db[A.HEALTH], da[A.HEALTH]))
        lb, la = db.get(A.LATENCY_P95), da.get(A.LATENCY_P95)
        if lb is not None and la is not None and not (math.isnan(lb) or math.isnan(la)) \
                and _changed(lb, la, latency_threshold, 1.0):
            changes.append((*k, label, A.LATENCY_P95, lb, la))
        eb, ea = db.get(A.PERCENT_ERR, 0.0) / 100.0, da.get(A.PERCENT_ERR, 0.0) / 100.0
        if abs(ea - eb) > error_threshold:
            changes.append((*k, label, A.ERROR_RATE, eb, ea))
    changes.sort(key=lambda c: (c[3], c[4]))  # stable: edges in `after`'s order within one label and field
    out["changes"] = changes
    return out


def as_data(d) -> dict:
    got = d.to_dict()
    got["changes"] = [(c["source"], c["target"], c["protocol"], c["label"], c["field"], c["before"], c["after"])
                      for c in got["changes"]]
    got["node_health_changes"] = [tuple(x) for x in got["node_health_changes"]]
    return got


@pytest.fixture(scope="module")
def windows():
    """Two 10k-workload windows (30k edges): rates moved, 5xx moved on some edges, 300 workloads gone."""
    rates = synthetic_rates(workloads=10_000, services=2_000, edges=30_000)
    rng = np.random.default_rng(11)
    after = rates.copy()
    after[schema.RATE] = after[schema.RATE].to_numpy() * rng.uniform(0.3, 1.7, len(after))
    gone = after[schema.DESTINATION_WORKLOAD].isin(after[schema.DESTINATION_WORKLOAD].unique()[:300])
    after = after[~gone]
    build = lambda df: GraphBuilder(GraphOptions(graph_type="workload")).build(df)  # noqa: E731
    return build(rates), build(after)


def test_the_vectorised_diff_equals_the_per_edge_definition_on_two_10k_workload_windows(windows):
    before, after = windows
    for x, y in ((before, after), (after, before)):  # vanished one way, appeared the other
        want = reference(x, y)
        got = as_data(diff_graphs(x, y))
        assert got == want
        assert want["changes"] and want["edges_removed" if x is before else "edges_added"]
        kinds = {c[4] for c in want["changes"]}
        assert {A.RATE, A.LATENCY_P95} <= kinds, kinds  # the pair exercises more than one threshold
    assert as_data(diff_graphs(before, before)) == reference(before, before)
    loose = dict(rate_threshold=0.05, min_rate=5.0, latency_threshold=0.1, error_threshold=0.001)
    assert as_data(diff_graphs(before, after, **loose)) == reference(before, after, **loose)


def test_absent_metrics_and_empty_graphs_are_handled_like_the_definition():
    import networkx as nx

    from tests.topology.frames import bookinfo
    from topology import build_graph

    g = build_graph(bookinfo())
    empty = nx.MultiDiGraph()
    assert as_data(diff_graphs(empty, g)) == reference(empty, g)
    assert as_data(diff_graphs(g, empty)) == reference(g, empty)
    h = g.copy()
    for _, _, d in h.edges(data=True):  # no latency measured in the later window; health unknown there
        d[A.LATENCY_P95] = float("nan")
        d[A.HEALTH] = None
        d[A.PERCENT_ERR] = d.get(A.PERCENT_ERR, 0.0) + 20.0
    assert as_data(diff_graphs(g, h)) == reference(g, h)
    assert {c[4] for c in reference(g, h)["changes"]} == {A.ERROR_RATE}
