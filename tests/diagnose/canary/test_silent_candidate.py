"""A weighted route sends a share to a version that serves no request: the rollout has a verdict that says
nothing can be judged, never none at all (and never a promotion).

Verdicts are made for hosts whose traffic spans several versions; a candidate receiving nothing (no pod
carries its subset's labels, its pods fail before answering) left the host with one serving version, and
GET /api/v1/canary listed nothing for a rollout in progress. At 67169a0 the first test fails.
"""
from __future__ import annotations

from diagnose.canary.steps import judge
from mesh.config import load_text
from tests.diagnose.canary.test_live import SPLIT
from tests.diagnose.canary.test_verdict import WINDOW, _frame, _version


def _judge(frame, text: str = SPLIT):
    objects = load_text(text, "mesh.yaml").objects
    return judge(lambda w, end=None: frame, objects, "istio-system", None, WINDOW, 10_000.0)


def test_a_weighted_candidate_with_no_requests_is_insufficient_not_missing() -> None:
    only_stable = _frame(_version("cart", "v1", 4000, 0.005, 40))
    [v] = _judge(only_stable)
    assert (v.service, v.stable, v.candidate, v.verdict) == ("cart.shop.svc.cluster.local", "v1", "v2", "insufficient_traffic")
    assert "no request reached v2" in v.reason and "30%" in v.reason
    assert v.evidence["requests"]["candidate"] == 0.0 and round(v.evidence["requests"]["stable"]) == 4000


def test_a_candidate_with_some_requests_keeps_its_normal_verdict_and_no_route_no_silent_verdict() -> None:
    some = _frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 40, 0.0, 40))
    [v] = _judge(some)
    assert v.verdict == "insufficient_traffic" and "too little traffic" in v.reason  # 40 < 100: the usual words
    unsplit = SPLIT.replace("weight: 70", "weight: 100").replace("weight: 30", "weight: 0")
    assert _judge(_frame(_version("cart", "v1", 4000, 0.005, 40)), unsplit) == []
