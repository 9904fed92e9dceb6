"""The trace list's summaries as mergeable parts, so a live list can be kept up to date incrementally (#18).

Why parts: a trace's row in the list (first start, last end, span count, any error, root span, services) is a
fold over its spans with operations that do not care how the spans are split (min, max, sum, set union, and the
root chosen by a total order). A reader may therefore summarise spans in pieces (e.g. ten seconds of start times
at a time), keep the pieces, summarise only the spans that are new, and merge: the merged list equals the summary of
every span at once, whatever the split or the arrival order. `dashboard.snapshot_source.summarize_traces` is that
summary done in one go (the reference the differential test compares against).

The root of a trace is its parentless span that started first (ties: service, then span name): store order is not
an order a reader can see, so it cannot decide.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.query import TraceFilters

LIST_COLUMNS = ["trace_id", "root_service", "root_name", "start", "duration_ms", "status", "spans", "services"]
_TRACE_COLUMNS = ["trace_id", "start", "end", "spans", "errors", "root_start", "root_service", "root_name", "services",
                  "key"]
_ROOT_ORDER = ["root_start", "root_service", "root_name"]
_OBJECT_COLUMNS = ("trace_id", "root_service", "root_name", "services")


@dataclass(frozen=True)
class TraceParts:
    """Per-trace aggregates of some spans: merge two (`merge_parts`) to get those of both span sets.

    `traces` has `_TRACE_COLUMNS` (+ the split key columns, e.g. "bucket"): root_* NaN/None when no root span was
    seen, `services` the sorted tuple of distinct service names (a tuple: hashable, so a service filter is decided
    once per distinct set, and spelled out only for the rows returned), `key` a 64-bit hash of the trace id (merges
    find a trace's rows in other parts by it: hashing numbers costs a fraction of hashing 32-character strings;
    rows sharing a key are then folded by their trace id, so a hash collision never merges two traces)."""

    traces: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.traces.empty


def empty_parts(keys: tuple[str, ...] = ()) -> TraceParts:
    return TraceParts(pd.DataFrame(columns=[*keys, *_TRACE_COLUMNS]))


def parts_of(spans: Any, keys: tuple[str, ...] = ()) -> TraceParts:
    """Aggregates per (`keys`..., trace) of spans (a frame or a mapping of equal-length arrays: trace_id,
    parent_span_id, service_name, name, start_time, end_time [epoch s], status_code, and the `keys`): integer
    group codes and numpy reductions, no Python loop per span and no grouped-aggregation overhead."""
    n = len(spans["trace_id"])
    if n == 0:
        return empty_parts(keys)
    col = {c: np.asarray(spans[c]) for c in {*keys, "trace_id", "parent_span_id", "service_name", "name",
                                            "status_code"}}
    code = np.zeros(n, dtype=np.int64)
    for k in [*keys, "trace_id"]:
        c, u = pd.factorize(col[k], use_na_sentinel=False)
        code = code * len(u) + c
    gid, _ = pd.factorize(code)  # group per row, numbered by first appearance
    groups = int(gid.max()) + 1
    first = np.full(groups, n)
    np.minimum.at(first, gid, np.arange(n))
    start = np.asarray(spans["start_time"], dtype=float)
    end = np.asarray(spans["end_time"], dtype=float)
    out: dict[str, Any] = {k: col[k][first] for k in [*keys, "trace_id"]}
    lo = np.full(groups, np.inf)
    np.minimum.at(lo, gid, start)
    hi = np.full(groups, -np.inf)
    np.maximum.at(hi, gid, np.where(np.isnan(end), -np.inf, end))  # a missing end is skipped, as max() skips NaN
    out["start"], out["end"] = lo, np.where(hi == -np.inf, np.nan, hi)
    out["spans"] = np.bincount(gid, minlength=groups).astype(np.int64)
    out["errors"] = np.bincount(gid, weights=(col["status_code"] == "ERROR"), minlength=groups).astype(np.int64)
    # the root: the parentless span that started first, ties by service then name (codes sorted like the strings)
    svc_code, svc_names = pd.factorize(col["service_name"], sort=True, use_na_sentinel=False)
    name_code, _ = pd.factorize(col["name"], sort=True, use_na_sentinel=False)
    roots = np.flatnonzero(col["parent_span_id"] == "")
    order = roots[np.lexsort((name_code[roots], svc_code[roots], start[roots], gid[roots]))]
    lead = order[np.r_[True, gid[order][1:] != gid[order][:-1]]] if len(order) else order
    root_start = np.full(groups, np.nan)
    root_service = np.full(groups, None, dtype=object)
    root_name = np.full(groups, None, dtype=object)
    root_start[gid[lead]] = start[lead]
    root_service[gid[lead]] = col["service_name"][lead]
    root_name[gid[lead]] = col["name"][lead]
    out.update(root_start=root_start, root_service=root_service, root_name=root_name)
    out["services"] = _service_sets(gid, groups, svc_code, np.asarray(svc_names, dtype=object))
    out["key"] = pd.util.hash_array(np.asarray(out["trace_id"], dtype=object), categorize=False)
    # strings stay object arrays: pandas would infer Arrow-backed strings, whose hashing and takes cost more here
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) if v.dtype == object else v for k, v in out.items()},
                         columns=[*keys, *_TRACE_COLUMNS])
    return TraceParts(frame)


def _service_sets(gid: np.ndarray, groups: int, svc_code: np.ndarray, svc_names: np.ndarray) -> np.ndarray:
    """Per group, the sorted tuple of its distinct service names (`svc_names` sorted, `svc_code` per span).

    A mesh has a few call paths, so thousands of traces share a handful of sets: with up to 63 services each
    group's set is a bit mask (an OR per group), and a tuple is built once per distinct mask, not per trace."""
    services = np.empty(groups, dtype=object)
    if len(svc_names) <= 63:
        mask = np.zeros(groups, dtype=np.uint64)
        np.bitwise_or.at(mask, gid, np.left_shift(np.uint64(1), svc_code.astype(np.uint64)))
        sets, which = np.unique(mask, return_inverse=True)
        bits = np.arange(len(svc_names), dtype=np.uint64)
        tuples = np.empty(len(sets), dtype=object)
        for i, m in enumerate(sets):  # item by item: a list of equal-length tuples would be read as a 2-D array
            tuples[i] = tuple(svc_names[((m >> bits) & np.uint64(1)).astype(bool)].tolist())
        services[:] = tuples[which.reshape(-1)]
        return services
    # more services than bits: one sorted array of (group, service code) pairs, cut at each group
    pairs = np.unique(gid.astype(np.int64) * len(svc_names) + svc_code)
    owner, names = pairs // len(svc_names), svc_names[pairs % len(svc_names)]
    cuts = np.flatnonzero(owner[1:] != owner[:-1]) + 1
    services[owner[np.r_[0, cuts]]] = [tuple(c) for c in np.split(names, cuts)]
    return services


def split_parts(parts: TraceParts, key: str) -> dict[Any, TraceParts]:
    """`parts` made with one key column (`parts_of(..., keys=(key,))`, its first column), one TraceParts per
    value of it, the column dropped (positional takes: label lookups cost more than the rows here)."""
    t = parts.traces
    assert t.columns[0] == key
    values = t[key].to_numpy()
    out = {}
    for k in pd.unique(values):
        rows = np.flatnonzero(values == k)
        out[k] = TraceParts(t.iloc[rows, 1:].reset_index(drop=True))
    return out


def merge_parts(parts: list[TraceParts]) -> TraceParts:
    """The aggregates of the union of the span sets `parts` were made from (of disjoint span sets)."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_parts()
    if len(parts) == 1:
        return parts[0]
    traces = pd.concat([p.traces for p in parts], ignore_index=True)
    many = traces["key"].duplicated(keep=False).to_numpy()
    if many.any():  # only traces whose spans fell in several parts are folded again
        traces = pd.concat([traces[~many], _fold(traces[many])], ignore_index=True)
    return TraceParts(traces)


def key_index(parts: TraceParts) -> pd.Index:
    """The hash index of `parts`' trace keys, for `merge_into` (built once per kept body, not per request)."""
    return pd.Index(parts.traces["key"].to_numpy())


@dataclass(frozen=True)
class LayeredParts:
    """A large kept `body` with the rows `stale` superseded, and `top`: the aggregates of the body's spans and top's
    together, without copying the body (traces in `top` are not live in the body). `select_traces` reads it as is."""

    body: TraceParts
    stale: np.ndarray | None  # body rows whose trace `top` holds folded, or None
    top: TraceParts

    @property
    def empty(self) -> bool:
        return self.top.empty and (self.body.empty or (self.stale is not None and bool(self.stale.all())))

    @property
    def traces(self) -> pd.DataFrame:
        """The layers as one frame (a copy of the body: for tests and one-off readers, not per request)."""
        body = self.body.traces if self.stale is None else self.body.traces[~self.stale]
        return merge_parts([TraceParts(body.reset_index(drop=True)), self.top]).traces


def key_index(parts: TraceParts) -> pd.Index:
    """The hash index of `parts`' trace keys, for `merge_into` (built once per kept body, not per request)."""
    return pd.Index(parts.traces["key"].to_numpy())


def merge_into(body: TraceParts, index: pd.Index, parts: list[TraceParts]) -> TraceParts | LayeredParts:
    """`merge_parts([body, *parts])` for a large `body` merged with small parts many times: the parts' traces are
    looked up in `index` (`key_index(body)`) and the body is not copied, so the cost is the parts' rows, not a hash
    and a copy of every trace of the window per request."""
    fresh = merge_parts(parts)
    if body.empty or fresh.empty:
        return fresh if body.empty else body
    if not index.is_unique:  # two trace ids of the body share a hash (never seen): the plain merge folds them apart
        return merge_parts([body, fresh])
    t, f = body.traces, fresh.traces
    pos = index.get_indexer(f["key"].to_numpy())
    hit = pos >= 0
    if not hit.any():
        return LayeredParts(body, None, fresh)
    stale = np.zeros(len(t), dtype=bool)
    stale[pos[hit]] = True
    # each body row once (two fresh traces may share a key), folded by trace id: a collision stays apart
    folded = _fold(pd.concat([t.iloc[np.flatnonzero(stale)], f[hit]], ignore_index=True))
    return LayeredParts(body, stale, TraceParts(pd.concat([folded, f[~hit]], ignore_index=True)))


def _fold(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per trace of rows that several parts hold: traces straddling a split, a few per merge, so a plain
    loop over them costs less than a grouped aggregation's fixed overhead."""
    acc: dict[Any, list] = {}
    for tid, start, end, spans, errors, r_start, r_service, r_name, services, key in zip(
            *(rows[c].to_numpy() for c in _TRACE_COLUMNS)):
        a = acc.get(tid)
        if a is None:
            acc[tid] = [tid, start, end, int(spans), int(errors), r_start, r_service, r_name, set(services), key]
            continue
        a[1] = min(a[1], start)
        if np.isnan(a[2]) or end > a[2]:  # a missing end (NaN) never wins over a known one, as max() skips it
            a[2] = end
        a[3] += int(spans)
        a[4] += int(errors)
        if not np.isnan(r_start) and (np.isnan(a[5]) or (r_start, r_service, r_name) < (a[5], a[6], a[7])):
            a[5], a[6], a[7] = r_start, r_service, r_name
        a[8].update(services)
    for a in acc.values():
        a[8] = tuple(sorted(a[8]))
    cols = list(zip(*acc.values()))
    return pd.DataFrame({c: pd.Series(v, dtype=object if c in _OBJECT_COLUMNS else "uint64" if c == "key" else None)
                         for c, v in zip(_TRACE_COLUMNS, cols)}, columns=_TRACE_COLUMNS)


def select_traces(parts: TraceParts | LayeredParts, filters: TraceFilters) -> list[dict[str, Any]]:
    """The newest traces that pass the filters, as the trace list's records (`LIST_COLUMNS`).

    Filtered by `pick_traces`, as a saved snapshot's list is, per layer (the layers hold disjoint traces, so the
    newest of the union are among each layer's newest); only the rows returned are spelled out (every trace of
    15 minutes was most of a request's time).
    """
    layers = [(parts.body.traces, parts.stale), (parts.top.traces, None)] if isinstance(parts, LayeredParts) \
        else [(parts.traces, None)]
    picked = []
    for t, stale in layers:
        if t.empty:
            continue
        start = t["start"].to_numpy(dtype=float)
        duration = np.round((t["end"].to_numpy(dtype=float) - start) * 1000, 2)
        errors = t["errors"].to_numpy() > 0
        rows = pick_traces(t["trace_id"].to_numpy(), start, duration, errors, t["services"].to_numpy(), filters,
                           keep=None if stale is None else ~stale)
        picked.append({"trace_id": t["trace_id"].to_numpy()[rows], "root_service": t["root_service"].to_numpy()[rows],
                       "root_name": t["root_name"].to_numpy()[rows], "start": start[rows],
                       "duration_ms": duration[rows], "errors": errors[rows],
                       "spans": t["spans"].to_numpy(dtype="int64")[rows], "services": t["services"].to_numpy()[rows]})
    if not picked:
        return []
    got = {c: np.concatenate([p[c] for p in picked]) for c in picked[0]}
    rows = _newest(got["trace_id"], got["start"], filters.limit) if len(picked) > 1 else slice(None)
    got = {c: a[rows] for c, a in got.items()}
    # only the returned rows are spelled out, as plain Python values (a frame's to_dict cost more than the pick)
    columns = {
        "trace_id": got["trace_id"].tolist(),
        "root_service": np.where(pd.isna(got["root_service"]), "?", got["root_service"]).tolist(),
        "root_name": np.where(pd.isna(got["root_name"]), "?", got["root_name"]).tolist(),
        "start": got["start"].tolist(), "duration_ms": got["duration_ms"].tolist(),
        "status": np.where(got["errors"], "error", "ok").tolist(), "spans": got["spans"].tolist(),
        "services": [list(names) for names in got["services"]]}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def pick_traces(trace_ids: np.ndarray, start: np.ndarray, duration_ms: np.ndarray, errors: np.ndarray,
                services: np.ndarray, filters: TraceFilters, keep: np.ndarray | None = None) -> np.ndarray:
    """Positions of the traces that pass `filters`, the `limit` newest first (ties: trace id): the one trace filter,
    for the live list (`select_traces`) and a saved snapshot's (`dashboard.snapshot_source.filter_traces`).

    Arrays are one per trace; `services` holds each trace's service names (tuples or lists). A service matches
    by its name alone or with its namespace: "reviews" finds `reviews.bookinfo` (how sidecars and the demo apps
    name themselves) but not `reviews-ui.bookinfo`.
    """
    mask = duration_ms >= (filters.min_duration_ms or 0)  # a trace without an end (NaN) passes no duration filter
    if keep is not None:  # only these rows are candidates (the live ones of a layered list)
        mask &= keep
    if filters.end is not None:  # time travel: nothing that started after the instant viewed
        mask &= start <= filters.end
    if filters.status != "any":
        mask &= errors == (filters.status == "error")
    if filters.service:  # decided once per distinct set of services (a mesh has a few call paths)
        keys = pd.Series(services, dtype=object)
        if len(keys) and not isinstance(keys.iloc[0], tuple):  # lists (a saved summary) are not hashable
            keys = keys.map(lambda x: tuple(x) if isinstance(x, list) else x)
        codes, sets = pd.factorize(keys.to_numpy(), use_na_sentinel=False)
        wanted = filters.service
        hit = np.array([isinstance(names, tuple) and any(isinstance(n, str) and (n == wanted or n.startswith(wanted + "."))
                                                         for n in names) for names in sets], dtype=bool)
        mask &= hit[codes] if len(sets) else False
    picked = _newest(np.asarray(trace_ids)[mask], start[mask], filters.limit)
    return np.flatnonzero(mask)[picked]


def _newest(trace_ids: np.ndarray, start: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the `limit` newest traces, newest first (ties: trace id), as the list orders them; only the
    rows that can make the cut are sorted."""
    if len(start) > limit:
        cut = np.partition(start, len(start) - limit)[len(start) - limit]
        candidates = np.flatnonzero(start >= cut)
    else:
        candidates = np.arange(len(start))
    order = np.lexsort((trace_ids[candidates].astype(str), -start[candidates]))
    return candidates[order[:limit]]
