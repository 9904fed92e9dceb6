"""Who burns an SLO's budget, over windows of days, in bounded memory (#18: the per-cycle frames grew for days)."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from diagnose.rules.runtime.traffic import SRC, SRC_NS
from diagnose.slo.engine import _EdgeLedger


def _batch(rng: random.Random) -> pd.DataFrame:
    callers = rng.sample([("productpage-v1", "bookinfo"), ("reviews-v2", "bookinfo"), ("gw", "istio-system"),
                          ("reviews-v2", "other-ns"), ("loadgen", "default")], rng.randint(1, 4))
    total = [float(rng.randint(1, 40)) for _ in callers]
    return pd.DataFrame({SRC: [c[0] for c in callers], SRC_NS: [c[1] for c in callers], "total": total,
                         "bad": [float(rng.randint(0, int(t))) * (rng.random() < 0.5) for t in total]})


def test_memory_is_bounded_by_buckets_not_by_cycles_and_sums_match_the_raw_batches():
    rng = random.Random(5)
    res, horizon = 30.0, 1200.0
    ledger = _EdgeLedger(res, horizon)
    raw = []
    frames = [_batch(rng) for _ in range(40)]
    t = 1_700_000_000.0
    for _ in range(1500):  # 2 s cycles for 50 min: far past the horizon
        t += 2.0
        frame = rng.choice(frames)
        raw.append((t, frame))
        ledger.add(t, frame)
    assert len(ledger.buckets) <= horizon / res + 2  # one bucket per 30 s, not one entry per cycle
    for window in (300.0, 600.0, 1200.0):
        total, bad = ledger.sums(window, t)
        lo = t - window
        inside = [f for ts, f in raw if (np.floor(ts / res) + 1) * res > lo and np.floor(ts / res) * res <= t]
        want = pd.concat(inside).groupby([SRC, SRC_NS])[["total", "bad"]].sum()
        got_total = {ledger.callers[i]: total[i] for i in range(len(ledger.callers)) if total[i]}
        got_bad = {ledger.callers[i]: bad[i] for i in range(len(ledger.callers)) if total[i]}
        assert got_total == pytest.approx({k: r.total for k, r in want.iterrows()})
        assert got_bad == pytest.approx({k: r.bad for k, r in want.iterrows()})


def test_a_caller_seen_twice_in_one_bucket_is_one_entry():
    ledger = _EdgeLedger(10.0, 100.0)
    one = pd.DataFrame({SRC: ["a", "b"], SRC_NS: ["ns", "ns"], "total": [3.0, 1.0], "bad": [1.0, 0.0]})
    ledger.add(1000.0, one)
    ledger.add(1004.0, one)
    (_, codes, total, bad), = ledger.buckets
    assert sorted(ledger.callers[c] for c in codes) == [("a", "ns"), ("b", "ns")]
    assert dict(zip((ledger.callers[c][0] for c in codes), total)) == {"a": 6.0, "b": 2.0}
