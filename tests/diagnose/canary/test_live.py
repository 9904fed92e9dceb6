"""Canary verdicts in the live loop: findings for weighted rollouts only, recomputed at most every few seconds."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from diagnose.canary.findings import weighted_hosts
from diagnose.canary.live import finding_source
from diagnose.live.sources import combine_extra as combine
from diagnose.live import LiveDiagnoser, LiveSources
from mesh.config import load_text
from tests.diagnose.canary.test_verdict import WINDOW, _frame, _version

SPLIT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - route:
    - {destination: {host: cart, subset: stable}, weight: 70}
    - {destination: {host: cart, subset: canary}, weight: 30}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets:
  - {name: stable, labels: {version: v1}}
  - {name: canary, labels: {version: v2}}
"""
BAD = _frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 1000, 0.08, 40),
             _version("pay", "v1", 4000, 0.005, 40), _version("pay", "v2", 1000, 0.08, 40))


def _snap(text: str) -> SimpleNamespace:
    return SimpleNamespace(objects=load_text(text, "mesh.yaml").objects,
                           mesh_config=SimpleNamespace(root_namespace="istio-system"))


def test_weighted_hosts_are_the_running_rollouts() -> None:
    assert weighted_hosts(_snap(SPLIT).objects) == {"cart.shop.svc.cluster.local"}
    done = SPLIT.replace("weight: 70", "weight: 100").replace("weight: 30", "weight: 0")
    assert weighted_hosts(_snap(done).objects) == set()  # rolled back or fully promoted: nothing to judge


def test_live_source_flags_the_weighted_canary_only_and_caches() -> None:
    calls: list[float] = []
    now = [0.0]

    def rates(window_s: float, end: float | None = None):
        calls.append(window_s)
        return BAD

    src = finding_source(rates, lambda: _snap(SPLIT), window_s=WINDOW, every_s=10.0, clock=lambda: now[0])
    got = src(1000.0)
    assert calls == [3600.0, WINDOW]  # the history before the window once (which versions were there), then the window
    # pay's v2 is as bad, but no VirtualService splits pay: versions side by side are not a rollout
    assert [(f.code, f.evidence["verdict"]["service"]) for f in got] == [("MS5010", "cart.shop.svc.cluster.local")]
    assert got[0].evidence["rollback_yaml"] and got[0].resource.kind == "VirtualService"
    now[0] = 5.0
    assert [f.code for f in src(1005.0)] == ["MS5010"] and len(calls) == 2  # within every_s: the cached answer
    now[0] = 11.0
    src(1011.0)
    assert len(calls) == 3


def test_live_diagnoser_opens_the_canary_finding_and_a_broken_source_costs_only_itself() -> None:
    def broken(now: float) -> list:
        raise RuntimeError("down")

    snap = _snap(SPLIT)
    extra = combine(broken, finding_source(lambda w, e=None: BAD, lambda: snap, window_s=WINDOW))
    d = LiveDiagnoser(LiveSources(requests=lambda s, e: None, rates=lambda w, e=None: None, snapshot=lambda: snap,
                                  extra=extra, analyze=lambda s: []))
    d.evaluate(2000.0)
    assert [f.code for f in d.findings(status="open")] == ["MS5010"]


PAY_V1 = _frame(_version("pay", "v1", 4000, 0.005, 40))
PAY_BAD = _frame(_version("pay", "v1", 4000, 0.005, 40), _version("pay", "v2", 1000, 0.08, 40))
PAY_GOOD = _frame(_version("pay", "v1", 4000, 0.005, 40), _version("pay", "v2", 1500, 0.005, 40))
PAY = "pay.shop.svc.cluster.local"


def _series(history, *steps):
    """rates(window, end): `history` for the priming read (a window ending before `now`), else the step's frame."""
    current = {"frame": steps[0]}

    def rates(window_s: float, end: float | None = None):
        return history if window_s == 3600.0 else current["frame"]

    return rates, current


@pytest.mark.parametrize("frame,code", [(PAY_BAD, "MS5010"), (PAY_GOOD, "MS5011")])
def test_a_newer_version_beside_the_stable_one_without_a_weighted_route_is_judged_live(frame, code) -> None:
    """pay v1 serves alone for a window; then v2 takes traffic beside it (a second Deployment behind the
    Service, no VirtualService): its verdict is a live finding, with the YAML pinning v1 when it regresses."""
    rates, cur = _series(None, PAY_V1)
    now = [0.0]
    src = finding_source(rates, lambda: _snap(""), window_s=WINDOW, every_s=10.0, clock=lambda: now[0])
    assert src(1000.0) == []
    cur["frame"], now[0] = frame, 700.0
    got = src(1000.0 + WINDOW + 100)
    assert [(f.code, f.evidence["verdict"]["service"], f.evidence["verdict"]["candidate"]) for f in got] == [(code, PAY, "v2")]
    ev = got[0].evidence
    assert ev["verdict"]["evidence"]["side_by_side"]["stable_first_traffic"] == 1000.0
    if code == "MS5010":
        assert "subset: stable-v1" in ev["rollback_yaml"] and "weight: 100" in ev["rollback_yaml"]
        assert "version: v1" in ev["rollback_yaml"]
    else:
        assert "rollback_yaml" not in ev


def test_versions_that_coexist_from_the_start_or_before_it_are_not_alarms() -> None:
    # both took traffic before meshscope's first window (the priming read sees them): established
    rates, _ = _series(PAY_BAD, PAY_BAD)
    assert finding_source(rates, lambda: _snap(""), window_s=WINDOW)(5000.0) == []
    # no history, both appear together (a fresh mesh starting all versions at once): not a rollout either
    rates, cur = _series(None, PAY_BAD)
    now = [0.0]
    src = finding_source(rates, lambda: _snap(""), window_s=WINDOW, clock=lambda: now[0])
    assert src(1000.0) == []
    now[0] = 2 * WINDOW
    assert src(1000.0 + 2 * WINDOW) == []


def test_a_newcomer_stops_being_one_after_newcomer_s() -> None:
    rates, cur = _series(PAY_V1, PAY_V1)
    now = [0.0]
    src = finding_source(rates, lambda: _snap(""), window_s=WINDOW, clock=lambda: now[0], newcomer_s=3600.0)
    src(1000.0)
    cur["frame"], now[0] = PAY_BAD, 100.0
    assert [f.code for f in src(1100.0)] == ["MS5010"]  # v1 established (history), v2 new
    now[0] = 5000.0
    assert src(1100.0 + 3601.0) == []  # v2 has served for more than newcomer_s: it is simply there now


def test_without_a_rollout_only_the_new_stretch_is_read_until_a_newcomer_appears() -> None:
    """Idle is idle: versions that serve as they always did cost a read of the stretch since the last look,
    never the verdicts' whole-window reads; a newcomer is still judged at the next look after it appears."""
    calls: list[float] = []
    frame = {"now": PAY_V1}
    now = [0.0]

    def rates(window_s: float, end: float | None = None):
        calls.append(window_s)
        return frame["now"]

    src = finding_source(rates, lambda: _snap(""), window_s=WINDOW, every_s=10.0, clock=lambda: now[0])
    assert src(1000.0) == [] and calls == [3600.0, WINDOW]  # history, then the whole window the first time
    for i in range(1, 6):  # steady: each look reads the stretch since the last one (with slack), not the window
        now[0] = 10.0 * i
        assert src(1000.0 + 10 * i) == []
    assert calls[2:] == [30.0] * 5
    calls.clear()
    now[0], frame["now"] = 700.0, PAY_BAD  # v2 takes traffic beside v1, a window and more later
    got = src(1000.0 + WINDOW + 100)
    assert [f.code for f in got] == ["MS5010"]
    assert calls == [WINDOW, WINDOW]  # the stretch since the last look (capped at the window), then the verdicts' read
