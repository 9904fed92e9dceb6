"""Several histogram quantiles per group in one pass (Prometheus' histogram_quantile method).

collector.query.histogram_quantile answers one quantile over labelled rows; the
graph needs p50/p95/p99 for 30k edges at once, and again every refresh. So the
bucket layout (which rows form which group's buckets, in bound order) is a
`QuantilePlan` computed once, and each evaluation is array arithmetic. Same
rules: cumulative bucket rates (made monotonic), linear interpolation inside
the bucket the rank falls in, 0 as the first lower bound, the largest finite
bound for ranks in +Inf, NaN without a +Inf bucket, with the +Inf bucket alone, or without
observations (tests/collector/test_quantile_vs_prometheus.py holds it to Prometheus' answers).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class QuantilePlan:
    rows: np.ndarray  # input positions used, sorted by (group, bound)
    bucket: np.ndarray  # per used row: its (group, bound) bucket
    groups: np.ndarray  # per bucket: group id
    bounds: np.ndarray  # per bucket: upper bound
    seg: np.ndarray  # per bucket: segment (group) number
    first: np.ndarray  # per segment: position of its first bucket
    last: np.ndarray  # per segment: position of its last bucket


def plan(group: np.ndarray, le: np.ndarray) -> QuantilePlan:
    idx = np.flatnonzero(~np.isnan(le))
    order = np.lexsort((le[idx], group[idx]))
    idx = idx[order]
    g, b = group[idx], le[idx]
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (b[1:] != b[:-1])
    bucket = np.cumsum(new) - 1
    ug, ub = g[new], b[new]
    start = np.ones(len(ug), dtype=bool)
    start[1:] = ug[1:] != ug[:-1]
    seg = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    last = np.append(first[1:] - 1, len(ug) - 1) if len(ug) else np.empty(0, dtype=np.int64)
    return QuantilePlan(idx, bucket, ug, ub, seg, first, last)


def evaluate(p: QuantilePlan, rate: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """(group ids, {q: value per group}) for the rates of the planned rows."""
    n = len(p.groups)
    if not n:
        return np.empty(0, dtype=np.int64), {q: np.empty(0) for q in qs}
    c = np.bincount(p.bucket, weights=rate[p.rows], minlength=n)
    # cumulative maximum within each group (Prometheus fixes non-monotonic buckets)
    big = float(c.max(initial=0.0)) + 1.0
    c = np.maximum.accumulate(c + p.seg * big) - p.seg * big
    total = c[p.last]
    has_inf = np.isinf(p.bounds[p.last]) & (p.bounds[p.last] > 0)
    two = p.last > p.first  # a +Inf bucket alone says nothing about where observations lie
    positions = np.arange(n)
    out = {}
    for q in qs:
        rank = q * total
        hit = c >= rank[p.seg]
        first_hit = np.minimum.reduceat(np.where(hit, positions, n), p.first)
        idx = np.minimum(first_hit, n - 1)
        is_first = idx == p.first
        prev = np.maximum(idx - 1, 0)
        lower = np.where(is_first, 0.0, p.bounds[prev])
        lower_c = np.where(is_first, 0.0, c[prev])
        upper, upper_c = p.bounds[idx], c[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            val = lower + (upper - lower) * (rank - lower_c) / (upper_c - lower_c)
        val = np.where(upper_c == lower_c, np.nan, val)  # rank 0 in an empty first bucket: 0/0, as Prometheus
        val = np.where(np.isinf(upper), lower, val)
        val = np.where(is_first & (upper <= 0), upper, val)
        out[q] = np.where(has_inf & (total > 0) & (first_hit < n) & two, val, np.nan)
    return p.groups[p.first], out


def quantiles(group: np.ndarray, le: np.ndarray, rate: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """One-shot form: plan and evaluate."""
    return evaluate(plan(group, le), rate, qs)
