"""Latency SLOs reach the live graph as health limits (the composition root's translation)."""
from __future__ import annotations

import math
from types import SimpleNamespace

from diagnose.slo.load import load_slos
from meshscope.app import DEMO_SLOS
from meshscope.slo_health import health_for, latency_limits
from topology import attrs as A
from topology import build_graph
from tests.topology.frames import both, buckets, frame


def stack_with(slos):
    return SimpleNamespace(diagnoser=SimpleNamespace(slo_engine=SimpleNamespace(slos=slos)))


def test_demo_latency_slo_colours_the_slow_reviews_edge_and_nothing_else():
    slos = load_slos([str(DEMO_SLOS)]).slos
    limits = latency_limits(slos)
    assert sorted((x.service, x.namespace, x.threshold_ms) for x in limits) == \
        sorted((s.service.split(".")[0], s.service.split(".")[1], s.threshold_ms) for s in slos if s.sli == "latency")
    assert all(x.source.startswith("SLO ") for x in limits)
    config = health_for(stack_with(slos))
    assert config is health_for(stack_with(list(slos)))  # one object per SLO set: the appender's memo holds
    assert health_for(stack_with([s for s in slos if s.sli != "latency"])) is None
    # every reviews request takes 250-1000 ms: the latency SLO (99 % within 250 ms) fails the edge, with its name;
    # details answers within its SLO's threshold and ratings is as slow as reviews but has no latency SLO
    slow = frame(both("productpage-v1", "reviews-v2", 5.0), both("productpage-v1", "details-v1", 5.0),
                 both("reviews-v2", "ratings-v1", 5.0),
                 buckets("productpage-v1", "reviews-v2", [(250.0, 0.0), (1000.0, 5.0), (math.inf, 5.0)]),
                 buckets("productpage-v1", "details-v1", [(25.0, 5.0), (1000.0, 5.0), (math.inf, 5.0)]),
                 buckets("reviews-v2", "ratings-v1", [(250.0, 0.0), (1000.0, 5.0), (math.inf, 5.0)]))
    g = build_graph(slow, "app", health=config)
    health = {(g.nodes[s][A.APP], g.nodes[t][A.APP]): d for s, t, d in g.edges(data=True)}
    reviews = health[("productpage", "reviews")]
    assert reviews[A.HEALTH] == "Failure" and "SLO reviews-latency" in reviews[A.HEALTH_REASON]
    assert health[("productpage", "details")][A.HEALTH] == "Healthy"
    assert health[("reviews", "ratings")][A.HEALTH] == "Healthy"
