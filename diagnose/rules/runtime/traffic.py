"""What runtime rules read: one window of traffic, summarized once into a small `calls` frame.

A window can hold millions of access-log rows, so it is grouped exactly once by
edge and outcome (source, destination, code, flags, details). Every rule then
works on that summary with vectorized masks, never on single requests. The same
summary is built from the Istio rate frame (Prometheus or the local store) when
no access logs exist, so rules also run against a real cluster's Prometheus:
only the details and trace ids are then missing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from collector import schema as s

# Columns of the summary frame (internal to the runtime rules).
SIDE = "side"  # "source" (client sidecar or gateway) | "destination" (server sidecar)
SRC = "src"
SRC_NS = "src_ns"
DST = "dst"  # destination service FQDN (or the authority when no service matched)
DST_WL = "dst_wl"
CODE = "code"
FLAGS = "flags"
DETAILS = "details"
TFR = "tfr"
COUNT = "count"
FIRST = "first"
LAST = "last"
TRACES = "traces"

GROUP_KEYS = [SIDE, SRC, SRC_NS, DST, DST_WL, CODE, FLAGS, DETAILS, TFR]
SAMPLE_TRACES = 5
_MISSING = {"", "unknown", "-", "nan", "None"}


@dataclass
class RuntimeContext:
    """The inputs of one evaluation: tables for the window [start, end] (epoch seconds) and config.

    `requests` is the collector's requests table (access logs), `rates` the Istio
    rate frame; either may be None. `snapshot` is the config `Snapshot` (or None).
    `latency_baseline` maps an edge key to its usual p95 in ms (the live loop keeps it).
    """

    start: float
    end: float
    requests: pd.DataFrame | None = None
    rates: pd.DataFrame | None = None
    snapshot: Any = None
    latency_baseline: dict[str, float] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        return max(self.end - self.start, 1e-9)

    @cached_property
    def calls(self) -> pd.DataFrame:
        """The window summarized by edge and outcome (see module doc)."""
        parts = []
        if self.requests is not None and len(self.requests):
            parts.append(summarize_requests(self.requests))
        elif self.rates is not None and len(self.rates):
            parts.append(summarize_rates(self.rates, self.window_s, self.end))
        if not parts:
            return empty_calls()
        return parts[0]

    @cached_property
    def service_totals(self) -> pd.DataFrame:
        """Requests per destination service and side, the denominator of `share`."""
        c = self.calls
        return c.groupby([SIDE, DST], sort=False)[COUNT].sum()

    @cached_property
    def edge_totals(self) -> pd.Series:
        c = self.calls
        return c.groupby([SIDE, SRC, SRC_NS, DST], sort=False)[COUNT].sum()

    @cached_property
    def edge_requests(self) -> pd.DataFrame:
        """Per-request rows (time, edge, code, duration, trace) for latency and SLO counting; empty without access logs."""
        if self.requests is None or not len(self.requests):
            return pd.DataFrame(columns=[SIDE, SRC, SRC_NS, DST, "t", CODE, s.DURATION_MS, s.TRACE_ID])
        r = self.requests
        out = pd.DataFrame({
            SIDE: _side(r),
            SRC: _source(r),
            SRC_NS: _text(r, s.SOURCE_WORKLOAD_NAMESPACE),
            DST: _destination(r),
            "t": _epoch(r[s.START_TIME]) if s.START_TIME in r else np.nan,
            CODE: _codes(r[s.RESPONSE_CODE]) if s.RESPONSE_CODE in r else 0,
            s.DURATION_MS: pd.to_numeric(r[s.DURATION_MS], errors="coerce") if s.DURATION_MS in r else np.nan,
            s.TRACE_ID: _text(r, s.TRACE_ID),
        })
        return out


def empty_calls() -> pd.DataFrame:
    cols = {k: pd.Series(dtype="object") for k in GROUP_KEYS}
    cols[CODE] = pd.Series(dtype="int64")
    cols[COUNT] = pd.Series(dtype="float64")
    cols[FIRST] = pd.Series(dtype="float64")
    cols[LAST] = pd.Series(dtype="float64")
    cols[TRACES] = pd.Series(dtype="object")
    return pd.DataFrame(cols)


def _text(df: pd.DataFrame, col: str, default: str = "unknown") -> pd.Series:
    if col not in df:
        return pd.Series([default] * len(df), index=df.index, dtype="object")
    v = df[col].astype("object").where(df[col].notna(), default).astype(str)
    return v.where(~v.isin(["", "None", "nan"]), default)


def _side(df: pd.DataFrame) -> pd.Series:
    rep = _text(df, s.REPORTER, "source")
    return rep.where(rep == "destination", "source")


def _source(df: pd.DataFrame) -> pd.Series:
    """The calling workload; on the server side only the peer identity is known: `sa:<service account>`."""
    src = _text(df, s.SOURCE_WORKLOAD)
    if s.SOURCE_PRINCIPAL in df:
        sa = _text(df, s.SOURCE_PRINCIPAL).str.extract(r"/sa/([^/]+)$", expand=False)
        src = src.where((src != "unknown") | sa.isna(), "sa:" + sa.fillna(""))
    return src


def _destination(df: pd.DataFrame) -> pd.Series:
    """The destination service FQDN; the request's authority (host without port) when none matched (NR)."""
    dst = _text(df, s.DESTINATION_SERVICE)
    if s.AUTHORITY in df:
        auth = _text(df, s.AUTHORITY).str.replace(r":\d+$", "", regex=True)
        ns = _text(df, s.SOURCE_WORKLOAD_NAMESPACE)
        short = ~auth.str.contains(".", regex=False) & (ns != "unknown")
        auth = auth.where(~short, auth + "." + ns + ".svc.cluster.local")  # short hosts resolve in the caller's namespace
        dst = dst.where(~dst.isin(_MISSING), auth)
    return dst


def _epoch(col: pd.Series) -> pd.Series:
    """Seconds since the epoch for a datetime (or numeric seconds) column."""
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    t = pd.to_datetime(col, utc=True, errors="coerce")
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _codes(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")


def summarize_requests(requests: pd.DataFrame) -> pd.DataFrame:
    """Group the requests table by edge and outcome: counts, time span and sample trace ids."""
    r = requests
    frame = pd.DataFrame({
        SIDE: _side(r),
        SRC: _source(r),
        SRC_NS: _text(r, s.SOURCE_WORKLOAD_NAMESPACE),
        DST: _destination(r),
        DST_WL: _text(r, s.DESTINATION_WORKLOAD),
        CODE: _codes(r[s.RESPONSE_CODE]) if s.RESPONSE_CODE in r else 0,
        FLAGS: _text(r, s.RESPONSE_FLAGS, "-"),
        DETAILS: _text(r, s.RESPONSE_CODE_DETAILS, ""),
        TFR: _text(r, s.UPSTREAM_TRANSPORT_FAILURE_REASON, ""),
        "t": _epoch(r[s.START_TIME]) if s.START_TIME in r else np.nan,
        "trace": _text(r, s.TRACE_ID, ""),
    })
    frame[DETAILS] = frame[DETAILS].where(frame[DETAILS] != "unknown", "")
    frame[TFR] = frame[TFR].where(~frame[TFR].isin(["unknown", "-"]), "")
    g = frame.groupby(GROUP_KEYS, sort=False, dropna=False)
    out = g.agg(**{COUNT: ("t", "size"), FIRST: ("t", "min"), LAST: ("t", "max")}).reset_index()
    out[COUNT] = out[COUNT].astype("float64")
    with_trace = frame[frame["trace"] != ""]
    if len(with_trace):
        samples = (with_trace.drop_duplicates(GROUP_KEYS + ["trace"])
                   .groupby(GROUP_KEYS, sort=False, dropna=False).head(SAMPLE_TRACES)
                   .groupby(GROUP_KEYS, sort=False, dropna=False)["trace"].agg(list)
                   .rename(TRACES).reset_index())
        out = out.merge(samples, on=GROUP_KEYS, how="left")
    else:
        out[TRACES] = None
    out[TRACES] = out[TRACES].apply(lambda v: v if isinstance(v, list) else [])
    return out


def summarize_rates(rates: pd.DataFrame, window_s: float, end: float) -> pd.DataFrame:
    """The same summary from the Istio rate frame: count = rate x window; no details or traces."""
    r = rates[rates[s.METRIC] == s.ISTIO_REQUESTS_TOTAL] if s.METRIC in rates else rates
    frame = pd.DataFrame({
        SIDE: _side(r),
        SRC: _text(r, s.SOURCE_WORKLOAD),
        SRC_NS: _text(r, s.SOURCE_WORKLOAD_NAMESPACE),
        DST: _text(r, s.DESTINATION_SERVICE),
        DST_WL: _text(r, s.DESTINATION_WORKLOAD),
        CODE: _codes(r[s.RESPONSE_CODE]) if s.RESPONSE_CODE in r else 0,
        FLAGS: _text(r, s.RESPONSE_FLAGS, "-"),
        DETAILS: "",
        TFR: "",
        COUNT: pd.to_numeric(r[s.RATE], errors="coerce").fillna(0.0) * window_s,
    })
    out = frame.groupby(GROUP_KEYS, sort=False, dropna=False)[COUNT].sum().reset_index()
    out = out[out[COUNT] > 0].reset_index(drop=True)
    out[FIRST] = end - window_s
    out[LAST] = end
    out[TRACES] = [[] for _ in range(len(out))]
    return out


def has_flag(flags: pd.Series, flag: str) -> pd.Series:
    """Rows whose comma-separated response flags include `flag` (Envoy writes e.g. "URX,UF")."""
    return flags.str.contains(rf"(?:^|,){flag}(?:,|$)", regex=True)


def fqdn_parts(host: str) -> tuple[str, str | None]:
    """(name, namespace) of a service FQDN like reviews.bookinfo.svc.cluster.local."""
    parts = host.split(".")
    if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
        return parts[0], parts[1]
    return host, None
