"""A real canary on the shared bundled mesh, judged through GET /api/v1/canary as data arrives.

One rollout, three moments: right after the weights split reviews 70/30 between v2 and v3 the
verdict must say there is too little traffic (not guess); once enough requests are in, a healthy
v3 must not be called a regression; then the bad v3 build of the `canary-regression` scenario,
rolled out in steps (90/10, then 70/30), must be rolled back, compared step by step (the steps
come from the config journal), with the statistic and the VirtualService YAML that sends everything
to v2, while v3 still carries well under half the traffic. Each window starts after the change it judges.
"""
from __future__ import annotations

import time

import httpx
import pytest
import yaml

from diagnose.canary.steps import MIN_PERIOD_S
from diagnose.canary.verdict import HOLD, INSUFFICIENT, PROMOTE, ROLLBACK, Thresholds
from mesh.config import load_text
from mesh.scenarios import get
from tests.util import wait_until

pytestmark = pytest.mark.e2e

REVIEWS = "reviews.bookinfo.svc.cluster.local"
SLACK_S = 2.5  # push + one scrape: samples this close to a change may straddle it
STEP1_REQUESTS = 20  # v3's requests in the 90/10 step before the weights move on
TRAFFIC_RPS = 25.0  # gateway traffic during the rollout: each verdict waits for request counts (2.5x the session's)


def _canary(api: str, since: float) -> tuple[dict, list[dict]] | None:
    """v3's verdict and the findings over the window since `since`; None while v3 has no requests in it."""
    window = max(1, int(time.time() - since))
    body = httpx.get(f"{api}/api/v1/canary", params={"window": str(window)}, timeout=60).json()
    v = next((v for v in body["verdicts"] if v["service"] == REVIEWS and v["candidate"] == "v3"), None)
    if v is None or v["evidence"]["requests"]["candidate"] <= 0:
        return None
    return v, [f for f in body["findings"] if f["evidence"]["verdict"]["candidate"] == "v3"
               and f["evidence"]["verdict"]["service"] == REVIEWS]


def test_canary_rollout_insufficient_then_healthy_then_rolled_back(stack, bundled_mesh, mesh_scenario, mesh_traffic):
    api = f"http://127.0.0.1:{stack.options.port}"
    mesh_traffic(TRAFFIC_RPS)
    scenario = get("canary-regression")
    minimum = Thresholds().min_requests

    # a healthy canary: the scenario's weights without its bad build
    bundled_mesh.apply(scenario.objects)
    since = time.time() + SLACK_S
    wait_until(lambda: time.time() > since + 1, timeout=10, interval=0.2, what="the window to open")
    v, found = wait_until(lambda: _canary(api, since), timeout=60, interval=0.5, what="first requests to v3")
    if v["evidence"]["requests"]["candidate"] < minimum:  # polled within seconds of the change: few requests
        assert v["verdict"] == INSUFFICIENT and "too little traffic" in v["reason"], v
        assert [f["code"] for f in found] == ["MS5012"], found

    def judged(since_: float):
        got = _canary(api, since_)
        return got if got and got[0]["verdict"] != INSUFFICIENT else None

    v, found = wait_until(lambda: judged(since), timeout=150, interval=1.0, what="enough requests to judge v3")
    assert v["stable"] == "v2" and v["verdict"] in (HOLD, PROMOTE), v
    assert v["evidence"]["error_rate"]["candidate"] < 0.01, v
    assert not [f for f in found if f["code"] == "MS5010"], found

    # the bad build, rolled out in steps: 90/10 first, then the scenario's 70/30, v3 failing 20 % of its requests
    mesh_scenario("canary-regression")
    bundled_mesh.apply(load_text(scenario.yaml.replace("weight: 70", "weight: 90").replace("weight: 30", "weight: 10"),
                                 "step1.yaml").objects)
    since = time.time() + SLACK_S
    wait_until(lambda: time.time() > since + 1, timeout=10, interval=0.2, what="the window to open")
    # the next step comes once v3 has requests in this one and the step is long enough to be one: a move closer
    # than MIN_PERIOD_S to the window's start is merged into the next step (on a fast box 20 requests came in 8 s)
    wait_until(lambda: time.time() > since + MIN_PERIOD_S + SLACK_S
               and (_canary(api, since) or ({"evidence": {"requests": {"candidate": 0}}},))[0]["evidence"]
               ["requests"]["candidate"] >= STEP1_REQUESTS, timeout=120, interval=1.0, what="v3's first step")
    bundled_mesh.apply(scenario.objects)  # the next step: 70/30

    def stepped(since_: float):
        # the verdict once the window holds both steps (the journal's move is over MIN_PERIOD_S inside it)
        got = judged(since_)
        return got if got and len(got[0]["evidence"].get("steps") or []) >= 2 else None

    v, found = wait_until(lambda: stepped(since), timeout=150, interval=1.0, what="a verdict on the bad v3's steps")
    assert v["verdict"] == ROLLBACK and v["stable"] == "v2", v
    steps = v["evidence"]["steps"]
    assert [s["weights"] for s in steps[-2:]] == [{"v2": 90.0, "v3": 10.0}, {"v2": 70.0, "v3": 30.0}], steps
    assert all(s["candidate_share"] is None or s["candidate_share"] < 0.5 for s in steps), steps
    ev = v["evidence"]
    assert ev["error_rate"]["candidate"] > ev["error_rate"]["stable"] + 0.05 and ev["error_p_value"] < 0.01, ev
    assert v["confidence"] >= 0.99 and "error rate" in v["reason"], v
    # judged before v3 takes half the traffic: it carries its 30 % share
    share = ev["requests"]["candidate"] / (ev["requests"]["candidate"] + ev["requests"]["stable"])
    assert share < 0.5, share
    [f] = [f for f in found if f["code"] == "MS5010"]
    assert f["resource"]["kind"] == "VirtualService" and f["resource"]["name"] == "reviews", f
    assert f["evidence"]["weights"] == {"v2": 70, "v3": 30}, f["evidence"]
    rollback = yaml.safe_load(f["evidence"]["rollback_yaml"])
    weights = {d["destination"]["subset"]: d["weight"] for d in rollback["spec"]["http"][0]["route"]}
    assert weights == {"v2": 100, "v3": 0}, rollback

    # the live loop judges weighted rollouts from its own 5-minute window: v3 is a rollback finding there too,
    # and the versioned-app graph marks v3's node (and the edges into it) with the verdict (polled until v3's
    # node is marked: a graph served before the live loop judged v3 may carry another rollout's marks)
    def marked():
        els = httpx.get(f"{api}/api/v1/graph", params={"graphType": "versionedApp", "namespaces": "bookinfo"},
                        timeout=60).json()["elements"]
        nodes = [e["data"] for e in els if "source" not in e["data"] and e["data"].get("canary") == ROLLBACK]
        edges = [e["data"] for e in els if "source" in e["data"] and e["data"].get("canary") == ROLLBACK]
        v3 = any((n.get("app"), n.get("version")) == ("reviews", "v3") for n in nodes)
        return (nodes, edges) if v3 and edges else None

    nodes, edges = wait_until(marked, timeout=120, interval=2.0, what="reviews v3 marked on the graph")
    assert {(n.get("app"), n.get("version")) for n in nodes} == {("reviews", "v3")}, nodes
    assert nodes[0]["canary_stable"] == "v2" and "error rate" in nodes[0]["canary_reason"]
    live = httpx.get(f"{api}/api/v1/findings", timeout=60).json()
    live = live["findings"] if isinstance(live, dict) else live
    assert any(f["code"] == "MS5010" and f["evidence"]["verdict"]["candidate"] == "v3" for f in live)
