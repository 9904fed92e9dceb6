"""Canaries the plain tests miss: slower only in the slowest few percent, and worse by less than the margin.

A verdict of "promote" is a claim that the candidate shows no regression. A p95 comparison and a
Mann-Whitney test over the whole histogram both miss a candidate whose slowest 2-3 % take ten times
longer (p99 only), and an error rate that rose significantly from 0 % to 0.5 % is no evidence of
parity just because it stays under the 1-point rollback margin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from collector import schema
from diagnose.canary import evaluate
from diagnose.canary.verdict import HOLD, PROMOTE, ROLLBACK, Period, evaluate_periods

LE = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, np.inf)
WINDOW = 600.0


def _version(ver: str, requests: float, error_rate: float = 0.0, typical_ms: float = 40.0,
             slow_share: float = 0.0, slow_ms: float = 800.0, window: float = WINDOW) -> list[dict]:
    """One version's rates: 200s/500s and cumulative duration buckets of a mixture (body + a slow tail)."""
    base = {schema.REPORTER: "destination", schema.DESTINATION_SERVICE: "cart.shop.svc.cluster.local",
            schema.DESTINATION_SERVICE_NAMESPACE: "shop", schema.DESTINATION_VERSION: ver, schema.LE: np.nan}
    r = requests / window
    rows = [{**base, schema.METRIC: schema.ISTIO_REQUESTS_TOTAL, schema.RESPONSE_CODE: "200", schema.RATE: r * (1 - error_rate)},
            {**base, schema.METRIC: schema.ISTIO_REQUESTS_TOTAL, schema.RESPONSE_CODE: "500", schema.RATE: r * error_rate}]
    for le in LE:
        body, tail = (1.0, 1.0) if np.isinf(le) else (1 - np.exp(-le / typical_ms), 1 - np.exp(-le / slow_ms))
        rows.append({**base, schema.METRIC: f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket", schema.RESPONSE_CODE: "200",
                     schema.LE: le, schema.RATE: r * ((1 - slow_share) * body + slow_share * tail)})
    return rows


def _one(*versions: list[dict]):
    (v,) = evaluate(pd.DataFrame([row for ver in versions for row in ver]), WINDOW)
    return v


def test_a_candidate_slower_only_in_its_slowest_few_percent_is_rolled_back_on_p99() -> None:
    v = _one(_version("v1", 4000), _version("v2", 1500, slow_share=0.02, slow_ms=2000))
    lat = v.evidence["latency_ms"]
    assert v.evidence["latency_p_value"] > 0.05  # Mann-Whitney over the whole histogram does not see it
    assert v.verdict == ROLLBACK, v.reason
    assert "p99" in v.reason and lat["p99"]["candidate"] > 1.2 * lat["p99"]["stable"]
    tail = v.evidence["tail"]
    assert tail["candidate"] > 5 * tail["stable"] and v.evidence["tail_p_value"] < 0.01


def test_the_same_tail_on_fewer_requests_is_held_not_promoted_and_an_equal_tail_is_promoted() -> None:
    few = _one(_version("v1", 1000), _version("v2", 600, slow_share=0.012, slow_ms=2000))
    assert few.verdict == HOLD and "p99" in few.reason, (few.verdict, few.reason, few.evidence["tail_p_value"])
    same = _one(_version("v1", 4000, slow_share=0.03), _version("v2", 1500, slow_share=0.03))
    assert same.verdict == PROMOTE, same.reason
    faster = _one(_version("v1", 4000, slow_share=0.03), _version("v2", 1500))
    assert faster.verdict == PROMOTE, faster.reason


def test_a_significant_error_rise_under_the_rollback_margin_is_held_not_promoted() -> None:
    v = _one(_version("v1", 8000), _version("v2", 3000, error_rate=0.005))
    assert v.evidence["error_p_value"] < 0.01
    assert v.verdict == HOLD and "less than the 1%" in v.reason, v.reason
    # the same rate on the stable side too: parity, promoted
    assert _one(_version("v1", 8000, error_rate=0.005), _version("v2", 3000, error_rate=0.005)).verdict == PROMOTE


def test_the_tail_is_compared_step_by_step_across_a_rollout() -> None:
    """90/10 then 50/50: each step's slow tail is compared within the step; the candidate's heavier tail in
    both steps rolls back, and a tail both versions share in the second step (load) is not charged to it."""
    def frame(*vs):
        return pd.DataFrame([row for v in vs for row in v])
    bad = [Period(0, 300, frame(_version("v1", 2700, window=300), _version("v2", 300, slow_share=0.04, window=300))),
           Period(300, 600, frame(_version("v1", 1500, window=300), _version("v2", 1500, slow_share=0.04, window=300)))]
    (v,) = evaluate_periods(bad)
    assert v.verdict == ROLLBACK and "p99" in v.reason and "2 rollout steps" in v.reason, v.reason
    shared = [Period(0, 300, frame(_version("v1", 2700, window=300), _version("v2", 300, window=300))),
              Period(300, 600, frame(_version("v1", 1500, slow_share=0.05, window=300),
                                     _version("v2", 1500, slow_share=0.05, window=300)))]
    (v,) = evaluate_periods(shared)
    assert v.verdict != ROLLBACK and v.evidence["tail_p_value"] > 0.05, v.reason
