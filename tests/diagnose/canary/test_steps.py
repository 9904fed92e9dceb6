"""Canary verdicts while the weights shift in steps (90/10 -> 70/30 -> 50/50 ...).

Frames have the rate frame's real shape (tests.diagnose.canary.test_verdict._version: destination-
reported request counts by code and cumulative duration buckets), one frame per step of WINDOW
seconds. The traps are the classes a comparison of window totals falls into when the candidate's
share changes with time: anything that moves for both versions (errors, latency) is charged to the
candidate (Simpson's paradox), and past 50 % the candidate is the busiest version.
"""
from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from diagnose.canary import evaluate
from diagnose.canary.steps import journal_of, judge, rollout, weights_of
from diagnose.canary.verdict import (HOLD, INSUFFICIENT, PROMOTE, ROLLBACK, Period, cmh_test, evaluate_periods,
                                     exact_stratified, fisher_greater)
from mesh.config import load_text
from mesh.controlplane.policy import ConfigIndex
from mesh.journal import Journal, content_of
from tests.diagnose.canary.test_verdict import WINDOW, _frame, _version

CART = "cart.shop.svc.cluster.local"


def _step(stable_n: float, cand_n: float, err_s: float, err_c: float, ms_s: float = 40, ms_c: float = 40) -> pd.DataFrame:
    return _frame(_version("cart", "v1", stable_n, err_s, ms_s), _version("cart", "v2", cand_n, err_c, ms_c))


def _periods(*steps: pd.DataFrame) -> list[Period]:
    return [Period(k * WINDOW, (k + 1) * WINDOW, f) for k, f in enumerate(steps)]


def _totals(*steps: pd.DataFrame):
    """What a comparison of window totals says (the same frames summed into one window)."""
    [v] = evaluate(pd.concat(steps, ignore_index=True), WINDOW * len(steps))
    return v


def _one(periods: list[Period], **kw):
    got = evaluate_periods(periods, **kw)
    assert len(got) == 1
    return got[0]


def test_errors_that_rise_for_both_versions_as_the_share_grows_are_not_the_candidates() -> None:
    # step 1 at 90/10 is clean; at 50/50 a dependency fails 6 % of everyone's requests
    steps = (_step(9000, 1000, 0.005, 0.005), _step(5000, 5000, 0.06, 0.06))
    assert _totals(*steps).verdict == ROLLBACK  # totals: 5.1 % vs 2.5 %, the trap
    v = _one(_periods(*steps))
    assert v.verdict in (PROMOTE, HOLD), v.reason
    assert v.evidence["error_rate"]["candidate"] == pytest.approx(v.evidence["error_rate"]["stable"], abs=1e-9)
    assert "rollout steps" in v.reason and "stratified" in v.evidence["test"]["errors"]


def test_latency_that_rises_for_both_versions_with_load_is_not_the_candidates() -> None:
    steps = (_step(9000, 1000, 0.0, 0.0, 30, 30), _step(5000, 5000, 0.0, 0.0, 90, 90))
    assert _totals(*steps).verdict == ROLLBACK and "p95" in _totals(*steps).reason  # the trap
    v = _one(_periods(*steps))
    assert v.verdict != ROLLBACK, v.reason
    lat = v.evidence["latency_ms"]["p95"]
    assert lat["candidate"] == pytest.approx(lat["stable"], rel=0.01)  # stable reweighted to the candidate's steps
    assert v.evidence["latency_p_value"] > 0.05


def test_a_real_regression_is_still_caught_when_both_versions_move() -> None:
    steps = (_step(9000, 1000, 0.005, 0.03), _step(5000, 5000, 0.06, 0.09))
    v = _one(_periods(*steps))
    assert v.verdict == ROLLBACK and v.evidence["error_p_value"] < 1e-6
    assert v.evidence["error_rate"]["candidate"] - v.evidence["error_rate"]["stable"] == pytest.approx(0.03, abs=2e-3)


def test_bad_canary_step_by_step_insufficient_then_rolled_back_before_half() -> None:
    """The verdict as each step's data arrives: at 90/10 with 60 requests in, too little traffic; once the
    70/30 step is in, roll back, with what each step showed."""
    s1 = _step(540, 60, 0.005, 0.2)
    s2 = _step(2100, 900, 0.005, 0.2)
    early = _one(_periods(_step(540, 60, 0.005, 0.2)))
    assert early.verdict == INSUFFICIENT
    v = _one(_periods(s1, s2))
    assert v.verdict == ROLLBACK and v.stable == "v1"
    steps = v.evidence["steps"]
    assert [round(s["candidate_share"], 2) for s in steps] == [0.1, 0.3]
    assert all(s["compared"] for s in steps)
    assert [round(s["error_rate"]["candidate"], 3) for s in steps] == [0.2, 0.2]
    assert v.evidence["requests"]["candidate"] == pytest.approx(960)


def test_the_stable_version_stays_stable_once_the_candidate_carries_most_traffic() -> None:
    steps = (_step(900, 100, 0.005, 0.05), _step(2000, 8000, 0.005, 0.05))
    old = evaluate(pd.concat(steps, ignore_index=True), 2 * WINDOW)
    assert [(v.stable, v.candidate) for v in old] == [("v2", "v1")] and old[0].verdict != ROLLBACK  # roles swapped
    v = _one(_periods(*steps))
    assert (v.stable, v.candidate, v.verdict) == ("v1", "v2", ROLLBACK)
    # the caller may know better (the rollout's first weights): a named stable wins over the traffic rule
    named = _one(_periods(_step(2000, 8000, 0.005, 0.05)), stable={CART: "v1"})
    assert (named.stable, named.verdict) == ("v1", ROLLBACK)


def test_only_steps_both_versions_served_are_compared() -> None:
    alone = _frame(_version("cart", "v1", 5000, 0.10, 40))  # before the canary: v1 alone, with a bad minute
    v = _one(_periods(alone, _step(900, 100, 0.005, 0.005), _step(800, 200, 0.005, 0.005)))
    assert v.evidence["requests"] == {"stable": pytest.approx(1700), "candidate": pytest.approx(300)}
    assert v.evidence["error_rate"]["stable"] == pytest.approx(0.005)
    assert [s["compared"] for s in v.evidence["steps"]] == [False, True, True]


def test_exact_stratified_test_is_fisher_for_one_step_and_the_enumerated_law_for_several() -> None:
    assert exact_stratified([2.0], [400.0], [5.0], [100.0]) == pytest.approx(fisher_greater(2, 400, 5, 100))
    es, ns, ec, nc = [1, 3], [30, 20], [2, 4], [10, 15]

    def pmf(x: int, k: int, n1: int, n0: int) -> float:
        return math.comb(n1, x) * math.comb(n0, k - x) / math.comb(n1 + n0, k) if 0 <= k - x <= n0 else 0.0

    laws = [[pmf(x, es[i] + ec[i], nc[i], ns[i]) for x in range(es[i] + ec[i] + 1)] for i in range(2)]
    brute = sum(laws[0][a] * laws[1][b] for a, b in itertools.product(range(len(laws[0])), range(len(laws[1])))
                if a + b >= sum(ec))
    assert exact_stratified(es, ns, ec, nc) == pytest.approx(brute, rel=1e-9)


def test_cmh_of_one_step_is_the_two_proportion_test() -> None:
    import numpy as np

    p = cmh_test(np.array([[20.0]]), np.array([[4000.0]]), np.array([[80.0]]), np.array([[1000.0]]))[0]
    assert p < 1e-12
    same = cmh_test(np.array([[40.0, 10.0]]), np.array([[4000.0, 1000.0]]), np.array([[10.0, 40.0]]),
                    np.array([[1000.0, 4000.0]]))[0]
    assert same == pytest.approx(0.5, abs=0.05)  # equal rates in each step, whatever the totals say


# ---- the steps from the config journal ------------------------------------------------------------------
DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets:
  - {name: stable, labels: {version: v1}}
  - {name: canary, labels: {version: v2}}
"""


def _vs(*weights: int) -> str:
    routes = "\n".join(f"    - {{destination: {{host: cart, subset: {s}}}, weight: {w}}}"
                       for s, w in zip(("stable", "canary"), weights))
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: cart, namespace: shop}}
spec:
  hosts: [cart]
  http:
  - route:
{routes}
"""


def _objects(*weights: int):
    return load_text(_vs(*weights) + "---" + DR, "mesh.yaml").objects


def _journal(tmp_path, history: list[tuple[float, tuple[int, ...]]]) -> Journal:
    j = Journal(tmp_path / "journal.sqlite")
    for t, weights in history:
        vs = _objects(*weights)[0]
        j.observe("VirtualService", "shop", "cart", content_of(vs.spec, vs.labels, vs.annotations), at=t)
    return j


def test_weights_map_subsets_to_versions_and_a_single_destination_weighs_all() -> None:
    objs = _objects(70, 30)
    index = ConfigIndex(objs, "istio-system")
    assert weights_of(objs[0].spec, "shop", index) == {CART: {"v1": 70.0, "v2": 30.0}}
    one = {"http": [{"route": [{"destination": {"host": "cart", "subset": "stable"}}]}]}
    assert weights_of(one, "shop", index) == {CART: {"v1": 100.0}}


def test_rollout_cuts_at_each_weight_move_and_keeps_the_first_version_stable(tmp_path) -> None:
    j = _journal(tmp_path, [(1000.0, (100, 0)), (2000.0, (90, 10)), (2600.0, (70, 30)), (3200.0, (50, 50)),
                            (3800.0, (30, 70))])
    ro = rollout(_objects(30, 70), "istio-system", j, since=2300.0, until=4100.0)
    assert ro.boundaries == [2600.0, 3200.0, 3800.0]
    assert ro.stable == {CART: "v1"}  # v1 had all the traffic before the split, though v2 now has 70
    assert ro.weights_at(CART, 2700.0) == {"v1": 70.0, "v2": 30.0}
    # a journal that starts mid-rollout: the heaviest version of the first split state it knows
    j2 = _journal(tmp_path / "b", [(2000.0, (90, 10)), (3000.0, (30, 70))])
    assert rollout(_objects(30, 70), "istio-system", j2, 2500.0, 3500.0).stable == {CART: "v1"}
    # moves closer than MIN_PERIOD_S to each other or to the window's ends are merged
    j3 = _journal(tmp_path / "c", [(1000.0, (90, 10)), (2002.0, (80, 20)), (2005.0, (70, 30)), (2995.0, (60, 40))])
    assert rollout(_objects(60, 40), "istio-system", j3, 1000.0, 3000.0).boundaries == [2005.0]
    assert rollout(_objects(60, 40), "istio-system", None, 1000.0, 3000.0).boundaries == []


def test_judge_reads_one_frame_per_step_and_says_what_each_step_showed(tmp_path) -> None:
    """A bad v2 rolled out 90/10 -> 70/30 -> 30/70: judged over the whole rollout it is rolled back against v1,
    with the weights of each step beside what the step showed."""
    j = _journal(tmp_path, [(0.0, (100, 0)), (600.0, (90, 10)), (1200.0, (70, 30)), (1800.0, (30, 70))])
    plan = {1200.0: (5400, 600), 1800.0: (4200, 1800), 2400.0: (1800, 4200)}
    reads = []

    def rates(window_s: float, end: float) -> pd.DataFrame:
        reads.append((window_s, end))
        s, c = plan[end]
        return _frame(_version("cart", "v1", s * window_s / WINDOW, 0.005, 40),
                      _version("cart", "v2", c * window_s / WINDOW, 0.08, 40))

    [v] = judge(rates, _objects(30, 70), "istio-system", j, window_s=1800.0, now=2400.0)
    assert reads == [(600.0, 1200.0), (600.0, 1800.0), (600.0, 2400.0)]
    assert (v.stable, v.candidate, v.verdict) == ("v1", "v2", ROLLBACK)
    assert [s["weights"] for s in v.evidence["steps"]] == [{"v1": 90.0, "v2": 10.0}, {"v1": 70.0, "v2": 30.0},
                                                          {"v1": 30.0, "v2": 70.0}]
    assert [round(s["candidate_share"], 1) for s in v.evidence["steps"]] == [0.1, 0.3, 0.7]
    assert "journal" in v.evidence["stable_from"]


def test_journal_of_finds_the_bundled_or_the_cluster_journal() -> None:
    from types import SimpleNamespace

    assert journal_of(SimpleNamespace(mesh=SimpleNamespace(journal="J"))) == "J"
    assert journal_of(SimpleNamespace(journal="K")) == "K"
    assert journal_of(SimpleNamespace()) is None


def test_live_source_judges_the_steps_and_keeps_the_rollouts_stable_version(tmp_path) -> None:
    """The live loop's canary source with the journal: v2 now takes 70 % and is failing; it is still the
    candidate (rolled back to v1, the rollout's first version), and the finding says what each step showed."""
    from types import SimpleNamespace

    from diagnose.canary.live import finding_source

    j = _journal(tmp_path, [(0.0, (100, 0)), (600.0, (90, 10)), (1200.0, (30, 70))])
    snap = SimpleNamespace(objects=_objects(30, 70), mesh_config=SimpleNamespace(root_namespace="istio-system"))

    def rates(window_s: float, end: float) -> pd.DataFrame:
        s, c = (5400, 600) if end <= 1200.0 else (1800, 4200)
        return _frame(_version("cart", "v1", s * window_s / WINDOW, 0.005, 40),
                      _version("cart", "v2", c * window_s / WINDOW, 0.08, 40))

    [f] = finding_source(rates, lambda: snap, window_s=1200.0, journal=lambda: j)(1800.0)
    v = f.evidence["verdict"]
    assert (f.code, v["stable"], v["candidate"]) == ("MS5010", "v1", "v2")
    assert [s["weights"] for s in v["evidence"]["steps"]] == [{"v1": 90.0, "v2": 10.0}, {"v1": 30.0, "v2": 70.0}]
