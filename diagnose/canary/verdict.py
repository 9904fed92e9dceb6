"""Promote / hold / roll back for every service whose traffic is split across versions.

Per service, the version carrying the most requests in the window is the stable one and
every other version a candidate. Each candidate is compared with the stable version on
- error rate: a one-sided test on the window's 5xx counts (counts, not averages: 3 errors
  in 10 requests is not evidence, 300 in 1,000 is): Fisher's exact test while errors are
  few (under 100), the two-proportion z-test beyond, and
- latency: a one-sided Mann-Whitney U test on the duration histograms (bucket counts,
  ties within a bucket counted as half), with p50/p95/p99 from the same buckets.
Roll back when either is worse with significance and a meaningful effect; promote when
enough requests show neither; say "insufficient traffic" instead of guessing below the
minimum; otherwise hold. Everything is computed for all services at once with array
operations, so a refresh over thousands of split services stays cheap.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collector import schema
from topology import quantile

PROMOTE, HOLD, ROLLBACK, INSUFFICIENT = "promote", "hold", "rollback", "insufficient_traffic"


@dataclass(frozen=True)
class Thresholds:
    min_requests: int = 100  # per version, below this nothing is claimed
    promote_requests: int = 500  # a candidate needs this many to be promoted
    alpha: float = 0.01  # significance for a regression
    error_margin: float = 0.01  # absolute error-rate increase that matters (1 point)
    latency_ratio: float = 1.2  # p95 increase that matters (+20 %)


@dataclass
class Verdict:
    service: str  # host
    namespace: str
    stable: str
    candidate: str
    verdict: str
    confidence: float  # probability the verdict's claim holds (1 - p of the deciding test)
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_sf = np.frompyfunc(lambda z: 0.5 * math.erfc(z / math.sqrt(2.0)), 1, 1)


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal, elementwise (no scipy here)."""
    return np.asarray(_sf(np.asarray(z, dtype=float)), dtype=float)


def error_test(err_s: np.ndarray, n_s: np.ndarray, err_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """One-sided p-value that the candidate's error rate exceeds the stable one's (pooled z-test)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_s, p_c = err_s / n_s, err_c / n_c
        pooled = (err_s + err_c) / (n_s + n_c)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_s + 1 / n_c))
        z = np.where(se > 0, (p_c - p_s) / se, 0.0)
    return normal_sf(np.nan_to_num(z))


def fisher_greater(err_s: float, n_s: float, err_c: float, n_c: float) -> float:
    """Fisher's exact one-sided p: P(candidate errors >= observed) given the pooled errors (hypergeometric)."""
    a, b = int(round(err_c)), int(round(err_s))
    n1, n0 = int(round(n_c)), int(round(n_s))
    big_n, k = n1 + n0, a + b
    if k == 0 or n1 == 0 or n0 == 0:
        return 1.0

    def logc(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    denom = logc(big_n, n1)
    hi = min(k, n1)
    return float(min(1.0, sum(math.exp(logc(k, x) + logc(big_n - k, n1 - x) - denom) for x in range(a, hi + 1))))


def mann_whitney(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One-sided p that B's values are stochastically larger than A's, from per-bucket counts.

    a, b: (groups, buckets) non-cumulative counts over the same ordered buckets. Within a
    bucket the order is unknown, so those pairs count as ties (half), with the tie-corrected
    variance of the normal approximation.
    """
    n1, n2 = a.sum(axis=1), b.sum(axis=1)
    below_a = np.cumsum(a, axis=1) - a
    u = (b * (below_a + 0.5 * a)).sum(axis=1)  # pairs where B > A, ties half
    t = a + b
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        tie = (t ** 3 - t).sum(axis=1) / (n * (n - 1))
        var = n1 * n2 / 12.0 * ((n + 1) - tie)
        z = np.where(var > 0, (u - n1 * n2 / 2.0) / np.sqrt(var), 0.0)
    return normal_sf(np.nan_to_num(z))


def _label(frame: pd.DataFrame, name: str) -> pd.Series:
    col = frame[name] if name in frame.columns else pd.Series("unknown", index=frame.index)
    return col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(str).astype("category")


def _select(rates: pd.DataFrame, metric: str) -> pd.DataFrame:
    return rates[(rates[schema.REPORTER] == "destination") & (rates[schema.METRIC] == metric)]


def _names(col: pd.Series) -> np.ndarray:
    """A categorical column's category names as an object array, with "nan" last (code -1 lands there)."""
    return np.asarray([str(c) for c in col.cat.categories] + ["nan"], dtype=object)


_UNLABELLED = ["unknown", "", "nan"]


def _requests(rates: pd.DataFrame, window_s: float) -> dict[str, np.ndarray]:
    """Requests and 5xx per (host, namespace, version), grouped on label codes: only the few distinct
    names are ever turned into Python strings, never a column of them."""
    d = _select(rates, schema.ISTIO_REQUESTS_TOTAL)
    code = _label(d, schema.RESPONSE_CODE)
    five = np.asarray([str(c).startswith("5") for c in code.cat.categories] + [False], dtype=bool)
    n = d[schema.RATE].to_numpy(dtype=float) * window_s
    err = np.where(five[code.cat.codes.to_numpy()], n, 0.0)
    host, ns, ver = (_label(d, c) for c in (schema.DESTINATION_SERVICE, schema.DESTINATION_SERVICE_NAMESPACE,
                                            schema.DESTINATION_VERSION))
    f = pd.DataFrame({"h": host.cat.codes.to_numpy(), "s": ns.cat.codes.to_numpy(), "v": ver.cat.codes.to_numpy(),
                      "n": n, "err": err})
    g = f.groupby(["h", "s", "v"], sort=False)[["n", "err"]].sum().reset_index()
    out = {"host": _names(host)[g["h"].to_numpy()], "ns": _names(ns)[g["s"].to_numpy()],
           "ver": _names(ver)[g["v"].to_numpy()], "n": g["n"].to_numpy(dtype=float),
           "err": g["err"].to_numpy(dtype=float)}
    keep = ~np.isin(out["ver"], _UNLABELLED) & ~np.isin(out["host"], _UNLABELLED[:2])
    return {k: v[keep] for k, v in out.items()}


def _bucket_counts(rates: pd.DataFrame, window_s: float, host: np.ndarray, ver: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative duration-bucket counts per (host, ver) row given, on one sorted `le` grid: (rows x bounds), bounds.

    The bucket series are matched to the rows through their category names (few), then integer keys."""
    d = _select(rates, f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket")
    if d.empty:
        return np.zeros((len(host), 1)), np.array([np.inf])
    bh, bv = _label(d, schema.DESTINATION_SERVICE), _label(d, schema.DESTINATION_VERSION)
    le = d[schema.LE].to_numpy(dtype=float)
    bounds = np.unique(le[~np.isnan(le)]) if len(le) else np.array([np.inf])
    # the rows' host/ver as codes in the bucket frame's categories (-1: the frame has no such name)
    hmap = pd.Index(_names(bh)[:-1]).get_indexer(pd.Index(host.astype(object)))
    vmap = pd.Index(_names(bv)[:-1]).get_indexer(pd.Index(ver.astype(object)))
    nv = len(bv.cat.categories) + 1
    row_key = np.where((hmap >= 0) & (vmap >= 0), hmap.astype(np.int64) * nv + vmap, -1)
    series_key = bh.cat.codes.to_numpy().astype(np.int64) * nv + bv.cat.codes.to_numpy()
    valid = row_key >= 0
    row_of = pd.Series(np.flatnonzero(valid), index=row_key[valid])
    row_of = row_of[~row_of.index.duplicated()]
    r = pd.Index(row_of.index).get_indexer(series_key)
    hit = (r >= 0) & ~np.isnan(le)
    cum = np.zeros((len(host), len(bounds)))
    np.add.at(cum, (row_of.to_numpy()[r[hit]], np.searchsorted(bounds, le[hit])), d[schema.RATE].to_numpy(dtype=float)[hit] * window_s)
    return np.maximum.accumulate(cum, axis=1), bounds  # cumulative, made monotonic


def evaluate(rates: pd.DataFrame, window_s: float, th: Thresholds = Thresholds()) -> list[Verdict]:
    """A verdict per (split service, candidate version) over the window's destination-reported series."""
    if rates is None or rates.empty:
        return []
    req = _requests(rates, window_s)
    hid, hosts = pd.factorize(req["host"], sort=True)
    vid = pd.factorize(req["ver"], sort=True)[0]
    pairs = np.unique(hid.astype(np.int64) * (vid.max(initial=0) + 1) + vid)
    nver = np.bincount(pairs // (vid.max(initial=0) + 1), minlength=len(hosts))
    split = nver[hid] >= 2
    req = {k: v[split] for k, v in req.items()}
    hid, vid = hid[split], vid[split]
    if not len(hid):
        return []
    # per host: the version with the most requests is stable (ties: the lowest version name); the rest are candidates
    order = np.lexsort((vid, -req["n"], hid))
    first = np.r_[True, hid[order][1:] != hid[order][:-1]]
    stable_of = np.empty(hid.max() + 1, dtype=np.int64)
    stable_of[hid[order][first]] = order[first]
    ci = order[~first]
    si = stable_of[hid[ci]]
    n_s, e_s = req["n"][si], req["err"][si]
    n_c, e_c = req["n"][ci], req["err"][ci]
    p_err = error_test(e_s, n_s, e_c, n_c)
    small = np.flatnonzero((e_s + e_c) < 100)  # few errors: the normal approximation is poor, use the exact test
    # as Python floats: rounding a numpy scalar costs ~100x a float's, and this runs per small-count candidate
    args = zip(e_s[small].tolist(), n_s[small].tolist(), e_c[small].tolist(), n_c[small].tolist())
    p_err[small] = [fisher_greater(a, b, c, d) for a, b, c, d in args]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_s, rate_c = np.nan_to_num(e_s / n_s), np.nan_to_num(e_c / n_c)
    # promote: how sure the candidate's error rate is within the margin of the stable one's (non-inferiority)
    with np.errstate(divide="ignore", invalid="ignore"):
        ps, pc = (e_s + 0.5) / (n_s + 1), (e_c + 0.5) / (n_c + 1)  # continuity: no zero variance at 0 errors
        se = np.sqrt(ps * (1 - ps) / np.maximum(n_s, 1) + pc * (1 - pc) / np.maximum(n_c, 1))
        noninferior = 1 - normal_sf(np.nan_to_num((th.error_margin - (rate_c - rate_s)) / se))
    # latency: the same bucket grid for stable and candidate of each pair
    cum, bounds = _bucket_counts(rates, window_s, req["host"], req["ver"])
    counts = np.diff(cum, axis=1, prepend=0.0)
    has_hist = (counts[si].sum(axis=1) > 0) & (counts[ci].sum(axis=1) > 0)
    p_lat = np.where(has_hist, mann_whitney(counts[si], counts[ci]), 1.0)
    qs = (0.5, 0.95, 0.99)
    q = _quantiles(cum, bounds, qs)
    p95_s, p95_c = q[0.95][si], q[0.95][ci]
    with np.errstate(divide="ignore", invalid="ignore"):
        err_bad_all = (p_err < th.alpha) & (rate_c - rate_s >= th.error_margin)
        lat_bad_all = ((p_lat < th.alpha) & np.isfinite(p95_s) & np.isfinite(p95_c) & (p95_s > 0)
                       & (p95_c / np.where(p95_s > 0, p95_s, 1.0) >= th.latency_ratio))
    few_all = np.minimum(n_s, n_c) < th.min_requests
    promotable = (n_c >= th.promote_requests) & (noninferior >= 1 - th.alpha * 5)
    n_s_l, n_c_l, e_s_l, e_c_l = n_s.tolist(), n_c.tolist(), e_s.tolist(), e_c.tolist()
    rate_s_l, rate_c_l, p_err_l, p_lat_l = rate_s.tolist(), rate_c.tolist(), p_err.tolist(), p_lat.tolist()
    (p50s, p50c), (p95s_l, p95c_l), (p99s, p99c) = ((q[x][si].tolist(), q[x][ci].tolist()) for x in qs)
    few_l, err_bad_l, lat_bad_l, prom_l = few_all.tolist(), err_bad_all.tolist(), lat_bad_all.tolist(), promotable.tolist()
    nonin_l = noninferior.tolist()
    hosts_l, ns_l, ver_l = req["host"][ci].tolist(), req["ns"][ci].tolist(), req["ver"][ci].tolist()
    st_ver = req["ver"][si].tolist()
    tests = {"errors": "one-sided Fisher exact (under 100 errors) or two-proportion z-test on 5xx counts",
             "latency": "one-sided Mann-Whitney U on duration histogram buckets"}
    out = []
    for k in range(len(ci)):
        host, ns, ver, sv = hosts_l[k], ns_l[k], ver_l[k], st_ver[k]
        p95s, p95c = p95s_l[k], p95c_l[k]
        lat = {"p50": {"stable": p50s[k], "candidate": p50c[k]}, "p95": {"stable": p95s, "candidate": p95c},
               "p99": {"stable": p99s[k], "candidate": p99c[k]}}
        ev = {"window_s": window_s, "requests": {"stable": n_s_l[k], "candidate": n_c_l[k]},
              "errors": {"stable": e_s_l[k], "candidate": e_c_l[k]},
              "error_rate": {"stable": rate_s_l[k], "candidate": rate_c_l[k]}, "error_p_value": p_err_l[k],
              "latency_ms": lat, "latency_p_value": p_lat_l[k], "test": dict(tests)}
        err_bad, lat_bad = err_bad_l[k], lat_bad_l[k]
        if few_l[k]:
            v, conf = INSUFFICIENT, 0.0
            why = (f"too little traffic to judge: {n_c_l[k]:.0f} requests to {ver} and {n_s_l[k]:.0f} to {sv} in the "
                   f"window; need {th.min_requests} each")
        elif err_bad or lat_bad:
            v = ROLLBACK
            parts = []
            if err_bad:
                parts.append(f"error rate {rate_c_l[k]:.2%} vs {rate_s_l[k]:.2%} (p={p_err_l[k]:.2g})")
            if lat_bad:
                parts.append(f"p95 {p95c:.0f} ms vs {p95s:.0f} ms (p={p_lat_l[k]:.2g})")
            conf = 1.0 - float(min(p_err_l[k] if err_bad else 1.0, p_lat_l[k] if lat_bad else 1.0))
            why = f"{ver} is worse than {sv}: " + "; ".join(parts)
        elif prom_l[k]:
            v = PROMOTE
            conf = float(nonin_l[k])
            why = (f"{ver} matches {sv} over {n_c_l[k]:.0f} requests: error rate {rate_c_l[k]:.2%} vs {rate_s_l[k]:.2%}, "
                   f"p95 {p95c:.0f} ms vs {p95s:.0f} ms")
        else:
            v, conf = HOLD, float(1 - min(p_err_l[k], p_lat_l[k]))
            why = (f"{ver} shows no regression yet over {n_c_l[k]:.0f} requests, but not enough to promote "
                   f"({th.promote_requests} requests and error rate within {th.error_margin:.0%} of {sv} with "
                   f"{1 - th.alpha * 5:.0%} confidence; now {nonin_l[k]:.0%})")
        out.append(Verdict(host, ns, sv, ver, v, round(conf, 6), why, ev))
    return out


def _quantiles(cum: np.ndarray, bounds: np.ndarray, qs: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per row, Prometheus-style quantiles of cumulative bucket counts (via topology.quantile)."""
    rows, nb = cum.shape
    group = np.repeat(np.arange(rows), nb)
    le = np.tile(bounds, rows)
    ids, got = quantile.quantiles(group, le, cum.reshape(-1), qs)
    out = {x: np.full(rows, np.nan) for x in qs}
    for x in qs:
        out[x][ids.astype(int)] = got[x]
    return out
