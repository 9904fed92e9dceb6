"""What runtime rules read: one window of traffic, summarized once into a small `calls` frame.

A window can hold millions of access-log rows, so it is grouped exactly once by
edge and outcome (source, destination, code, flags, details). Every rule then
works on that summary with vectorized masks, never on single requests. The same
summary is built from the Istio rate frame (Prometheus or the local store) when
no access logs exist, so rules also run against a real cluster's Prometheus:
only the details and trace ids are then missing.
"""
from __future__ import annotations

import re
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
# what the request's own log says governed it (empty when not logged, e.g. from metrics):
ROUTE = "route"  # %ROUTE_NAME%: the route that matched (Istio: the VirtualService http[].name)
CLUSTER = "cluster"  # %UPSTREAM_CLUSTER%: outbound|port|subset|host names the DestinationRule subset

GROUP_KEYS = [SIDE, SRC, SRC_NS, DST, DST_WL, CODE, FLAGS, DETAILS, TFR, ROUTE, CLUSTER]
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
    key_cache: KeyCache | None = None  # the live loop's, kept across its windows (see `KeyCache`)
    shadow_copies: int = 0  # mirrored copies left out of the window (see `without_shadow_copies`)

    def __post_init__(self) -> None:
        if self.requests is not None and len(self.requests):
            self.requests, self.shadow_copies = without_shadow_copies(self.requests)

    @property
    def window_s(self) -> float:
        return max(self.end - self.start, 1e-9)

    @cached_property
    def calls(self) -> pd.DataFrame:
        """The window summarized by edge and outcome (see module doc)."""
        if self.requests is not None and len(self.requests):
            return summarize_decoded(self.decoded, self.requests)
        if self.rates is not None and len(self.rates):
            return summarize_rates(self.rates, self.window_s, self.end)
        return empty_calls()

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
    def server_tls_errors(self) -> pd.Series:
        """Connections servers refused in their listener log (NR + TLS error: plaintext to a TLS-only port), by service."""
        c = self.calls
        return c[listener_refusal(c)].groupby(DST, sort=False)[COUNT].sum()

    @cached_property
    def call_graph(self) -> dict[str, set[str]]:
        """{service FQDN: services its workloads call} in the window, from the summary (a few rows per edge).

        A workload belongs to the service the server side logs it under, else to the service whose short name
        prefixes its own (reviews-v2 -> reviews), as the bundled mesh and most deployments name them."""
        c = self.calls
        if c.empty:
            return {}
        owner = {str(w): str(d) for w, d in c.loc[(c[SIDE] == "destination") & ~c[DST_WL].isin(_MISSING),
                                                  [DST_WL, DST]].drop_duplicates(DST_WL).itertuples(index=False)}
        shorts = {str(d).split(".")[0]: str(d) for d in c[DST].unique()}
        out: dict[str, set[str]] = {}
        for src, dst in c.loc[c[SIDE] == "source", [SRC, DST]].drop_duplicates().itertuples(index=False):
            src, dst = str(src), str(dst)
            svc = owner.get(src) or next((shorts[p] for p in _prefixes(src) if p in shorts), None)
            if svc and svc != dst:
                out.setdefault(svc, set()).add(dst)
        return out

    def reachable(self, service: str, limit: int = 50) -> list[str]:
        """Services `service` depends on, directly or through others (breadth first, bounded)."""
        graph, seen, todo = self.call_graph, {service}, [service]
        out: list[str] = []
        while todo and len(out) < limit:
            nxt = []
            for svc in todo:
                for d in sorted(graph.get(svc, ())):
                    if d not in seen:
                        seen.add(d)
                        out.append(d)
                        nxt.append(d)
            todo = nxt
        return out[:limit]

    @cached_property
    def decoded(self) -> Decoded:
        return decode_requests(self.requests, self.key_cache)

    @cached_property
    def edge_requests(self) -> pd.DataFrame:
        """Per-request rows (time, edge, code, duration, trace) for latency and SLO counting; empty without access logs."""
        if self.requests is None or not len(self.requests):
            return pd.DataFrame(columns=[SIDE, SRC, SRC_NS, DST, "t", CODE, s.DURATION_MS, s.TRACE_ID])
        r, d = self.requests, self.decoded
        per_row = {k: d.combos[k].to_numpy()[d.gid] for k in (SIDE, SRC, SRC_NS, DST, CODE)}
        return pd.DataFrame({
            **per_row, "t": d.t,
            s.DURATION_MS: pd.to_numeric(r[s.DURATION_MS], errors="coerce").to_numpy() if s.DURATION_MS in r else np.nan,
            s.TRACE_ID: _trace_ids(r) if s.TRACE_ID in r else "",
        })


_SHADOW = re.compile(r"-shadow(?::\d+)?$")  # Envoy appends -shadow to a mirrored copy's host (before or after :port)


def without_shadow_copies(requests: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The requests minus the copies a `mirror` route sent (and the count left out).

    Envoy sends a shadowed copy with `-shadow` appended to its authority and discards its answer: whatever the
    mirror target answers hurts no caller, and it must not count against the target nor against the primary
    service (the copy carries the primary route's headers). The authority is factorized (C hashing) and only its
    distinct values are tested, so a window without copies costs one pass and no copy of the table."""
    if s.AUTHORITY not in requests:
        return requests, 0
    codes, uniques = pd.factorize(requests[s.AUTHORITY], use_na_sentinel=True)
    shadow = np.fromiter((bool(_SHADOW.search(str(u))) for u in uniques), dtype=bool, count=len(uniques))
    if not shadow.any():
        return requests, 0
    copy = np.append(shadow, False)[codes]  # code -1 (no authority) -> the appended False
    return requests[~copy], int(copy.sum())


def _prefixes(workload: str) -> list[str]:
    parts = workload.split("-")
    return ["-".join(parts[:k]) for k in range(len(parts), 0, -1)]


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
    """The destination service FQDN; the request's authority (host without port) when none matched (NR).

    A short host (no dot, e.g. `reviews` from the authority of an NC/NR request) resolves in
    the caller's namespace, as Istio resolves it.
    """
    # a request that reached no cluster is named by its authority, port included, as Istio names it: no port
    dst = _text(df, s.DESTINATION_SERVICE).str.replace(r":\d+$", "", regex=True)
    if s.AUTHORITY in df:
        auth = _text(df, s.AUTHORITY).str.replace(r":\d+$", "", regex=True)
        dst = dst.where(~dst.isin(_MISSING), auth)
    ns = _text(df, s.SOURCE_WORKLOAD_NAMESPACE)
    short = ~dst.str.contains(".", regex=False) & ~dst.isin(_MISSING) & (ns != "unknown")
    return dst.where(~short, dst + "." + ns + ".svc.cluster.local")


def _epoch(col: pd.Series) -> pd.Series:
    """Seconds since the epoch for a datetime (or numeric seconds) column."""
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    t = pd.to_datetime(col, utc=True, errors="coerce")
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _codes(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")


# Raw columns an outcome key is made of; the derived keys (side, caller, destination ...) depend only on them.
RAW_KEYS = (s.REPORTER, s.SOURCE_WORKLOAD, s.SOURCE_PRINCIPAL, s.SOURCE_WORKLOAD_NAMESPACE, s.DESTINATION_SERVICE,
            s.AUTHORITY, s.DESTINATION_WORKLOAD, s.RESPONSE_CODE, s.RESPONSE_FLAGS, s.RESPONSE_CODE_DETAILS,
            s.UPSTREAM_TRANSPORT_FAILURE_REASON, s.LOG_SOURCE, s.ROUTE_NAME, s.UPSTREAM_CLUSTER)
_WRITER = r"(?:^|/)(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<wl>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)\.log$"


def _fill_writer(raw: pd.DataFrame) -> pd.DataFrame:
    """A client-side line the collector could not attribute (its tailer was given bare paths) is named
    after its log file when the file follows the `<namespace>.<workload>.log` layout of the bundled mesh."""
    if s.LOG_SOURCE not in raw:
        return raw
    wl = _text(raw, s.SOURCE_WORKLOAD)
    todo = (wl == "unknown") & (_side(raw) == "source")
    if not todo.any():
        return raw
    m = _text(raw, s.LOG_SOURCE, "").str.extract(_WRITER)
    hit = todo & m["wl"].notna()
    raw = raw.copy()
    raw.loc[hit, s.SOURCE_WORKLOAD] = m.loc[hit, "wl"]
    raw.loc[hit, s.SOURCE_WORKLOAD_NAMESPACE] = m.loc[hit, "ns"]
    return raw


@dataclass
class Decoded:
    """The requests table reduced to distinct raw key combinations: `gid` per row indexes `combos`."""

    gid: np.ndarray
    combos: pd.DataFrame  # one row per distinct combination, with the derived GROUP_KEYS columns
    t: np.ndarray  # start time per row, epoch seconds


class KeyCache:
    """The derived edge keys of raw key combinations already seen, kept across windows by the live loop.

    A steady mesh sends the same few dozen combinations window after window; deriving their keys (string
    fallbacks, regexes, ~20 pandas calls) was most of a decode (~20 ms of the demo's 20 s window, every cycle).
    The derived keys are a function of the raw combination alone, so a cached row is what a fresh derivation
    gives. Forgotten whole past `max_size` combinations (e.g. a scan of random authorities)."""

    def __init__(self, max_size: int = 20_000) -> None:
        self.max_size = max_size
        self._at: dict[tuple, int] = {}  # raw combination -> its row in `_frame`
        self._frame: pd.DataFrame | None = None  # derived GROUP_KEYS, one row per known combination
        self.derived = 0  # combinations derived (not found) and times forgotten, for tests and curiosity
        self.cleared = 0

    def combos(self, raw: pd.DataFrame) -> pd.DataFrame:
        """`_derive(raw)`, with the rows of combinations seen before taken from the cache."""
        keys = list(raw.itertuples(index=False, name=None))  # one per distinct combination, not per request
        if len(self._at) + len(keys) > self.max_size:
            self._at, self._frame = {}, None
            self.cleared += 1
        new = [i for i, k in enumerate(keys) if k not in self._at]
        if new:
            fresh = _derive(raw.iloc[new].reset_index(drop=True))
            base = 0 if self._frame is None else len(self._frame)
            self._frame = fresh if self._frame is None else pd.concat([self._frame, fresh], ignore_index=True)
            for j, i in enumerate(new):
                self._at[keys[i]] = base + j
            self.derived += len(new)
        if self._frame is None:  # no combination at all
            return _derive(raw)
        return self._frame.take([self._at[k] for k in keys]).reset_index(drop=True)


def _derive(raw: pd.DataFrame) -> pd.DataFrame:
    """The GROUP_KEYS of distinct raw key combinations (one row each)."""
    raw = _fill_writer(raw)
    combos = pd.DataFrame({
        SIDE: _side(raw), SRC: _source(raw), SRC_NS: _text(raw, s.SOURCE_WORKLOAD_NAMESPACE),
        DST: _destination(raw), DST_WL: _text(raw, s.DESTINATION_WORKLOAD), CODE: _codes(raw[s.RESPONSE_CODE]),
        FLAGS: _text(raw, s.RESPONSE_FLAGS, "-"),
        DETAILS: _text(raw, s.RESPONSE_CODE_DETAILS, "").replace("unknown", ""),
        TFR: _text(raw, s.UPSTREAM_TRANSPORT_FAILURE_REASON, "").replace({"unknown": "", "-": ""}),
        ROUTE: _text(raw, s.ROUTE_NAME, "").replace({"unknown": "", "-": ""}),
        CLUSTER: _text(raw, s.UPSTREAM_CLUSTER, "").replace({"unknown": "", "-": ""}),
    })
    # small frames of Python strings are cheaper for the many little groupbys rules do than Arrow strings
    return combos.astype({k: object for k in GROUP_KEYS if k != CODE})


def decode_requests(requests: pd.DataFrame, cache: KeyCache | None = None) -> Decoded:
    """Factorize the key columns once (hashing in C), derive edge keys per distinct combination only.

    Strings such as "unknown" -> destination FQDN fallbacks are then computed on a
    few thousand combinations instead of every request; with `cache`, only on those not seen in an
    earlier window.
    """
    n = len(requests)
    codes, uniques = {}, {}
    for col in RAW_KEYS:
        if col in requests:
            c, u = pd.factorize(requests[col], use_na_sentinel=True)
            codes[col] = c
            uniques[col] = np.append(np.asarray(u, dtype=object), None)  # code -1 -> None
        else:
            codes[col] = np.zeros(n, dtype=np.int64)
            uniques[col] = np.array([None], dtype=object)
    gid = combine_codes([codes[c] + 1 for c in RAW_KEYS], [len(uniques[c]) + 1 for c in RAW_KEYS])
    _, first = np.unique(gid, return_index=True)
    raw = pd.DataFrame({col: uniques[col][codes[col][first]] for col in RAW_KEYS})
    combos = _derive(raw) if cache is None else cache.combos(raw)
    t = _epoch(requests[s.START_TIME]).to_numpy(dtype=float) if s.START_TIME in requests else np.full(n, np.nan)
    return Decoded(gid=gid, combos=combos, t=t)


def combine_codes(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One dense group id per distinct tuple of small non-negative codes (mixed radix, re-densified as
    it goes so the key never overflows)."""
    key, size = codes[0].astype(np.int64), sizes[0]
    for c, n in zip(codes[1:], sizes[1:]):
        if size * n >= 2**62:
            key, uniq = pd.factorize(key)
            size = len(uniq)
        key, size = key * n + c, size * n
    gid, _ = pd.factorize(key)
    return gid


def _trace_ids(requests: pd.DataFrame) -> np.ndarray:
    col = requests[s.TRACE_ID]
    return col.to_numpy(dtype=object, na_value="") if hasattr(col, "to_numpy") else np.asarray(col, dtype=object)


def summarize_requests(requests: pd.DataFrame) -> pd.DataFrame:
    """Group the requests table by edge and outcome: counts, time span and sample trace ids."""
    return summarize_decoded(decode_requests(requests), requests)


def summarize_decoded(d: Decoded, requests: pd.DataFrame) -> pd.DataFrame:
    k = len(d.combos)
    per = d.combos.copy()
    per[COUNT] = np.bincount(d.gid, minlength=k).astype("float64")
    times = pd.Series(d.t).groupby(d.gid)
    per[FIRST] = times.min().reindex(range(k)).to_numpy()
    per[LAST] = times.max().reindex(range(k)).to_numpy()
    per[TRACES] = [[] for _ in range(k)]
    if s.TRACE_ID in requests:
        trace = _trace_ids(requests)
        idx = np.flatnonzero((trace != "") & (trace != "unknown") & (trace != None))  # noqa: E711
        if idx.size:
            g = d.gid[idx]
            first_few = pd.Series(g).groupby(g).cumcount().to_numpy() < SAMPLE_TRACES * 2
            g, ids = g[first_few], trace[idx[first_few]]
            order = np.argsort(g, kind="stable")
            g, ids = g[order], ids[order]
            bounds = np.flatnonzero(np.diff(g)) + 1
            lists = per[TRACES].to_numpy().copy()
            for k, chunk in zip(g[np.r_[0, bounds]], np.split(ids, bounds)):  # one per combination
                lists[k] = chunk.tolist()
            per[TRACES] = lists
    # combinations that differ only in raw columns (e.g. authority) share one summary row
    if per.duplicated(GROUP_KEYS).any():
        g = per.groupby(GROUP_KEYS, sort=False, dropna=False)
        merged = g.agg(**{COUNT: (COUNT, "sum"), FIRST: (FIRST, "min"), LAST: (LAST, "max")}).reset_index()
        merged[TRACES] = g[TRACES].agg(lambda ls: [x for lst in ls for x in lst]).to_list()
        per = merged
    per[TRACES] = [list(dict.fromkeys(ts))[:SAMPLE_TRACES] for ts in per[TRACES]]
    return per.reset_index(drop=True)


def summarize_rates(rates: pd.DataFrame, window_s: float, end: float) -> pd.DataFrame:
    """The same summary from the Istio rate frame: count = rate x window; no details or traces."""
    r = rates[rates[s.METRIC] == s.ISTIO_REQUESTS_TOTAL] if s.METRIC in rates else rates
    frame = pd.DataFrame({
        SIDE: _side(r),
        SRC: _text(r, s.SOURCE_WORKLOAD),
        SRC_NS: _text(r, s.SOURCE_WORKLOAD_NAMESPACE),
        DST: _destination(r),  # an NC series is named by its authority (`reviews:9080`), as Istio names it
        DST_WL: _text(r, s.DESTINATION_WORKLOAD),
        CODE: _codes(r[s.RESPONSE_CODE]) if s.RESPONSE_CODE in r else 0,
        FLAGS: _text(r, s.RESPONSE_FLAGS, "-"),
        DETAILS: "",
        TFR: "",
        ROUTE: "",
        CLUSTER: "",
        COUNT: pd.to_numeric(r[s.RATE], errors="coerce").fillna(0.0) * window_s,
    })
    out = frame.groupby(GROUP_KEYS, sort=False, dropna=False)[COUNT].sum().reset_index()
    out = out[out[COUNT] > 0].reset_index(drop=True)
    out[FIRST] = end - window_s
    out[LAST] = end
    out[TRACES] = [[] for _ in range(len(out))]
    return out


def listener_refusal(c: pd.DataFrame) -> pd.Series:
    """Connections a listener refused before any request (no filter chain, TLS error on a TLS-only port).

    Whichever side the line is attributed to (a listener log may carry no reporter), this is the server
    mirroring a client-side failure, never a routing miss of its own."""
    return has_flag(c[FLAGS], "NR") & (c[DETAILS].str.contains("filter_chain_not_found", regex=False)
                                       | c[TFR].str.contains("TLS_error", regex=False))


def has_flag(flags: pd.Series, flag: str) -> pd.Series:
    """Rows whose comma-separated response flags include `flag` (Envoy writes e.g. "URX,UF")."""
    return flags.str.contains(rf"(?:^|,){flag}(?:,|$)", regex=True)


def fqdn_parts(host: str) -> tuple[str, str | None]:
    """(name, namespace) of a service FQDN like reviews.bookinfo.svc.cluster.local."""
    parts = host.split(".")
    if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
        return parts[0], parts[1]
    return host, None
