"""Promote / hold / roll back for every service whose traffic is split across versions.

Per service, the version carrying the most requests in the window is the stable one and
every other version a candidate. Each candidate is compared with the stable version on
- error rate: a one-sided test on the window's 5xx counts (counts, not averages: 3 errors
  in 10 requests is not evidence, 300 in 1,000 is): Fisher's exact test while errors are
  few (under 100), the two-proportion z-test beyond, and
- latency: a one-sided Mann-Whitney U test on the duration histograms (bucket counts,
  ties within a bucket counted as half), with p50/p95/p99 from the same buckets, and
- the slow tail: the share of requests slower than the bucket of the stable p99, a count
  test like the errors' (a regression of the slowest 1-3 % moves neither p95 nor the U test).
Roll back when any is worse with significance and a meaningful effect; promote when
enough requests show no regression (not even a significant error rise under the rollback
margin); say "insufficient traffic" instead of guessing below the minimum; otherwise hold. Everything is computed for all services at once with array
operations, so a refresh over thousands of split services stays cheap.

While a rollout moves the weights, the window is cut into its steps (`evaluate_periods`,
fed by diagnose.canary.steps) and both tests are stratified by step, so what changes with
time for both versions is not charged to the candidate.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collector import schema

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


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal, elementwise (no scipy here; math.erfc over a plain list is the
    fastest exact form numpy offers: a ufunc over an object array costs twice as much)."""
    z = np.asarray(z, dtype=float)
    erfc, r = math.erfc, 1.0 / math.sqrt(2.0)
    return np.array([0.5 * erfc(x * r) for x in z.ravel().tolist()], dtype=float).reshape(z.shape)


def cmh_test(err_s: np.ndarray, n_s: np.ndarray, err_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """One-sided p that the candidate's error rate exceeds the stable one's, period by period
    (Cochran-Mantel-Haenszel over (candidates, periods) arrays; one period: the two-proportion test).

    Each period's candidate errors are compared with their expectation given that period's pooled
    errors (hypergeometric mean and variance); the sums over periods give one z."""
    err_s, n_s, err_c, n_c = (np.asarray(x, dtype=float).reshape(len(x), -1) for x in (err_s, n_s, err_c, n_c))
    m, t = err_s + err_c, n_s + n_c
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(t > 0, m * n_c / t, 0.0)
        var = np.where(t > 1, n_c * n_s * m * (t - m) / (t * t * (t - 1)), 0.0)
        v = var.sum(axis=1)
        z = np.where(v > 0, (err_c.sum(axis=1) - mean.sum(axis=1)) / np.sqrt(v), 0.0)
    return normal_sf(np.nan_to_num(z))


def _log_hypergeom(k: int, n1: int, n0: int) -> np.ndarray:
    """log P(X = x) for x = 0..min(k, n1): candidate errors among k errors of n1 + n0 requests.

    One lgamma evaluation at the lowest possible x, then the pmf's ratio recurrence
    P(x+1)/P(x) = (k-x)(n1-x) / ((x+1)(n0-k+x+1)) as one cumulative sum: no per-point lgamma."""
    hi = min(k, n1)
    lo = max(0, k - n0)
    out = np.full(hi + 1, -np.inf)
    if lo > hi:
        return out

    def logc(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    first = logc(n1, lo) + logc(n0, k - lo) - logc(n1 + n0, k)
    x = np.arange(lo, hi, dtype=float)
    steps = np.log((k - x) * (n1 - x)) - np.log((x + 1) * (n0 - k + x + 1))
    out[lo:] = first + np.concatenate(([0.0], np.cumsum(steps)))
    return out


def exact_stratified(err_s: np.ndarray, n_s: np.ndarray, err_c: np.ndarray, n_c: np.ndarray) -> float:
    """Exact one-sided p of the stratified test: P(candidate errors summed over periods >= observed), given
    each period's margins; the law of the sum is the convolution of the periods' hypergeometric laws
    (one period: Fisher's exact test)."""
    law = np.ones(1)
    observed = 0
    for es, ns, ec, nc in zip(*(np.asarray(x, dtype=float).tolist() for x in (err_s, n_s, err_c, n_c))):
        a, b, n1, n0 = (int(round(v)) for v in (ec, es, nc, ns))
        if n1 <= 0 or n0 <= 0:
            continue
        observed += a
        if a + b == 0:
            continue
        law = np.convolve(law, np.exp(_log_hypergeom(a + b, n1, n0)))
    return float(min(1.0, law[observed:].sum())) if observed < len(law) else 0.0


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


def _mw_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U - its mean, its variance) that B's values exceed A's, from per-bucket counts (rows x buckets).

    Within a bucket the order is unknown, so those pairs count as ties (half), with the tie-corrected
    variance of the normal approximation. Sums over independent periods give the stratified test."""
    n1, n2 = a.sum(axis=1), b.sum(axis=1)
    below_a = np.cumsum(a, axis=1) - a
    u = (b * (below_a + 0.5 * a)).sum(axis=1)  # pairs where B > A, ties half
    t = a + b
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        tie = np.where(n > 1, (t ** 3 - t).sum(axis=1) / (n * (n - 1)), 0.0)
        var = n1 * n2 / 12.0 * ((n + 1) - tie)
    return u - n1 * n2 / 2.0, np.where(n > 1, var, 0.0)


def mann_whitney(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One-sided p that B's values are stochastically larger than A's, from per-bucket counts.

    a, b: (groups, buckets) non-cumulative counts over the same ordered buckets."""
    d, var = _mw_parts(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, d / np.sqrt(var), 0.0)
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


# response flags of a request the destination's sidecar never counted: the connection failed or was refused
# (UF), no healthy host (UH), the caller's circuit breaker (UO), and retries exhausted (URX) when no other flag
# names an attempt the server did see (UT, UC: a per-try timeout or a reset is logged on both sides)
UNSEEN_BY_SERVER = frozenset({"UF", "UH", "UO"})


def _unseen(flags: str) -> bool:
    got = set(flags.split(","))
    return bool(UNSEEN_BY_SERVER & got) or got == {"URX"}


def _requests(rates: pd.DataFrame, window_s: float) -> dict[str, np.ndarray]:
    """Requests and 5xx per (host, namespace, version), grouped on label codes: only the few distinct
    names are ever turned into Python strings, never a column of them.

    The server's sidecar counts what reached it; a candidate whose pods refuse or drop connections (a crash
    loop, a wrong port, resets) fails its callers where no server sidecar sees it. Its callers' sidecars do
    (source reporter, the version from the chosen endpoint), with a flag saying the request never got an
    answer from the server: those requests are added to the version's counts (they are not in the server's)."""
    d = _select(rates, schema.ISTIO_REQUESTS_TOTAL)
    if schema.RESPONSE_FLAGS in rates.columns:
        src = rates[(rates[schema.REPORTER] == "source") & (rates[schema.METRIC] == schema.ISTIO_REQUESTS_TOTAL)]
        if len(src):
            flags = _label(src, schema.RESPONSE_FLAGS)
            unseen = np.asarray([_unseen(str(c)) for c in flags.cat.categories] + [False], dtype=bool)
            hit = unseen[flags.cat.codes.to_numpy()]
            if hit.any():
                d = pd.concat([d, src[hit]], ignore_index=True)
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


def _bucket_counts(rates: pd.DataFrame, window_s: float, host: np.ndarray, ver: np.ndarray,
                   bounds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative duration-bucket counts per (host, ver) row given, on one sorted `le` grid: (rows x bounds), bounds.

    The bucket series are matched to the rows through their category names (few), then integer keys."""
    d = _select(rates, f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket")
    if d.empty:
        return (np.zeros((len(host), 1)), np.array([np.inf])) if bounds is None else (np.zeros((len(host), len(bounds))), bounds)
    bh, bv = _label(d, schema.DESTINATION_SERVICE), _label(d, schema.DESTINATION_VERSION)
    le = d[schema.LE].to_numpy(dtype=float)
    if bounds is None:
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
    hit = (r >= 0) & ~np.isnan(le) & np.isin(le, bounds)
    cum = np.zeros((len(host), len(bounds)))
    np.add.at(cum, (row_of.to_numpy()[r[hit]], np.searchsorted(bounds, le[hit])), d[schema.RATE].to_numpy(dtype=float)[hit] * window_s)
    return np.maximum.accumulate(cum, axis=1), bounds  # cumulative, made monotonic


def evaluate(rates: pd.DataFrame, window_s: float, th: Thresholds = Thresholds(),
             stable: dict[str, str] | None = None) -> list[Verdict]:
    """A verdict per (split service, candidate version) over the window's destination-reported series."""
    return evaluate_periods([Period(0.0, window_s, rates)], th, stable)


@dataclass
class Period:
    """A stretch of the window with one set of weights (a rollout step): its own rate frame."""

    start: float  # seconds (epoch, or offsets: only differences and order matter)
    end: float
    rates: pd.DataFrame | None

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)


def evaluate_periods(periods: list[Period], th: Thresholds = Thresholds(),
                     stable: dict[str, str] | None = None) -> list[Verdict]:
    """Verdicts over a window cut into periods (the steps of a rollout), compared period by period.

    When the weights move (90/10, then 70/30, then 50/50) the two versions are not sampled over the
    same stretches of time: most of the candidate's requests come from the later steps. Anything that
    changes with time for both versions (a dependency's bad minute, load rising with the candidate's
    share) would then be charged to the candidate by a comparison of window totals (Simpson's paradox).
    So each test is stratified by period and only periods where both versions served requests count:
    errors by the Cochran-Mantel-Haenszel test (exact: the convolution of each period's hypergeometric
    law, while errors are few), latency by the Mann-Whitney U summed over periods (van Elteren's test
    with unit weights), and the effects (error rate, p50/p95/p99) against the stable version's figures
    reweighted to the candidate's traffic per period. One period is the plain two-sample comparison.

    `stable` (host -> version) names the stable version where the caller knows it (the rollout's
    starting weights); otherwise it is the version with the most requests in the earliest period
    the host had traffic, so a candidate that has taken most of the traffic stays the candidate.
    """
    periods = [p for p in periods]
    if not periods or all(p.rates is None or p.rates.empty for p in periods):
        return []
    reqs = [_requests(p.rates, p.seconds) if p.rates is not None and not p.rates.empty else _no_requests()
            for p in periods]
    kk = len(periods)
    k_of = np.concatenate([np.full(len(r["n"]), k, dtype=np.int64) for k, r in enumerate(reqs)])
    cat = {key: np.concatenate([r[key] for r in reqs]) for key in ("host", "ns", "ver", "n", "err")}
    hid_all, hosts = pd.factorize(cat["host"], sort=True)
    vid_all, vers = pd.factorize(cat["ver"], sort=True)
    nv = max(len(vers), 1)
    keys, row_id = np.unique(hid_all.astype(np.int64) * nv + vid_all, return_inverse=True)
    row_h, row_v = keys // nv, keys % nv
    nrow = len(keys)
    n_rk, e_rk = np.zeros((nrow, kk)), np.zeros((nrow, kk))
    np.add.at(n_rk, (row_id, k_of), cat["n"])
    np.add.at(e_rk, (row_id, k_of), cat["err"])
    row_ns = np.empty(nrow, dtype=object)
    row_ns[row_id] = cat["ns"]
    nver = np.bincount(row_h, minlength=len(hosts))
    split = nver[row_h] >= 2
    if not split.any():
        return []
    # stable per host: named by the caller, else the most requests in the host's earliest period with traffic
    busy = n_rk > 0
    first_row = np.where(busy.any(axis=1), busy.argmax(axis=1), kk)
    first_host = np.full(len(hosts), kk, dtype=np.int64)
    np.minimum.at(first_host, row_h, first_row)
    fk = np.minimum(first_host[row_h], kk - 1)
    score = n_rk[np.arange(nrow), fk]
    if stable:
        named = pd.Index(np.asarray(hosts, dtype=object)).get_indexer(list(stable))
        want = np.full(len(hosts), -1, dtype=np.int64)
        vcode = pd.Index(np.asarray(vers, dtype=object)).get_indexer(list(stable.values()))
        ok = named >= 0
        want[named[ok]] = vcode[ok]
        score = np.where(want[row_h] == row_v, np.inf, score)
    tot = n_rk.sum(axis=1)
    rows = np.flatnonzero(split)
    order = rows[np.lexsort((row_v[rows], -tot[rows], -score[rows], row_h[rows]))]
    first = np.r_[True, row_h[order][1:] != row_h[order][:-1]]
    stable_of = np.empty(len(hosts), dtype=np.int64)
    stable_of[row_h[order][first]] = order[first]
    ci = order[~first]
    si = stable_of[row_h[ci]]
    # only the periods where both versions served requests are compared
    both = (n_rk[si] > 0) & (n_rk[ci] > 0)
    nsk, esk = np.where(both, n_rk[si], 0.0), np.where(both, e_rk[si], 0.0)
    nck, eck = np.where(both, n_rk[ci], 0.0), np.where(both, e_rk[ci], 0.0)
    n_s, e_s, n_c, e_c = nsk.sum(axis=1), esk.sum(axis=1), nck.sum(axis=1), eck.sum(axis=1)
    p_err = cmh_test(esk, nsk, eck, nck)
    small = np.flatnonzero((e_s + e_c) < 100)  # few errors: the normal approximation is poor, use the exact test
    if kk == 1:  # as Python floats: rounding a numpy scalar costs ~100x a float's, and this runs per candidate
        args = zip(e_s[small].tolist(), n_s[small].tolist(), e_c[small].tolist(), n_c[small].tolist())
        p_err[small] = [fisher_greater(a, b, c, d) for a, b, c, d in args]
    else:
        p_err[small] = [exact_stratified(esk[i], nsk[i], eck[i], nck[i]) for i in small.tolist()]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.nan_to_num(nck / n_c[:, None])  # the candidate's traffic share of each period
        rate_sk = np.nan_to_num(esk / nsk)
        rate_s = (w * rate_sk).sum(axis=1)  # the stable rate over the candidate's periods, traffic-weighted
        rate_c = np.nan_to_num(e_c / n_c)
        # promote: how sure the candidate's error rate is within the margin of the stable one's (non-inferiority)
        ps = (esk + 0.5) / (nsk + 1)  # continuity: no zero variance at 0 errors
        pc = (e_c + 0.5) / (n_c + 1)
        var = (w ** 2 * ps * (1 - ps) / np.maximum(nsk, 1)).sum(axis=1) + pc * (1 - pc) / np.maximum(n_c, 1)
        noninferior = 1 - normal_sf(np.nan_to_num((th.error_margin - (rate_c - rate_s)) / np.sqrt(var)))
    # latency: one bucket grid for every period; per period the stable histogram weighted to the candidate's count
    bounds = _bounds([p.rates for p in periods]) if kk > 1 else None  # one period: its own grid, found once
    row_host = np.asarray(hosts, dtype=object)[row_h]
    row_ver = np.asarray(vers, dtype=object)[row_v]
    cum_s, cum_c = (np.zeros((len(ci), 1 if bounds is None else len(bounds))) for _ in range(2))
    du, dvar = np.zeros(len(ci)), np.zeros(len(ci))
    hist_steps = []
    for k, p in enumerate(periods):
        if p.rates is None or p.rates.empty:
            hist_steps.append(None)
            continue
        cum, bounds = _bucket_counts(p.rates, p.seconds, row_host, row_ver, bounds)
        if cum_s.shape[1] != len(bounds):
            cum_s, cum_c = np.zeros((len(ci), len(bounds))), np.zeros((len(ci), len(bounds)))
        cs, cc = cum[si] * both[:, k:k + 1], cum[ci] * both[:, k:k + 1]
        hs, hc = cs[:, -1], cc[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            cum_s += cs * np.nan_to_num(hc / hs)[:, None]
        cum_c += cc
        u, v = _mw_parts(np.diff(cs, axis=1, prepend=0.0), np.diff(cc, axis=1, prepend=0.0))
        du += u
        dvar += v
        hist_steps.append((cs, cc))
    has_hist = (cum_s[:, -1] > 0) & (cum_c[:, -1] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(dvar > 0, du / np.sqrt(dvar), 0.0)
    p_lat = np.where(has_hist, normal_sf(np.nan_to_num(z)), 1.0)
    qs = (0.5, 0.95, 0.99)
    q = _quantiles(np.vstack([cum_s, cum_c]), bounds, qs)
    m = len(ci)
    qs_s, qs_c = {x: q[x][:m] for x in qs}, {x: q[x][m:] for x in qs}
    p95_s, p95_c = qs_s[0.95], qs_c[0.95]
    p99_s, p99_c = qs_s[0.99], qs_c[0.99]
    with np.errstate(divide="ignore", invalid="ignore"):
        err_bad_all = (p_err < th.alpha) & (rate_c - rate_s >= th.error_margin)
        lat_bad_all = ((p_lat < th.alpha) & np.isfinite(p95_s) & np.isfinite(p95_c) & (p95_s > 0)
                       & (p95_c / np.where(p95_s > 0, p95_s, 1.0) >= th.latency_ratio))
        tail_slow = (has_hist & np.isfinite(p99_s) & np.isfinite(p99_c) & (p99_s > 0)
                     & (p99_c / np.where(p99_s > 0, p99_s, 1.0) >= th.latency_ratio))
    p_tail, tail_over = _tail_test(hist_steps, bounds, p99_s, tail_slow, kk)
    tail_bad_all = tail_slow & (p_tail < th.alpha)
    few_all = np.minimum(n_s, n_c) < th.min_requests
    # promote only what shows no regression: a significant error increase under the rollback margin (0 -> 0.5 %
    # errors; a tenth of the margin at least, so a million requests' 0.01-point noise does not hold forever), or
    # a p99 that is slower with some evidence, is held, never promoted
    err_sig = (p_err < th.alpha) & (rate_c - rate_s >= th.error_margin / 10)
    tail_sus = tail_slow & (p_tail < th.alpha * 5)
    promotable = (n_c >= th.promote_requests) & (noninferior >= 1 - th.alpha * 5) & ~err_sig & ~tail_sus
    n_s_l, n_c_l, e_s_l, e_c_l = n_s.tolist(), n_c.tolist(), e_s.tolist(), e_c.tolist()
    rate_s_l, rate_c_l, p_err_l, p_lat_l = rate_s.tolist(), rate_c.tolist(), p_err.tolist(), p_lat.tolist()
    (p50s, p50c), (p95s_l, p95c_l), (p99s, p99c) = ((qs_s[x].tolist(), qs_c[x].tolist()) for x in qs)
    few_l, err_bad_l, lat_bad_l, prom_l = few_all.tolist(), err_bad_all.tolist(), lat_bad_all.tolist(), promotable.tolist()
    tail_bad_l, p_tail_l, err_sig_l, tail_sus_l = tail_bad_all.tolist(), p_tail.tolist(), err_sig.tolist(), tail_sus.tolist()
    nonin_l = noninferior.tolist()
    hosts_l, ns_l, ver_l = row_host[ci].tolist(), row_ns[ci].tolist(), row_ver[ci].tolist()
    st_ver = row_ver[si].tolist()
    tests = {"errors": "one-sided Fisher exact (under 100 errors) or two-proportion z-test on 5xx counts",
             "latency": "one-sided Mann-Whitney U on duration histogram buckets",
             "tail": "one-sided Fisher exact / two-proportion test on the requests slower than the stable p99's bucket"}
    if kk > 1:
        tests = {"errors": "one-sided Cochran-Mantel-Haenszel test on 5xx counts stratified by rollout step "
                           "(exact under 100 errors)",
                 "latency": "one-sided Mann-Whitney U on duration histogram buckets summed over rollout steps "
                            "(van Elteren)",
                 "tail": "one-sided Cochran-Mantel-Haenszel test on the requests slower than the stable p99's bucket, "
                         "stratified by rollout step (exact under 100 such requests)"}
    steps = _steps(periods, n_rk, e_rk, si, ci, hist_steps, bounds) if kk > 1 else None
    window_s = float(sum(p.seconds for p in periods))
    out = []
    for k in range(len(ci)):
        host, ns, ver, sv = hosts_l[k], ns_l[k], ver_l[k], st_ver[k]
        p95s, p95c = p95s_l[k], p95c_l[k]
        lat = {"p50": {"stable": p50s[k], "candidate": p50c[k]}, "p95": {"stable": p95s, "candidate": p95c},
               "p99": {"stable": p99s[k], "candidate": p99c[k]}}
        ev = {"window_s": window_s, "requests": {"stable": n_s_l[k], "candidate": n_c_l[k]},
              "errors": {"stable": e_s_l[k], "candidate": e_c_l[k]},
              "error_rate": {"stable": rate_s_l[k], "candidate": rate_c_l[k]}, "error_p_value": p_err_l[k],
              "latency_ms": lat, "latency_p_value": p_lat_l[k], "tail_p_value": p_tail_l[k],
              "test": tests}  # one shared, read-only
        if tail_over[k] is not None:
            ev["tail"] = tail_over[k]
        if steps is not None:
            ev["steps"] = steps[k]
        err_bad, lat_bad, tail_bad = err_bad_l[k], lat_bad_l[k], tail_bad_l[k]
        if few_l[k]:
            v, conf = INSUFFICIENT, 0.0
            why = (f"too little traffic to judge: {n_c_l[k]:.0f} requests to {ver} and {n_s_l[k]:.0f} to {sv} in the "
                   f"window{' (periods both served)' if kk > 1 else ''}; need {th.min_requests} each")
        elif err_bad or lat_bad or tail_bad:
            v = ROLLBACK
            parts = []
            if err_bad:
                parts.append(f"error rate {rate_c_l[k]:.2%} vs {rate_s_l[k]:.2%} (p={p_err_l[k]:.2g})")
            if lat_bad:
                parts.append(f"p95 {p95c:.0f} ms vs {p95s:.0f} ms (p={p_lat_l[k]:.2g})")
            if tail_bad:
                parts.append(f"p99 {p99c[k]:.0f} ms vs {p99s[k]:.0f} ms: {_tail_words(tail_over[k])} "
                             f"(p={p_tail_l[k]:.2g})")
            conf = 1.0 - float(min(p_err_l[k] if err_bad else 1.0, p_lat_l[k] if lat_bad else 1.0,
                                   p_tail_l[k] if tail_bad else 1.0))
            why = f"{ver} is worse than {sv}: " + "; ".join(parts)
        elif prom_l[k]:
            v = PROMOTE
            conf = float(nonin_l[k])
            why = (f"{ver} matches {sv} over {n_c_l[k]:.0f} requests: error rate {rate_c_l[k]:.2%} vs {rate_s_l[k]:.2%}, "
                   f"p95 {p95c:.0f} ms vs {p95s:.0f} ms")
        elif err_sig_l[k] or tail_sus_l[k]:
            v, conf = HOLD, float(1 - min(p_err_l[k] if err_sig_l[k] else 1.0, p_tail_l[k] if tail_sus_l[k] else 1.0))
            parts = []
            if err_sig_l[k]:
                parts.append(f"its error rate {rate_c_l[k]:.2%} vs {rate_s_l[k]:.2%} is higher (p={p_err_l[k]:.2g}), "
                             f"though by less than the {th.error_margin:.0%} that rolls back")
            if tail_sus_l[k]:
                parts.append(f"its p99 {p99c[k]:.0f} ms vs {p99s[k]:.0f} ms: {_tail_words(tail_over[k])} "
                             f"(p={p_tail_l[k]:.2g}, not yet below {th.alpha:g})")
            why = f"{ver} is not promoted over {n_c_l[k]:.0f} requests: " + "; ".join(parts)
        else:
            v, conf = HOLD, float(1 - min(p_err_l[k], p_lat_l[k]))
            why = (f"{ver} shows no regression yet over {n_c_l[k]:.0f} requests, but not enough to promote "
                   f"({th.promote_requests} requests and error rate within {th.error_margin:.0%} of {sv} with "
                   f"{1 - th.alpha * 5:.0%} confidence; now {nonin_l[k]:.0%})")
        if kk > 1 and v != INSUFFICIENT:
            why += f", compared step by step over {sum(1 for s in ev['steps'] if s['compared'])} rollout steps"
        out.append(Verdict(host, ns, sv, ver, v, round(conf, 6), why, ev))
    return out


def _tail_test(hist: list, bounds: np.ndarray, p99_s: np.ndarray, rows: np.ndarray, kk: int
               ) -> tuple[np.ndarray, list[dict[str, Any] | None]]:
    """Is the candidate's slow tail heavier? Per candidate row in `rows` (its p99 is notably higher), the
    requests slower than the bucket holding the stable p99 (about 1 % of the stable's) against all, period by
    period: the same stratified count test as errors. Mann-Whitney ranks the whole distribution and misses a
    regression of the slowest 1-3 %; p95 misses it by construction. Returns (p, what was counted) per row."""
    m = len(p99_s)
    p = np.ones(m)
    told: list[dict[str, Any] | None] = [None] * m
    idx_rows = np.flatnonzero(rows)
    if not len(idx_rows) or bounds is None:
        return p, told
    at = np.minimum(np.searchsorted(bounds, p99_s[idx_rows], side="left"), len(bounds) - 1)
    keep = ~np.isinf(bounds[at])  # the stable p99 in the +Inf bucket: no bound to count the tail over
    idx_rows, at = idx_rows[keep], at[keep]
    steps = [h for h in hist if h is not None]
    if not len(idx_rows) or not steps:
        return p, told
    tot_s = np.stack([cs[idx_rows, -1] for cs, _ in steps], axis=1)
    tot_c = np.stack([cc[idx_rows, -1] for _, cc in steps], axis=1)
    slow_s = tot_s - np.stack([cs[idx_rows, at] for cs, _ in steps], axis=1)
    slow_c = tot_c - np.stack([cc[idx_rows, at] for _, cc in steps], axis=1)
    got = cmh_test(slow_s, tot_s, slow_c, tot_c)
    for j in np.flatnonzero((slow_s.sum(axis=1) + slow_c.sum(axis=1)) < 100).tolist():
        got[j] = (fisher_greater(slow_s[j, 0], tot_s[j, 0], slow_c[j, 0], tot_c[j, 0]) if kk == 1 else
                  exact_stratified(slow_s[j], tot_s[j], slow_c[j], tot_c[j]))
    p[idx_rows] = got
    for j, i in enumerate(idx_rows.tolist()):
        ns, nc = float(tot_s[j].sum()), float(tot_c[j].sum())
        told[i] = {"over_ms": float(bounds[at[j]]),
                   "stable": float(slow_s[j].sum() / ns) if ns else None,
                   "candidate": float(slow_c[j].sum() / nc) if nc else None}
    return p, told


def _tail_words(t: dict[str, Any] | None) -> str:
    if not t or t.get("candidate") is None or t.get("stable") is None:
        return "a slower tail"
    return f"{t['candidate']:.1%} of requests over {t['over_ms']:.0f} ms vs {t['stable']:.1%}"


def _no_requests() -> dict[str, np.ndarray]:
    return {"host": np.array([], dtype=object), "ns": np.array([], dtype=object), "ver": np.array([], dtype=object),
            "n": np.array([], dtype=float), "err": np.array([], dtype=float)}


def _bounds(frames: list[pd.DataFrame | None]) -> np.ndarray:
    """The union of the periods' histogram bounds (normally one grid), sorted; [+Inf] without histograms."""
    les = [f.loc[(f[schema.REPORTER] == "destination") & (f[schema.METRIC] == f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket"),
                 schema.LE].to_numpy(dtype=float)
           for f in frames if f is not None and not f.empty and schema.LE in f.columns]
    le = np.concatenate(les) if les else np.array([])
    le = le[~np.isnan(le)]
    return np.unique(le) if len(le) else np.array([np.inf])


def _steps(periods: list[Period], n_rk: np.ndarray, e_rk: np.ndarray, si: np.ndarray, ci: np.ndarray,
           hist: list, bounds: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per candidate, what each rollout step showed: requests, the candidate's share, error rates, p95."""
    m = len(ci)
    p95 = []
    for h in hist:
        if h is None:
            p95.append((np.full(m, np.nan), np.full(m, np.nan)))
            continue
        q = _quantiles(np.vstack(h), bounds, (0.95,))[0.95]
        p95.append((q[:m], q[m:]))
    out: list[list[dict[str, Any]]] = [[] for _ in range(m)]
    for k, p in enumerate(periods):
        ns, nc, es, ec = n_rk[si, k].tolist(), n_rk[ci, k].tolist(), e_rk[si, k].tolist(), e_rk[ci, k].tolist()
        qs, qc = p95[k][0].tolist(), p95[k][1].tolist()
        for i in range(m):
            out[i].append({
                "start": p.start, "end": p.end, "requests": {"stable": ns[i], "candidate": nc[i]},
                "candidate_share": nc[i] / (ns[i] + nc[i]) if ns[i] + nc[i] > 0 else None,
                "error_rate": {"stable": es[i] / ns[i] if ns[i] else None, "candidate": ec[i] / nc[i] if nc[i] else None},
                "p95_ms": {"stable": _finite(qs[i]), "candidate": _finite(qc[i])},
                "compared": ns[i] > 0 and nc[i] > 0})
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _quantiles(cum: np.ndarray, bounds: np.ndarray, qs: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per row, Prometheus-style quantiles of cumulative bucket counts on one shared grid of bounds.

    topology.quantile's rules (linear inside the bucket the rank falls in, 0 as the first lower bound,
    the bucket's lower bound for ranks in +Inf, NaN without +Inf or observations) on a dense
    (rows x bounds) array: every row has the same grid here, so no grouping plan is needed."""
    rows, nb = cum.shape
    out = {}
    if not rows:
        return {x: np.empty(0) for x in qs}
    total = cum[:, -1]
    valid = (total > 0) & bool(np.isinf(bounds[-1]) and bounds[-1] > 0)
    r = np.arange(rows)
    for x in qs:
        rank = x * total
        idx = np.minimum((cum >= rank[:, None]).argmax(axis=1), nb - 1)
        first = idx == 0
        prev = np.maximum(idx - 1, 0)
        lower = np.where(first, 0.0, bounds[prev])
        lower_c = np.where(first, 0.0, cum[r, prev])
        upper, upper_c = bounds[idx], cum[r, idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            val = lower + (upper - lower) * (rank - lower_c) / (upper_c - lower_c)
        val = np.where(upper_c == lower_c, upper, val)
        val = np.where(np.isinf(upper), lower, val)
        val = np.where(first & (upper <= 0), upper, val)
        out[x] = np.where(valid, val, np.nan)
    return out
