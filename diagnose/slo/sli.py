"""Counting good and bad events of an SLO from the collector's tables, vectorized.

Availability: a request is bad when the answer is a 5xx or there is none
(code 0, e.g. a reset). Latency: bad when it took longer than the threshold,
whatever its code (as Sloth's latency SLIs do). Events are read on the side
the SLO names (`source`: what callers saw, which also covers requests that
never reached the server, like mTLS resets; `destination`: the server's view),
falling back to the other side when only that one reports the service.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collector import schema as s
from diagnose.rules.runtime.traffic import CODE, DST, SIDE, SRC, SRC_NS, _text
from diagnose.slo.spec import SLO


@dataclass
class Events:
    """Events of one SLO in one batch: per-event times and bad marks (or counts), and per-caller totals."""

    times: np.ndarray
    total: np.ndarray
    bad: np.ndarray
    by_source: pd.DataFrame  # columns src, src_ns, total, bad

    @property
    def empty(self) -> bool:
        return self.times.size == 0


def _empty() -> Events:
    return Events(np.array([]), np.array([]), np.array([]),
                  pd.DataFrame({SRC: [], SRC_NS: [], "total": [], "bad": []}))


def _side_rows(frame: pd.DataFrame, slo: SLO) -> pd.DataFrame:
    rows = frame[frame[DST] == slo.service]
    mine = rows[rows[SIDE] == slo.reporter]
    return mine if len(mine) else rows[rows[SIDE] != slo.reporter]


def events_from_requests(edge_requests: pd.DataFrame, slo: SLO) -> Events:
    """Events from per-request rows (`RuntimeContext.edge_requests`).

    On numpy arrays, not frame selections: the live loop feeds every SLO each cycle with the rows since the last
    one, and a selection of the (Arrow-backed) frame per SLO cost ~25 ms of pandas overhead per SLO whatever the
    handful of rows (issue #18, idle is idle)."""
    if slo.sli not in ("availability", "latency") or edge_requests.empty:
        return _empty()
    dst, side = _strings(edge_requests, DST), _strings(edge_requests, SIDE)
    on = dst == slo.service
    mine = on & (side == slo.reporter)
    sel = mine if mine.any() else on & (side != slo.reporter)  # the other side when only it reports the service
    t = pd.to_numeric(edge_requests["t"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    idx = np.flatnonzero(sel & ~np.isnan(t))
    if idx.size == 0:
        return _empty()
    if slo.sli == "availability":
        code = pd.to_numeric(edge_requests[CODE], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[idx]
        bad = ((code >= 500) | (code == 0)).astype(float)
    else:
        ms = pd.to_numeric(edge_requests[s.DURATION_MS], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[idx]
        bad = (np.where(np.isnan(ms), np.inf, ms) > slo.threshold_ms).astype(float)
    # per caller, in order of first appearance (a groupby's machinery cost ~4 ms per call for a handful of rows)
    src, src_ns = _strings(edge_requests, SRC)[idx], _strings(edge_requests, SRC_NS)[idx]
    a, _ = pd.factorize(src, use_na_sentinel=False)
    b, ub = pd.factorize(src_ns, use_na_sentinel=False)
    pair, first = pd.factorize(a.astype(np.int64) * (len(ub) + 1) + b)
    _, at = np.unique(pair, return_index=True)  # codes follow first appearance: each caller's first row
    by_source = pd.DataFrame({SRC: src[at], SRC_NS: src_ns[at],
                              "total": np.bincount(pair, minlength=len(first)).astype(float),
                              "bad": np.bincount(pair, weights=bad, minlength=len(first))})
    return Events(t[idx], np.ones(idx.size), bad, by_source)


def _strings(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype=object)


def events_from_rates(rates: pd.DataFrame, slo: SLO, interval_s: float, end: float) -> Events:
    """Events over the last `interval_s` from the Istio rate frame (count = rate x interval)."""
    if slo.sli not in ("availability", "latency") or rates is None or rates.empty:
        return _empty()
    frame = pd.DataFrame({
        SIDE: _text(rates, s.REPORTER, "source").where(lambda v: v == "destination", "source"),
        DST: _text(rates, s.DESTINATION_SERVICE), SRC: _text(rates, s.SOURCE_WORKLOAD),
        SRC_NS: _text(rates, s.SOURCE_WORKLOAD_NAMESPACE), "metric": rates[s.METRIC].astype(str),
        CODE: pd.to_numeric(rates[s.RESPONSE_CODE], errors="coerce").fillna(0),
        "le": pd.to_numeric(rates[s.LE], errors="coerce") if s.LE in rates else np.nan,
        "n": pd.to_numeric(rates[s.RATE], errors="coerce").fillna(0.0) * interval_s,
    })
    if slo.sli == "availability":
        rows = _side_rows(frame[frame["metric"] == s.ISTIO_REQUESTS_TOTAL], slo)
        rows = rows.assign(total=rows["n"], bad=rows["n"].where((rows[CODE] >= 500) | (rows[CODE] == 0), 0.0))
    else:
        rows = _side_rows(frame[frame["metric"] == s.ISTIO_REQUEST_DURATION_MS + "_bucket"], slo)
        les = np.sort(rows["le"].dropna().unique())
        if les.size == 0:
            return _empty()
        under = les[les <= slo.threshold_ms]  # the largest bucket bound not above the threshold
        good_le = under[-1] if under.size else les[0]
        total = rows[np.isinf(rows["le"])]
        good = rows[rows["le"] == good_le]
        keys = [SRC, SRC_NS]
        merged = total.groupby(keys)["n"].sum().rename("total").to_frame().join(
            good.groupby(keys)["n"].sum().rename("good"), how="left").fillna(0.0).reset_index()
        rows = merged.assign(bad=(merged["total"] - merged["good"]).clip(lower=0.0))
    if rows.empty:
        return _empty()
    by_source = rows.groupby([SRC, SRC_NS], sort=False)[["total", "bad"]].sum().reset_index()
    t = float(end)
    return Events(np.array([t]), np.array([by_source["total"].sum()]), np.array([by_source["bad"].sum()]),
                  by_source)
