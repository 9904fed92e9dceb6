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
_TRACE_COLUMNS = ["trace_id", "start", "end", "spans", "errors", "root_start", "root_service", "root_name", "services"]
_ROOT_ORDER = ["root_start", "root_service", "root_name"]
_OBJECT_COLUMNS = ("trace_id", "root_service", "root_name", "services")


@dataclass(frozen=True)
class TraceParts:
    """Per-trace aggregates of some spans: merge two (`merge_parts`) to get those of both span sets.

    `traces` has `_TRACE_COLUMNS` (+ the split key columns, e.g. "bucket"): root_* NaN/None when no root span was
    seen, `services` the sorted tuple of distinct service names (a tuple: hashable, so a service filter is decided
    once per distinct set, and spelled out only for the rows returned)."""

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
    # distinct services per group: one sorted array of (group, service code) pairs, cut at each group
    pairs = np.unique(gid.astype(np.int64) * len(svc_names) + svc_code)
    owner, names = pairs // len(svc_names), np.asarray(svc_names, dtype=object)[pairs % len(svc_names)]
    cuts = np.flatnonzero(owner[1:] != owner[:-1]) + 1
    services = np.empty(groups, dtype=object)
    services[owner[np.r_[0, cuts]]] = [tuple(c) for c in np.split(names, cuts)]
    out["services"] = services
    # strings stay object arrays: pandas would infer Arrow-backed strings, whose hashing and takes cost more here
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) if v.dtype == object else v for k, v in out.items()},
                         columns=[*keys, *_TRACE_COLUMNS])
    return TraceParts(frame)


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
    many = traces["trace_id"].duplicated(keep=False).to_numpy()
    if many.any():  # only traces whose spans fell in several parts are folded again
        traces = pd.concat([traces[~many], _fold(traces[many])], ignore_index=True)
    return TraceParts(traces)


def _fold(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per trace of rows that several parts hold: traces straddling a split, a few per merge, so a plain
    loop over them costs less than a grouped aggregation's fixed overhead."""
    acc: dict[Any, list] = {}
    for tid, start, end, spans, errors, r_start, r_service, r_name, services in zip(
            *(rows[c].to_numpy() for c in _TRACE_COLUMNS)):
        a = acc.get(tid)
        if a is None:
            acc[tid] = [tid, start, end, int(spans), int(errors), r_start, r_service, r_name, set(services)]
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
    return pd.DataFrame({c: pd.Series(v, dtype=object if c in _OBJECT_COLUMNS else None)
                         for c, v in zip(_TRACE_COLUMNS, cols)}, columns=_TRACE_COLUMNS)


def select_traces(parts: TraceParts, filters: TraceFilters) -> list[dict[str, Any]]:
    """The newest traces that pass the filters, as the trace list's records (`LIST_COLUMNS`).

    Filtered by `pick_traces`, as a saved snapshot's list is; the services list is spelled out only for the rows
    returned (for every trace of 15 minutes it was most of a request's time).
    """
    t = parts.traces
    if t.empty:
        return []
    start = t["start"].to_numpy(dtype=float)
    duration = np.round((t["end"].to_numpy(dtype=float) - start) * 1000, 2)
    errors = t["errors"].to_numpy() > 0
    services = t["services"].to_numpy()
    rows = pick_traces(t["trace_id"].to_numpy(), start, duration, errors, services, filters)
    out = pd.DataFrame({
        "trace_id": t["trace_id"].to_numpy()[rows],
        "root_service": t["root_service"].to_numpy()[rows], "root_name": t["root_name"].to_numpy()[rows],
        "start": start[rows], "duration_ms": duration[rows],
        "status": np.where(errors[rows], "error", "ok"), "spans": t["spans"].to_numpy(dtype="int64")[rows]})
    out["root_service"] = out["root_service"].fillna("?")
    out["root_name"] = out["root_name"].fillna("?")
    records = out.to_dict("records")
    for r, names in zip(records, services[rows]):
        r["services"] = list(names)
    return records


def pick_traces(trace_ids: np.ndarray, start: np.ndarray, duration_ms: np.ndarray, errors: np.ndarray,
                services: np.ndarray, filters: TraceFilters) -> np.ndarray:
    """Positions of the traces that pass `filters`, the `limit` newest first (ties: trace id): the one trace filter,
    for the live list (`select_traces`) and a saved snapshot's (`dashboard.snapshot_source.filter_traces`).

    Arrays are one per trace; `services` holds each trace's service names (tuples or lists). A service matches
    by its name alone or with its namespace: "reviews" finds `reviews.bookinfo` (how sidecars and the demo apps
    name themselves) but not `reviews-ui.bookinfo`.
    """
    mask = duration_ms >= (filters.min_duration_ms or 0)  # a trace without an end (NaN) passes no duration filter
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
