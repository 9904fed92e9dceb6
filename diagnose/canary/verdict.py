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


def _decode(g: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    for c in cols:
        g[c] = g[c].astype(str).to_numpy(dtype=object)
    return g


def _requests(rates: pd.DataFrame, window_s: float) -> pd.DataFrame:
    """Requests and 5xx per (host, namespace, version): grouped on label codes, decoded after."""
    d = _select(rates, schema.ISTIO_REQUESTS_TOTAL)
    code = _label(d, schema.RESPONSE_CODE)
    five = np.asarray([str(c).startswith("5") for c in code.cat.categories], dtype=bool)
    n = d[schema.RATE].to_numpy(dtype=float) * window_s
    err = np.where(five[code.cat.codes.to_numpy()] & (code.cat.codes.to_numpy() >= 0), n, 0.0)
    f = pd.DataFrame({"host": _label(d, schema.DESTINATION_SERVICE), "ns": _label(d, schema.DESTINATION_SERVICE_NAMESPACE),
                      "ver": _label(d, schema.DESTINATION_VERSION), "n": n, "err": err})
    g = _decode(f.groupby(["host", "ns", "ver"], observed=True, sort=False)[["n", "err"]].sum().reset_index(),
                ["host", "ns", "ver"])
    return g[~g["ver"].isin(["unknown", "", "nan"]) & ~g["host"].isin(["unknown", ""])].reset_index(drop=True)


def _buckets(rates: pd.DataFrame, window_s: float) -> pd.DataFrame:
    d = _select(rates, f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket")
    f = pd.DataFrame({"host": _label(d, schema.DESTINATION_SERVICE), "ver": _label(d, schema.DESTINATION_VERSION),
                      "le": d[schema.LE].to_numpy(dtype=float), "c": d[schema.RATE].to_numpy(dtype=float) * window_s})
    return _decode(f.groupby(["host", "ver", "le"], observed=True, sort=False)["c"].sum().reset_index(), ["host", "ver"])


def evaluate(rates: pd.DataFrame, window_s: float, th: Thresholds = Thresholds()) -> list[Verdict]:
    """A verdict per (split service, candidate version) over the window's destination-reported series."""
    if rates is None or rates.empty:
        return []
    req = _requests(rates, window_s)
    nver = req.groupby("host")["ver"].transform("nunique")
    req = req[nver >= 2].copy()
    if req.empty:
        return []
    req = req.sort_values(["host", "n", "ver"], ascending=[True, False, True])
    stable = req.groupby("host", sort=False).head(1).set_index("host")
    cand = req[~req.index.isin(req.groupby("host", sort=False).head(1).index)]
    st = stable.loc[cand["host"]]
    n_s, e_s = st["n"].to_numpy(), st["err"].to_numpy()
    n_c, e_c = cand["n"].to_numpy(), cand["err"].to_numpy()
    p_err = error_test(e_s, n_s, e_c, n_c)
    small = np.flatnonzero((e_s + e_c) < 100)  # few errors: the normal approximation is poor, use the exact test
    for k in small:
        p_err[k] = fisher_greater(e_s[k], n_s[k], e_c[k], n_c[k])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_s, rate_c = np.nan_to_num(e_s / n_s), np.nan_to_num(e_c / n_c)
    # promote: how sure the candidate's error rate is within the margin of the stable one's (non-inferiority)
    with np.errstate(divide="ignore", invalid="ignore"):
        ps, pc = (e_s + 0.5) / (n_s + 1), (e_c + 0.5) / (n_c + 1)  # continuity: no zero variance at 0 errors
        se = np.sqrt(ps * (1 - ps) / np.maximum(n_s, 1) + pc * (1 - pc) / np.maximum(n_c, 1))
        noninferior = 1 - normal_sf(np.nan_to_num((th.error_margin - (rate_c - rate_s)) / se))
    # latency: the same bucket grid for stable and candidate of each pair
    bk = _buckets(rates, window_s)
    bounds = np.sort(bk["le"].unique()) if len(bk) else np.array([np.inf])
    cum = np.zeros((len(req), len(bounds)))
    req_host, req_ver = req["host"].to_numpy(dtype=object), req["ver"].to_numpy(dtype=object)
    pos = {(h, v): i for i, (h, v) in enumerate(zip(req_host.tolist(), req_ver.tolist()))}
    if len(bk):
        rows = pd.DataFrame({"host": req["host"].to_numpy(), "ver": req["ver"].to_numpy(), "_row": np.arange(len(req))})
        bk = bk.merge(rows, on=["host", "ver"], how="inner")
        col = np.searchsorted(bounds, bk["le"].to_numpy())
        np.add.at(cum, (bk["_row"].to_numpy(), col), bk["c"].to_numpy())
    cum = np.maximum.accumulate(cum, axis=1)  # cumulative, made monotonic
    counts = np.diff(cum, axis=1, prepend=0.0)
    c_host, c_ver = cand["host"].to_numpy(dtype=object).tolist(), cand["ver"].to_numpy(dtype=object).tolist()
    s_ver = st["ver"].to_numpy(dtype=object).tolist()
    si = np.array([pos[(h, v)] for h, v in zip(c_host, s_ver)], dtype=int)
    ci = np.array([pos[(h, v)] for h, v in zip(c_host, c_ver)], dtype=int)
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
    qv = {x: q[x].tolist() for x in qs}
    out = []
    st_ver = st["ver"].to_numpy(dtype=object)
    for k, (host, ns, ver) in enumerate(zip(cand["host"].to_numpy(dtype=object), cand["ns"].to_numpy(dtype=object),
                                            cand["ver"].to_numpy(dtype=object))):
        sv, s_row, c_row = st_ver[k], si[k], ci[k]
        lat = {f"p{int(x * 100)}": {"stable": qv[x][s_row], "candidate": qv[x][c_row]} for x in qs}
        p95s, p95c = lat["p95"]["stable"], lat["p95"]["candidate"]
        ev = {"window_s": window_s, "requests": {"stable": n_s_l[k], "candidate": n_c_l[k]},
              "errors": {"stable": e_s_l[k], "candidate": e_c_l[k]},
              "error_rate": {"stable": rate_s_l[k], "candidate": rate_c_l[k]}, "error_p_value": p_err_l[k],
              "latency_ms": lat, "latency_p_value": p_lat_l[k], "test": {
                  "errors": "one-sided Fisher exact (under 100 errors) or two-proportion z-test on 5xx counts",
                  "latency": "one-sided Mann-Whitney U on duration histogram buckets"}}
        err_bad, lat_bad = bool(err_bad_all[k]), bool(lat_bad_all[k])
        if few_all[k]:
            v, conf = INSUFFICIENT, 0.0
            why = (f"too little traffic to judge: {n_c[k]:.0f} requests to {ver} and {n_s[k]:.0f} to {sv} in the "
                   f"window; need {th.min_requests} each")
        elif err_bad or lat_bad:
            v = ROLLBACK
            parts = []
            if err_bad:
                parts.append(f"error rate {rate_c[k]:.2%} vs {rate_s[k]:.2%} (p={p_err[k]:.2g})")
            if lat_bad:
                parts.append(f"p95 {p95c:.0f} ms vs {p95s:.0f} ms (p={p_lat[k]:.2g})")
            conf = 1.0 - float(min(p_err[k] if err_bad else 1.0, p_lat[k] if lat_bad else 1.0))
            why = f"{ver} is worse than {sv}: " + "; ".join(parts)
        elif promotable[k]:
            v = PROMOTE
            conf = float(noninferior[k])
            why = (f"{ver} matches {sv} over {n_c[k]:.0f} requests: error rate {rate_c[k]:.2%} vs {rate_s[k]:.2%}, "
                   f"p95 {p95c:.0f} ms vs {p95s:.0f} ms")
        else:
            v, conf = HOLD, float(1 - min(p_err[k], p_lat[k]))
            why = (f"{ver} shows no regression yet over {n_c[k]:.0f} requests, but not enough to promote "
                   f"({th.promote_requests} requests and error rate within {th.error_margin:.0%} of {sv} with "
                   f"{1 - th.alpha * 5:.0%} confidence; now {noninferior[k]:.0%})")
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
