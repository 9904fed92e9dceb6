"""Canary verdicts in the live loop: findings for weighted rollouts only, recomputed at most every few seconds."""
from __future__ import annotations

from types import SimpleNamespace

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
    # pay's v2 is as bad, but no VirtualService splits pay: versions side by side are not a rollout
    assert [(f.code, f.evidence["verdict"]["service"]) for f in got] == [("MS5010", "cart.shop.svc.cluster.local")]
    assert got[0].evidence["rollback_yaml"] and got[0].resource.kind == "VirtualService"
    now[0] = 5.0
    assert [f.code for f in src(1005.0)] == ["MS5010"] and len(calls) == 1  # within every_s: the cached answer
    now[0] = 11.0
    src(1011.0)
    assert len(calls) == 2


def test_live_diagnoser_opens_the_canary_finding_and_a_broken_source_costs_only_itself() -> None:
    def broken(now: float) -> list:
        raise RuntimeError("down")

    snap = _snap(SPLIT)
    extra = combine(broken, finding_source(lambda w, e=None: BAD, lambda: snap, window_s=WINDOW))
    d = LiveDiagnoser(LiveSources(requests=lambda s, e: None, rates=lambda w, e=None: None, snapshot=lambda: snap,
                                  extra=extra, analyze=lambda s: []))
    d.evaluate(2000.0)
    assert [f.code for f in d.findings(status="open")] == ["MS5010"]
