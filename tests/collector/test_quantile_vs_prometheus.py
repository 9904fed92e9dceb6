"""Both of meshscope's histogram quantiles answer what a real Prometheus' `histogram_quantile` answers.

The graph's latencies (`topology.quantile`, many groups at once) and the query layer's
(`collector.query.histogram_quantile`) reimplement PromQL's function; SLOs and the side panel read them.
Held against the Debian Prometheus itself on a few hundred random bucket sets, including the shapes real
scrapes produce now and then: only the +Inf bucket, no +Inf bucket, no observations, buckets that are not
monotonic (counter resets mid-window), zero and negative bounds, ranks that land on a bucket's edge.
Prometheus scrapes the buckets once as plain samples and evaluates `histogram_quantile(q, hq_bucket)`.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from collector import schema as s
from collector.query import histogram_quantile
from topology.quantile import quantiles
from tests.util import BodyServer, wait_until

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)
BOUNDS = [-5.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0, 1000.0, 60000.0]


def bucket_sets(seed: int, n: int) -> list[list[tuple[float, float]]]:
    """`n` bucket sets [(le, cumulative count)], each of a shape chosen at random."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        finite = sorted(rnd.sample(BOUNDS, rnd.choice([0, 1, 2, 3, 5, 8])))
        shape = rnd.choice(["plain", "plain", "plain", "empty", "no_inf", "reset", "flat", "quarters"])
        counts, c = [], 0.0
        for _ in range(len(finite) + 1):
            c += rnd.choice([0, 0, 1, 2, 3, 7, 40]) * (0.25 if shape == "quarters" else 1.0)
            counts.append(c)
        if shape == "empty":
            counts = [0.0] * len(counts)
        elif shape == "flat":
            counts = [counts[-1]] * len(counts)
        elif shape == "reset" and len(counts) > 2:
            i = rnd.randrange(1, len(counts))
            counts[i] = max(0.0, counts[i - 1] - rnd.choice([1, 5]))  # a bucket below the one before it
        buckets = list(zip(finite + [math.inf], counts))
        if shape == "no_inf":
            buckets = buckets[:-1]
        out.append(buckets)
    return out


def exposition(sets: list[list[tuple[float, float]]]) -> bytes:
    lines = []
    for g, buckets in enumerate(sets):
        for le, count in buckets:
            le_text = "+Inf" if math.isinf(le) else repr(le)
            lines.append(f'hq_bucket{{g="{g}",le="{le_text}"}} {count!r}')
    return ("\n".join(lines) + "\n").encode()


def prometheus_answers(prometheus, n_series: int) -> dict[float, dict[int, float]]:
    wait_until(lambda: (r := prometheus.query("count(hq_bucket)")) and int(float(r[0]["value"][1])) == n_series,
               timeout=60, interval=0.5, what="Prometheus holding every bucket")
    out = {}
    for q in QS:
        out[q] = {int(r["metric"]["g"]): float(r["value"][1]) for r in prometheus.query(f"histogram_quantile({q}, hq_bucket)")}
    return out


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("seed", [1, 2])
def test_quantiles_equal_prometheus_histogram_quantile(prometheus, seed):
    sets = bucket_sets(seed, 150)
    with BodyServer(exposition(sets)) as server, prometheus.scrape([server.url + "/metrics"]):
        want = prometheus_answers(prometheus, sum(len(b) for b in sets))
    rows = pd.DataFrame([{"g": str(g), s.LE: le, s.RATE: count} for g, b in enumerate(sets) for le, count in b])

    groups, graph = quantiles(rows["g"].astype(int).to_numpy(), rows[s.LE].to_numpy(float), rows[s.RATE].to_numpy(float), QS)
    wrong = []
    for q in QS:
        theirs = want[q]
        ours = dict(zip(groups.tolist(), graph[q].tolist()))
        table = histogram_quantile(q, rows, by=["g"])
        query = dict(zip(table["g"].astype(int), table["value"]))
        for g, buckets in enumerate(sets):
            expected = theirs.get(g, math.nan)  # Prometheus leaves a set out only when it has no answer
            for name, got in (("topology.quantile", ours.get(g, math.nan)), ("collector.query", query.get(g, math.nan))):
                if not same(got, expected):
                    wrong.append(f"{name} q={q} buckets={buckets}: {got} != Prometheus {expected}")
    assert not wrong, f"{len(wrong)} disagreements, first: " + "; ".join(wrong[:6])
