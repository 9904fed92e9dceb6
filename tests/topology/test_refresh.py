"""Incremental refresh: same result as a full build, node/edge identity kept, structure changes handled."""
import math

import numpy as np
import pandas as pd

from collector import schema
from topology import GraphOptions
from topology import attrs as A
from topology.build import GraphBuilder
from topology.synthetic import synthetic_rates
from tests.topology.frames import both, bookinfo, frame


def snapshot_of(graph):
    def clean(d):
        return {k: v for k, v in d.items() if not (isinstance(v, float) and math.isnan(v))}
    return ({n: clean(d) for n, d in graph.nodes(data=True)},
            {(s, t, k): clean(d) for s, t, k, d in graph.edges(keys=True, data=True)})


def test_refresh_with_new_rates_equals_a_full_build():
    rates = synthetic_rates(workloads=300, services=60, edges=900, namespaces=5)
    builder = GraphBuilder(GraphOptions())
    graph = builder.build(rates)
    first_edge = next(iter(graph.edges(keys=True)))
    attrs_obj = graph.edges[first_edge]
    nxt = rates.copy()
    nxt[schema.RATE] = nxt[schema.RATE].to_numpy() * np.random.default_rng(2).uniform(0.5, 1.5, len(nxt))
    builder.refresh(graph, nxt)
    assert graph.edges[first_edge] is attrs_obj  # same edge object: UI state attached to it survives
    assert snapshot_of(graph) == snapshot_of(GraphBuilder(GraphOptions()).build(nxt))


def test_refresh_when_series_appear_and_vanish():
    builder = GraphBuilder(GraphOptions())
    graph = builder.build(bookinfo())
    changed = pd.concat([bookinfo(ratings_5xx=1.0), frame(both("reviews-v3", "mongodb-v1", 2.0))], ignore_index=True)
    changed = changed[changed["destination_workload"] != "details-v1"].reset_index(drop=True)
    builder.refresh(graph, changed)
    assert snapshot_of(graph) == snapshot_of(GraphBuilder(GraphOptions()).build(changed))
    assert "details-v1" not in {d[A.WORKLOAD] for _, d in graph.nodes(data=True)}


def test_refresh_drops_values_that_no_longer_hold():
    import math as _m

    from tests.topology.frames import buckets

    builder = GraphBuilder(GraphOptions())
    first = frame(both("a-v1", "b-v1", 10.0), buckets("a-v1", "b-v1", [(10.0, 10.0), (_m.inf, 10.0)]))
    graph = builder.build(first)
    e = next(iter(graph.edges(data=True)))[2]
    assert e[A.LATENCY_P50] == 5.0
    quiet_buckets = first.copy()
    quiet_buckets.loc[quiet_buckets["metric"].str.endswith("_bucket"), "rate"] = 0.0  # no durations observed
    builder.refresh(graph, quiet_buckets)
    assert A.LATENCY_P50 not in e and e[A.RATE] == 10.0
    assert snapshot_of(graph) == snapshot_of(GraphBuilder(GraphOptions()).build(quiet_buckets))
    # the edge's traffic stops: it is hidden (idle), the nodes go with it
    stopped = first.copy()
    stopped["rate"] = 0.0
    builder.refresh(graph, stopped)
    assert graph.number_of_edges() == 0 and graph.number_of_nodes() == 0
    builder.refresh(graph, first)
    assert graph.number_of_edges() == 1
