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
    """Events from per-request rows (`RuntimeContext.edge_requests`)."""
    if slo.sli not in ("availability", "latency") or edge_requests.empty:
        return _empty()
    rows = _side_rows(edge_requests, slo)
    rows = rows[rows["t"].notna()]
    if rows.empty:
        return _empty()
    if slo.sli == "availability":
        bad = ((rows[CODE] >= 500) | (rows[CODE] == 0)).to_numpy(dtype=float)
    else:
        bad = (pd.to_numeric(rows[s.DURATION_MS], errors="coerce").fillna(np.inf) > slo.threshold_ms).to_numpy(dtype=float)
    per = pd.DataFrame({SRC: rows[SRC].to_numpy(), SRC_NS: rows[SRC_NS].to_numpy(), "total": 1.0, "bad": bad})
    by_source = per.groupby([SRC, SRC_NS], sort=False)[["total", "bad"]].sum().reset_index()
    return Events(rows["t"].to_numpy(dtype=float), np.ones(len(rows)), bad, by_source)


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
