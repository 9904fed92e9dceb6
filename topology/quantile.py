"""Several histogram quantiles per group in one pass (Prometheus' histogram_quantile method).

collector.query.histogram_quantile answers one quantile over labelled rows; the
graph needs p50/p95/p99 for 30k edges at once, so this sorts the buckets once
and answers every quantile with array arithmetic. Same rules: cumulative bucket
rates (made monotonic), linear interpolation inside the bucket the rank falls
in, 0 as the first lower bound, the largest finite bound for ranks in +Inf,
NaN without a +Inf bucket or without observations.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def quantiles(group: np.ndarray, le: np.ndarray, rate: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """(group ids, {q: value per group id}) for bucket rows (group, le, cumulative rate)."""
    ok = ~np.isnan(le)
    group, le, rate = group[ok], le[ok], rate[ok]
    if not len(group):
        return np.empty(0, dtype=np.int64), {q: np.empty(0) for q in qs}
    # sum duplicates (same group and bound), then sort by group, bound
    summed = pd.Series(rate).groupby([group, le], sort=True).sum()
    g = summed.index.get_level_values(0).to_numpy()
    b = summed.index.get_level_values(1).to_numpy(dtype=float)
    c = summed.to_numpy(dtype=float)
    start = np.ones(len(g), dtype=bool)
    start[1:] = g[1:] != g[:-1]
    seg = np.cumsum(start) - 1
    c = pd.Series(c).groupby(seg).cummax().to_numpy()
    end = np.ones(len(g), dtype=bool)
    end[:-1] = start[1:]
    total = c[end]
    has_inf = np.isinf(b[end]) & (b[end] > 0)
    first_pos = np.flatnonzero(start)
    out = {}
    for q in qs:
        rank = q * total[seg]
        hit = c >= rank
        # first hit per segment: position of the first True at or after the segment start
        pos_hit = np.where(hit, np.arange(len(g)), len(g))
        first_hit = pd.Series(pos_hit).groupby(seg).min().to_numpy()
        idx = np.minimum(first_hit, len(g) - 1)
        is_first = idx == first_pos
        prev = np.maximum(idx - 1, 0)
        lower = np.where(is_first, 0.0, b[prev])
        lower_c = np.where(is_first, 0.0, c[prev])
        upper, upper_c = b[idx], c[idx]
        r = q * total
        with np.errstate(divide="ignore", invalid="ignore"):
            val = lower + (upper - lower) * (r - lower_c) / (upper_c - lower_c)
        val = np.where(upper_c == lower_c, upper, val)
        val = np.where(np.isinf(upper), lower, val)
        val = np.where(is_first & (upper <= 0), upper, val)
        val = np.where(has_inf & (total > 0) & (first_hit < len(g)), val, np.nan)
        out[q] = val
    return g[start], out
