"""Queries over the store that the rest of meshscope needs: Istio rate frames, quantiles, edge stats.

`istio_rates` produces the *Istio rate frame* (see contracts): what PromQL
`sum(rate(m[w])) by (<Istio labels>, le)` returns, computed from raw scrapes. A rate is
the increase over the window divided by the window's length (never by a series' own
sampled span: a series that started or stopped inside the window would be overstated, and
the series of an earlier run, or of a sidecar before its restart, would add up). Counter
semantics follow Prometheus where they matter and improve on it where we know more:
- each target's last scrape at or before the window start is the baseline, so the increase
  is measured across the whole window, not from its first sample;
- a drop in a counter is a reset: the increase over that step is the new value;
- a scrape gap just makes one step longer (the increase is still exact unless the
  counter also reset inside the gap, which no scraper can see);
- a series that appears in a target's scrape after earlier scrapes of the same target
  lacked it started from 0 at the previous scrape (Envoy creates a counter on its first
  increment), so a burst of brand-new 503s is counted instead of waiting for a second sample;
- at the window edges Prometheus' extrapolation applies: to the edge when the first/last
  sample is within 1.1 average intervals of it, else half an interval, and never before
  the counter's zero point; a baseline before the window start is interpolated back to it,
  and so is a target's first scrape after the end of a window in the past;
- when the target says when its process started (Envoy's `envoy_server_uptime`, scraped in
  the same round), a process that started inside the window had every counter at 0 then, so
  a series' first value is all increase from that moment (a new mesh, new sidecars on new
  ports: nothing before them to extrapolate from); a process that started before the window
  was counting throughout it, so a series first scraped late in the window (a meshscope that
  just started) is extrapolated to the window start (never past its zero point); and a
  process that started after a series' previous sample restarted, so the step is the new
  value even when the counter did not drop.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema as s
from collector import tables
from collector.store import TelemetryStore

RATE_COLUMNS = (*s.ISTIO_LABELS, s.METRIC, s.LE, s.RATE)
_CUMULATIVE_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
BASELINE_LOOKBACK_S = 60.0  # how far before a window its baseline scrape is looked for
UPTIME_METRIC = "envoy_server_uptime"  # gauge, whole seconds since the Envoy process started


def istio_rates(store: TelemetryStore, window_s: float, end=None, prefix: str = "istio_") -> pd.DataFrame:
    """Per-second rates of every Istio counter/histogram series over (end - window_s, end].

    Returns the Istio rate frame: Istio label columns, `metric`, `le`, `rate`, summed over
    series (targets, non-Istio labels) like `sum(rate(m[w])) by (labels, le)`. `store` may also
    be a `PrometheusClient` (real clusters): the same frame then comes from PromQL.
    """
    if not isinstance(store, TelemetryStore) and hasattr(store, "istio_rates"):
        return store.istio_rates(window_s, end=end)
    end_ts = pd.Timestamp.now(tz="UTC") if end is None else _ts(end)
    start_ts = end_ts - pd.Timedelta(seconds=window_s)
    # a little before the window too: each target's last scrape before it is the increase's baseline
    lookback = pd.Timedelta(seconds=min(float(window_s), BASELINE_LOOKBACK_S))
    # and after it, for a window in the past: each target's first scrape after the end closes it the same way
    table = store.arrow("metrics", start_ts - lookback, end_ts + lookback)
    return rates_from_samples(table, prefix=prefix, window=(start_ts.timestamp(), end_ts.timestamp()))


def rates_from_samples(samples: pa.Table | pd.DataFrame, prefix: str = "",
                       window: tuple[float, float] | None = None) -> pd.DataFrame:
    """The Istio rate frame from raw cumulative samples (metrics-table columns).

    `window` = (start, end) in epoch seconds: rates are increases over that window / its length
    (samples before the start serve only as baselines). Without it the window is the samples' own
    time range, so a series observed throughout gives its increase / that span.
    """
    if isinstance(samples, pd.DataFrame):
        samples = tables.conform(samples, tables.SPECS["metrics"])
    starts = _process_starts(samples)
    if samples.num_rows:
        samples = samples.filter(_name_mask(samples.column(s.METRIC), prefix))
    if samples.num_rows == 0:
        return _empty_rates()
    df = tables.to_pandas(samples, categorical=True)  # labels as codes: spelled out, a 5-minute read took ~150 MB
    if window is None:
        t = df[s.TIME].astype("int64").to_numpy() / 1e9
        window = (float(t.min()), float(t.max()))
    return tables.plain_strings(_frame_rates(df, window, starts))


def _frame_rates(df: pd.DataFrame, window: tuple[float, float],
                 starts: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The rate frame of cumulative samples (pandas, already cut to the window's read) over `window`."""
    df = _from_baselines(df, *window)
    series_rates = _series_rates(df, window, starts)
    if series_rates.empty:
        return _empty_rates()
    keys = [*s.ISTIO_LABELS, s.METRIC, s.LE]
    out = series_rates.groupby(keys, dropna=False, sort=False, observed=True)[s.RATE].sum().reset_index()
    return out[list(RATE_COLUMNS)]


def istio_rates_range(store: TelemetryStore, window_s: float, start: float, end: float, step: float,
                      prefix: str = "istio_") -> list[tuple[float, pd.DataFrame]]:
    """`istio_rates(store, window_s, t)` at t = end, end - step, ... down to `start` (oldest first), from ONE read.

    A page plotting a series (the Service page: 20 points) otherwise reads the store once per point,
    each read concatenating and filtering the same chunks (and segments) again. Here the whole span is
    read and made a frame once; each point takes the rows its own read would have (the same time bounds,
    in the store's order, by one vectorised mask over the read) and computes its rates as `istio_rates`
    does, so every frame equals the point-by-point one.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    n = int(np.floor((end - start) / step + 1e-6)) if end >= start else -1
    times = [end - step * i for i in range(n, -1, -1)]  # the points `end - step * i` a caller asks for, exactly
    if not times:
        return []
    lookback = pd.Timedelta(seconds=min(float(window_s), BASELINE_LOOKBACK_S))
    bounds = []
    for t in times:
        end_ts = _ts(t)
        start_ts = end_ts - pd.Timedelta(seconds=window_s)
        bounds.append((start_ts, end_ts))
    table = store.arrow("metrics", bounds[0][0] - lookback, bounds[-1][1] + lookback)
    starts = _process_starts(table)  # per scrape: a superset of any point's own, matched by scrape time
    if table.num_rows:
        table = table.filter(_name_mask(table.column(s.METRIC), prefix))
    if table.num_rows == 0:
        return [(t, _empty_rates()) for t in times]
    # label columns as categoricals, straight from the store's dictionaries: each point's row cut is then an
    # integer take per column instead of a take of Arrow strings (most of a point's cost), and the read is never
    # spelled out as strings (#18); each frame gets the plain string dtype back
    df = tables.to_pandas(table, categorical=True)
    tns = df[s.TIME].astype("int64").to_numpy()
    out = []
    for t, (start_ts, end_ts) in zip(times, bounds):  # per point (20), each a vectorised pass over its rows
        lo, hi = (start_ts - lookback).value, (end_ts + lookback).value
        keep = (tns >= lo) & (tns <= hi)
        if not keep.any():
            out.append((t, _empty_rates()))
            continue
        frame = _frame_rates(df[keep], (start_ts.timestamp(), end_ts.timestamp()), starts)
        out.append((t, tables.plain_strings(frame)))
    return out


def _from_baselines(df: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    """Rows from each target's last scrape at or before `start` (its baseline) up to its first scrape after `end`.

    The scrape after the end exists only for a window in the past; it lets the end be interpolated
    like the start instead of extrapolated (a late scrape round otherwise costs up to an interval).
    """
    t = df[s.TIME].astype("int64").to_numpy() / 1e9
    before, after = t <= start, t > end
    if not before.any() and not after.any():
        return df
    target = df[s.TARGET].astype(object).to_numpy()
    tgt = pd.Series(target)
    tb = tgt.map(pd.Series(t[before]).groupby(target[before]).max()).to_numpy(dtype=float) if before.any() \
        else np.full(len(t), np.nan)  # NaN: the target has no scrape before the window
    ta = tgt.map(pd.Series(t[after]).groupby(target[after]).min()).to_numpy(dtype=float) if after.any() \
        else np.full(len(t), np.nan)
    keep = (np.isnan(tb) | (t >= tb)) & ((t <= end) | (t == ta))
    return df[keep]


def _process_starts(samples: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per target: its scrape times and the process start each scrape reports (epoch s), sorted by time.

    From the uptime gauge of the same scrape (start = scrape time - uptime). Whole seconds, so
    a start is known to within 1 s. Targets that do not report it are absent (no change then).
    """
    if samples.num_rows == 0 or s.TARGET not in samples.column_names:
        return {}
    up = samples.filter(pc.equal(samples.column(s.METRIC).cast(pa.string()), UPTIME_METRIC))
    if up.num_rows == 0:
        return {}
    t = up.column(s.TIME).cast(pa.int64()).to_numpy() / 1e9
    v = up.column(s.VALUE).to_numpy(zero_copy_only=False).astype(float)
    target = up.column(s.TARGET).cast(pa.string()).to_numpy(zero_copy_only=False)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in np.unique(target).tolist():  # per target (a handful), not per record
        sel = target == name
        order = np.argsort(t[sel], kind="stable")
        out[name] = (t[sel][order], (t[sel] - v[sel])[order])
    return out


def _name_mask(names: pa.ChunkedArray, prefix: str) -> pa.ChunkedArray:
    """Rows whose metric is a cumulative series under `prefix`; evaluated once per distinct name."""
    def wanted(values: pa.Array) -> pa.Array:
        hit = pc.ends_with(values, _CUMULATIVE_SUFFIXES[0])
        for suffix in _CUMULATIVE_SUFFIXES[1:]:
            hit = pc.or_(hit, pc.ends_with(values, suffix))
        return pc.and_(hit, pc.starts_with(values, prefix)) if prefix else hit

    chunks = []
    for chunk in names.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunks.append(pc.take(wanted(chunk.dictionary), chunk.indices))
        else:
            chunks.append(wanted(chunk))
    return pa.chunked_array(chunks, pa.bool_())


def _series_rates(df: pd.DataFrame, window: tuple[float, float],
                  starts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
    """One row per series with its rate over `window` (vectorized, no per-row Python).

    `starts`: per target, its process start at each scrape (`_process_starts`), when known.
    """
    w_start, w_end = window
    t = df[s.TIME].astype("int64").to_numpy() / 1e9
    series_key = [s.TARGET, s.METRIC, s.LABELS, s.LE]
    sid = df.groupby(series_key, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    order = np.lexsort((t, sid))
    sid, t = sid[order], t[order]
    v = df[s.VALUE].to_numpy(dtype=float)[order]
    first = np.ones(len(sid), dtype=bool)
    first[1:] = sid[1:] != sid[:-1]
    dv = np.empty_like(v)
    dv[0] = 0.0
    dv[1:] = v[1:] - v[:-1]
    inc = np.where(dv >= 0, dv, v)  # a drop is a reset: the counter restarted from 0
    inc = np.where(first, 0.0, inc)
    inc = np.nan_to_num(inc, nan=0.0)

    # a series first seen after its target's earlier scrapes started at 0 at the previous scrape
    target_codes, target_names = pd.factorize(df[s.TARGET].to_numpy()[order])
    t_first = t.copy()
    newborn_mask = np.zeros(len(sid), dtype=bool)
    first_idx = np.flatnonzero(first)
    ps = np.full(len(sid), np.nan)  # each sample's process start, where its target reports one
    for code in range(len(target_names)):  # per target (a handful), not per record
        mine = target_codes == code
        scrape_times = np.unique(t[mine])
        rows = first_idx[target_codes[first_idx] == code]
        pos = np.searchsorted(scrape_times, t[rows], side="left")
        has_prev = pos > 0
        prev_t = scrape_times[np.maximum(pos - 1, 0)]
        newborn = rows[has_prev]
        inc[newborn] = np.nan_to_num(v[newborn], nan=0.0)
        t_first[newborn] = prev_t[has_prev]
        newborn_mask[newborn] = True
        known = (starts or {}).get(str(target_names[code]))
        if known is not None:
            at, start = known
            idx = np.flatnonzero(mine)
            k = np.clip(np.searchsorted(at, t[idx]), 0, len(at) - 1)
            same = np.abs(at[k] - t[idx]) < 1e-6  # the uptime of the very same scrape
            ps[idx[same]] = start[k[same]]
    if not np.isnan(ps).all():
        # restarted since the previous sample (the start moved past it by more than the 1 s resolution):
        # the step is the new value even when the counter did not drop below its old value
        prev_t_row = np.r_[np.nan, t[:-1]]
        prev_ps = np.r_[np.nan, ps[:-1]]
        restarted = ~first & (ps > prev_t_row) & ~(ps <= prev_ps + 1.0)
        inc = np.where(restarted, np.nan_to_num(v, nan=0.0), inc)
        # a series first seen from a process that started inside the window (and after any earlier scrape of
        # its target) was 0 at that start: its first value is all increase since then
        zero_at = np.where(newborn_mask, np.maximum(t_first, ps), ps)
        from_start = first & (ps >= w_start) & (ps <= t) & (~newborn_mask | (ps > t_first))
        inc = np.where(from_start, np.nan_to_num(v, nan=0.0), inc)
        t_first = np.where(from_start, zero_at, t_first)
        newborn_mask = newborn_mask | from_start

    g = pd.DataFrame({"sid": sid, "inc": inc, "t0": t_first, "t": t, "v": v, "born": newborn_mask, "ps": ps})
    agg = g.groupby("sid", sort=False).agg(inc=("inc", "sum"), t0=("t0", "first"), t1=("t", "last"),
                                           n=("t", "size"), v0=("v", "first"), born=("born", "first"),
                                           ps=("ps", "first"))
    inc_s = agg["inc"].to_numpy(dtype=float)
    t0, t1 = agg["t0"].to_numpy(dtype=float), agg["t1"].to_numpy(dtype=float)
    born = agg["born"].to_numpy(dtype=bool)
    sampled = t1 - t0
    steps = agg["n"].to_numpy(dtype=float) - 1 + born  # a newborn's implicit 0 is one more step
    valid = sampled > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = np.where(valid, sampled / np.maximum(steps, 1), 0.0)
        to_start, to_end = t0 - w_start, w_end - t1
        near = 1.1 * avg
        # a process known to have run since before the window (its start time) had the series counting then:
        # extrapolate to the window start (still never before the counter's zero point, below)
        alive = ~born & (agg["ps"].to_numpy(dtype=float) < w_start)
        ext_start = np.where(to_start < 0, to_start,  # baseline before the window: interpolate back to its start
                             np.where((to_start < near) | alive, to_start, avg / 2))
        # never before the counter's zero point; a newborn was 0 at t0 already
        to_zero = np.where(inc_s > 0, sampled * np.nan_to_num(agg["v0"].to_numpy(dtype=float)) / inc_s, np.inf)
        ext_start = np.where(ext_start > 0, np.minimum(ext_start, np.where(born, 0.0, to_zero)), ext_start)
        # a scrape after the end (a window in the past): interpolate back to the end, like a baseline at the start
        ext_end = np.where(to_end < 0, to_end, np.where(to_end < near, to_end, avg / 2))
        # an edge with samples on both sides is interpolated between the two around it, not by stretching the
        # series' average over its whole span: a window just before or after a change (traffic starting,
        # stopping, a scenario) otherwise takes in or loses up to an interval of the other state (#20)
        c_start = _cumulative_at(sid, t, inc, first_idx, t0, born, w_start)
        c_end = _cumulative_at(sid, t, inc, first_idx, t0, born, w_end)
        per_s = inc_s / np.where(valid, sampled, 1.0)
        inside = c_end - c_start + per_s * (np.maximum(ext_start, 0.0) + np.maximum(ext_end, 0.0))
    length = w_end - w_start
    rate = np.maximum(inside, 0.0) / length if length > 0 else np.where(valid, inc_s / np.where(valid, sampled, 1.0), np.nan)
    rate = np.where(valid, rate, np.nan)
    valid = ~np.isnan(rate)
    first_rows = order[first_idx]  # original row of each series' first sample: carries its labels
    labels = df.iloc[first_rows].reset_index(drop=True)
    labels = labels.set_index(pd.Index(sid[first_idx])).loc[agg.index]
    labels = labels[[*s.ISTIO_LABELS, s.METRIC, s.LE]].reset_index(drop=True)
    labels[s.RATE] = rate
    return labels[valid].reset_index(drop=True)


def _cumulative_at(sid: np.ndarray, t: np.ndarray, inc: np.ndarray, first_idx: np.ndarray, t0: np.ndarray,
                   born: np.ndarray, x: float) -> np.ndarray:
    """Per series: its increase from its first point (t0, 0) up to `x`, linear between the samples around `x`.

    Rows are sorted by (sid, t); `inc` is each row's increase over the previous one (a newborn's first row:
    its whole value, from its zero point t0). Before t0: 0; after the last sample: the whole increase.
    """
    n_series = len(first_idx)
    cum = np.cumsum(inc)
    base = np.r_[0.0, cum][first_idx]  # the running sum just before each series' first row
    c = cum - np.repeat(base, np.diff(np.r_[first_idx, len(sid)]))
    count = np.bincount(sid, weights=(t <= x).astype(float), minlength=n_series).astype(np.int64)
    n = np.diff(np.r_[first_idx, len(sid)])
    last = first_idx + n - 1
    out = np.where(count >= n, c[last], 0.0)
    mid = (count >= 1) & (count < n)
    lo = first_idx + np.maximum(count - 1, 0)
    hi = np.minimum(lo + 1, last)
    span = t[hi] - t[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(span > 0, (x - t[lo]) / span, 1.0)
        out = np.where(mid, c[lo] + (c[hi] - c[lo]) * frac, out)
        # a newborn between its zero point and its first sample
        lead = (count == 0) & born & (t0 <= x)
        first_span = t[first_idx] - t0
        out = np.where(lead, c[first_idx] * np.where(first_span > 0, (x - t0) / first_span, 1.0), out)
    return out


def _empty_rates() -> pd.DataFrame:
    cols = {c: pd.Series(dtype="str") for c in (*s.ISTIO_LABELS, s.METRIC)}
    cols[s.LE] = pd.Series(dtype=float)
    cols[s.RATE] = pd.Series(dtype=float)
    return pd.DataFrame(cols)[list(RATE_COLUMNS)]


def histogram_quantile(q: float, buckets: pd.DataFrame, by: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Prometheus' `histogram_quantile(q, sum by (by, le) (rate(X_bucket[w])))`, vectorized.

    `buckets` has `le` and `rate` (cumulative per bucket; other rows are ignored). Rates
    are first summed by `by + le`. Within the bucket the rank falls in, linear interpolation;
    the first bucket's lower bound is 0; a rank in the +Inf bucket returns the largest finite
    bound; no +Inf bucket, the +Inf bucket alone or no observations gives NaN (as Prometheus 2.x:
    tests/collector/test_quantile_vs_prometheus.py). Returns `by` columns plus `value`.
    """
    by = list(by)
    b = buckets[buckets[s.LE].notna()] if s.LE in buckets else buckets.iloc[0:0]
    if s.METRIC in b.columns:
        b = b[b[s.METRIC].astype(str).str.endswith("_bucket")]
    if b.empty:
        return pd.DataFrame({**{c: pd.Series(dtype="str") for c in by}, "value": pd.Series(dtype=float)})
    g = b.groupby([*by, s.LE], dropna=False, sort=False, observed=True)[s.RATE].sum().reset_index()
    g = g.sort_values([*by, s.LE], kind="stable").reset_index(drop=True)
    gid = g.groupby(by, dropna=False, sort=False, observed=True).ngroup().to_numpy() if by else np.zeros(len(g), dtype=int)
    le = g[s.LE].to_numpy(dtype=float)
    cnt = g[s.RATE].to_numpy(dtype=float)
    cnt = pd.Series(cnt).groupby(gid).cummax().to_numpy()  # Prometheus fixes non-monotonic buckets
    n_groups = gid.max() + 1
    last = np.zeros(len(g), dtype=bool)
    last[:-1] = gid[:-1] != gid[1:]
    last[-1] = True
    total = np.full(n_groups, np.nan)
    has_inf = np.zeros(n_groups, dtype=bool)
    total[gid[last]] = cnt[last]
    has_inf[gid[last]] = np.isinf(le[last]) & (le[last] > 0)
    rank = q * total[gid]
    hit = cnt >= rank
    first_hit = hit & (pd.Series(hit).groupby(gid).cumsum().to_numpy() == 1)
    idx = np.flatnonzero(first_hit)
    result = np.full(n_groups, np.nan)
    is_first = np.ones(len(g), dtype=bool)
    is_first[1:] = gid[1:] != gid[:-1]
    prev = np.maximum(idx - 1, 0)
    lower = np.where(is_first[idx], 0.0, le[prev])
    lower_cnt = np.where(is_first[idx], 0.0, cnt[prev])
    upper, upper_cnt = le[idx], cnt[idx]
    r = rank[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        val = lower + (upper - lower) * (r - lower_cnt) / (upper_cnt - lower_cnt)
    val = np.where(upper_cnt == lower_cnt, np.nan, val)  # rank 0 in an empty first bucket: 0/0, as Prometheus
    val = np.where(np.isinf(upper), lower, val)  # rank in +Inf: the largest finite bound
    val = np.where(is_first[idx] & (upper <= 0), upper, val)
    result[gid[idx]] = val
    bad = ~has_inf | ~(total > 0) | (np.bincount(gid, minlength=n_groups) < 2)  # +Inf alone: no answer
    result[bad] = np.nan
    if q < 0:
        result[~bad] = -math.inf
    elif q > 1:
        result[~bad] = math.inf
    keys = g.loc[is_first, by].reset_index(drop=True) if by else pd.DataFrame(index=[0])
    keys = keys.iloc[np.argsort(gid[is_first], kind="stable")].reset_index(drop=True) if by else keys
    keys["value"] = result
    return keys


def _ts(t) -> pd.Timestamp:
    if isinstance(t, (int, float)):
        return pd.Timestamp(t, unit="s", tz="UTC")
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def request_table(store: TelemetryStore, window_s: float, end=None) -> pd.DataFrame:
    """Access-log requests that started in (end - window_s, end] (all of `schema.REQUESTS_COLUMNS`)."""
    end_ts = pd.Timestamp.now(tz="UTC") if end is None else _ts(end)
    return store.requests(end_ts - pd.Timedelta(seconds=window_s), end_ts)


def spans(store: TelemetryStore, window_s: float, end=None, trace_id: str | None = None,
          columns: list[str] | None = None) -> pd.DataFrame:
    """Spans that started in the window, optionally of one trace (hex id, any case), optionally only `columns`
    (those of `schema.SPANS_COLUMNS`; converting unneeded ones, attributes above all, is most of a read's cost)."""
    end_ts = pd.Timestamp.now(tz="UTC") if end is None else _ts(end)
    names = None if columns is None else [c for c in columns if c in s.SPANS_COLUMNS]
    # one trace: the store filters on its id before cutting the window, so 15 minutes of spans (attributes and
    # all) are not copied to keep one trace's (#18)
    where = None if trace_id is None else pc.field(s.TRACE_ID) == trace_id.lower()
    table = store.arrow("spans", end_ts - pd.Timedelta(seconds=window_s), end_ts, columns=names, filter_expr=where)
    return tables.to_pandas(table)


EDGE_KEYS = (s.SOURCE_WORKLOAD_NAMESPACE, s.SOURCE_WORKLOAD, s.DESTINATION_SERVICE)
SERVICE_KEYS = (s.DESTINATION_SERVICE,)


ONE_PER_EDGE = "edge"
_EDGE_IDENTITY = [s.SOURCE_WORKLOAD, s.SOURCE_WORKLOAD_NAMESPACE, s.DESTINATION_SERVICE, s.REQUEST_PROTOCOL]


def one_reporter_per_edge(rates: pd.DataFrame) -> pd.DataFrame:
    """The rows the graph counts: per (source workload, destination host, protocol) the caller's
    series where the caller reports that traffic, else the server's (callers outside the mesh).

    The caller saw every request it sent (client-side faults, refused connections, its own
    timeouts), so a timed-out request is its 504 UT once, not also the server's 0 DC.
    """
    if rates.empty:
        return rates
    keys = pd.MultiIndex.from_frame(rates[_EDGE_IDENTITY].astype(str))
    rep = rates[s.REPORTER].astype(str).to_numpy()
    has_source = keys.isin(keys[rep == "source"])
    return rates[~((rep == "destination") & has_source)]


def golden_signals(rates: pd.DataFrame, by: tuple[str, ...] | list[str] = EDGE_KEYS, reporter: str | None = ONE_PER_EDGE,
                   quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)) -> pd.DataFrame:
    """Request rate, error ratios and latency percentiles per group of an Istio rate frame.

    `by` = EDGE_KEYS (source workload -> destination service) or SERVICE_KEYS, or any labels.
    `reporter` picks one side so a request is not counted twice: "edge" (default) counts as the
    graph does (`one_reporter_per_edge`), so reports, the graph and this agree; "source" or
    "destination" take one side everywhere, None keeps both. Error ratios are
    5xx / all and 4xx / all of `istio_requests_total`; percentiles use the Prometheus method on
    `istio_request_duration_milliseconds_bucket`. Columns: by..., request_rate, error_5xx_ratio,
    error_4xx_ratio, p50_ms, p95_ms, p99_ms (as asked by `quantiles`).
    """
    by = list(by)
    if reporter == ONE_PER_EDGE:
        frame = one_reporter_per_edge(rates)
    else:
        frame = rates if reporter is None else rates[rates[s.REPORTER] == reporter]
    req = frame[frame[s.METRIC] == s.ISTIO_REQUESTS_TOTAL]
    code = req[s.RESPONSE_CODE].astype(str)
    req = req.assign(_5xx=req[s.RATE].where(code.str.startswith("5"), 0.0),
                     _4xx=req[s.RATE].where(code.str.startswith("4"), 0.0))
    out = req.groupby(by, sort=True, observed=True)[[s.RATE, "_5xx", "_4xx"]].sum().reset_index()
    out = out.rename(columns={s.RATE: "request_rate"})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["error_5xx_ratio"] = np.where(out["request_rate"] > 0, out["_5xx"] / out["request_rate"], np.nan)
        out["error_4xx_ratio"] = np.where(out["request_rate"] > 0, out["_4xx"] / out["request_rate"], np.nan)
    out = out.drop(columns=["_5xx", "_4xx"])
    buckets = frame[frame[s.METRIC] == f"{s.ISTIO_REQUEST_DURATION_MS}_bucket"]
    for q in quantiles:
        col = f"p{round(q * 100):d}_ms"
        if buckets.empty:
            out[col] = np.nan
            continue
        qs = histogram_quantile(q, buckets, by=by).rename(columns={"value": col})
        out = out.merge(qs, on=by, how="left") if len(out) else qs
    return out
