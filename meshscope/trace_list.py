"""The live trace list, kept incrementally: a request summarises only the spans that are new (#18).

Why: `GET /api/v1/traces` lists the traces of the last 15 minutes, and summarising every span of them on each
request (~180k spans at 20 requests/s) took most of a core under a page's polling. Here the window is cut into
fixed ten-second buckets of span start time (aligned to the epoch, so a bucket means the same rows whatever the
window). The mergeable per-trace aggregates of each bucket lying wholly inside a window are kept with a
fingerprint of the rows they were made from (count, sum and sum of squares of the start times, exact integer
arithmetic) and the serials of the store chunks overlapping it (`TelemetryStore.chunk_ranges`: chunks never change
in place). A request reads the start times only of the buckets whose chunks changed (new or late spans, compaction,
trims) or that lie below the store's memory floor or cutoff, recomputes their fingerprints, summarises those whose
rows changed and the two partial buckets at the window's edges, and merges (`dashboard.trace_summary`): the kept
buckets' merged body is looked up by trace key and never copied per request (`merge_into`). Spans of one trace that
fall in several buckets, arrive out of order or across requests merge exactly: the list equals the summary of every
span of the window at once.

A live list holds every span that arrived before the request: concurrent requests for the same window share one
computation, but only one that started after they arrived (at most one runs per window; requests arriving
meanwhile share the next one). Time travel (`end` in the past) uses the same buckets: those it shares with the
live window are not summarised again.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dashboard.coalesced import Coalesced
from dashboard.trace_summary import LayeredParts, TraceParts, key_index, merge_into, merge_parts, parts_of, split_parts

BUCKET_S = 10.0
MAX_BUCKETS = 256  # kept buckets (the live 15 min is 91; the rest serve a past window or two)
_NS = 1_000_000_000
SUMMARY_COLUMNS = ["trace_id", "parent_span_id", "service_name", "name", "start_time", "end_time", "status_code"]
_STRINGS = ("trace_id", "parent_span_id", "service_name", "name", "status_code")


@dataclass
class _Bucket:
    fingerprint: tuple[int, ...]
    parts: TraceParts
    chunks: tuple[int, ...] | None = None  # serials of the store chunks its rows lay in (None: unknown, re-read)


@dataclass
class TraceList:
    """Incremental trace summaries of a telemetry store's spans (see the module docstring)."""

    store_of: Callable[[], Any]
    bucket_s: float = BUCKET_S
    max_buckets: int = MAX_BUCKETS
    _buckets: OrderedDict = field(default_factory=OrderedDict)  # bucket index -> _Bucket, least recently used first
    _store_id: int | None = None
    _body_key: tuple = ()  # the kept buckets (index, fingerprint) `_body` merges
    _body: TraceParts = field(default_factory=lambda: merge_parts([]))
    _body_index: pd.Index = field(default_factory=lambda: pd.Index([]))  # `_body`'s trace keys (`key_index`)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # one update of the buckets at a time
    _shared: Coalesced = field(default_factory=Coalesced)
    buckets_summarised: int = 0  # full buckets summarised (cache misses), for tests and self-checks
    buckets_reused: int = 0
    buckets_checked: int = 0  # full buckets whose start times were read again (their chunks changed, or below floor)

    def parts(self, key: Any, bounds: Callable[[], tuple[int, int]]) -> TraceParts:
        """The merged parts of the window `bounds()` = (lo, hi) ns (inclusive), computed once for the concurrent
        callers of `key` (bounds are taken when the computation starts: a live window ends then)."""
        return self._shared.get(key, lambda: self.window_parts(*bounds()))

    def window_parts(self, lo: int, hi: int) -> TraceParts | LayeredParts:
        """Merged per-trace aggregates of the spans with lo <= start_time <= hi (ns since the epoch)."""
        with self._lock:
            store = self.store_of()
            if id(store) != self._store_id:
                self._buckets.clear()
                self._body_key, self._body, self._body_index = (), merge_parts([]), pd.Index([])
                self._store_id = id(store)
            width = int(self.bucket_s * _NS)
            chunks, floor, cutoff = store.chunk_ranges("spans")
            # from `safe` up (a bucket's start), a bucket's rows are those of the chunks overlapping it; below, rows
            # leave memory or the window while chunks stay, or come from disk
            safe = -(-max(floor, cutoff) // width) * width
            serials = _serials(chunks, max(lo, safe), hi, width)
            kept: list[tuple[int, tuple]] = []  # full buckets whose rows did not change since summarised
            todo: list[int] = []  # buckets summarised now: changed, new, and the window's partial edges
            check: list[int] = []  # full buckets whose chunks changed: their start times are read and printed
            edges = {lo // width, hi // width}
            for k in sorted(set(serials) | edges):
                if k * width < lo or (k + 1) * width - 1 > hi:
                    todo.append(k)
                    continue
                hit = self._buckets.get(k)
                if hit is not None and hit.chunks == serials[k]:
                    self._reuse(k, hit, kept)
                else:
                    check.append(k)
            # buckets below the floor or the cutoff (rows read back from disk, or leaving the window) and those whose
            # chunks changed (new or late spans, compaction, trims): their start times are read and fingerprinted
            reads = [(max(lo, k0 * width), min(hi, (k1 + 1) * width - 1)) for k0, k1 in _runs(check)]
            if lo < safe:
                reads.insert(0, (lo, min(hi, safe - 1)))
            times = [_times(store.arrow("spans", _ts(a), _ts(b), columns=["start_time"]), "start_time")
                     for a, b in reads]
            times = [t for t in times if len(t)]
            if times:
                index, prints = _fingerprints(np.concatenate(times), width)
                for k, fp in zip(index.tolist(), prints):
                    if k * width < lo or (k + 1) * width - 1 > hi:
                        continue  # a partial edge below the floor: already summarised
                    self.buckets_checked += 1
                    hit = self._buckets.get(k)
                    if hit is not None and hit.fingerprint == fp:
                        hit.chunks = serials.get(k) if k * width >= safe else None
                        self._reuse(k, hit, kept)
                    else:
                        todo.append(k)
            todo = sorted(set(todo))
            fresh = self._summarise(store, todo, lo, hi, width, serials, safe)
            # the kept buckets merged once: most requests (no late span, the window's start still in the same
            # bucket) merge only that and the few fresh buckets
            body_key = tuple(sorted(kept))
            if body_key != self._body_key:
                self._body = merge_parts([self._buckets[k].parts for k, _ in body_key])
                self._body_index = key_index(self._body)
                self._body_key = body_key
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            return merge_into(self._body, self._body_index, fresh)

    def _reuse(self, k: int, hit: _Bucket, kept: list[tuple[int, tuple]]) -> None:
        self._buckets.move_to_end(k)
        kept.append((k, hit.fingerprint))
        self.buckets_reused += 1

    def _summarise(self, store: Any, todo: list[int], lo: int, hi: int, width: int,
                   serials: dict[int, tuple[int, ...]], safe: int) -> list[TraceParts]:
        """Summarise the buckets `todo` (one read per run of consecutive ones, one pass over all of them); keep
        those wholly inside the window, with their rows' fingerprint and the chunks they were read from."""
        reads = [store.arrow("spans", _ts(max(lo, k0 * width)), _ts(min(hi, (k1 + 1) * width - 1)),
                             columns=SUMMARY_COLUMNS) for k0, k1 in _runs(todo)]
        reads = [t for t in reads if t.num_rows]
        if not reads:
            return []
        table = pa.concat_tables(reads) if len(reads) > 1 else reads[0]
        ns = _times(table, "start_time")
        spans = _columns(table, ns)
        spans["bucket"] = ns // width
        by_bucket = split_parts(parts_of(spans, keys=("bucket",)), "bucket")
        index, prints = _fingerprints(ns, width)
        out = []
        for k, fp in zip(index.tolist(), prints):
            got = by_bucket[k]
            out.append(got)
            if k * width >= lo and (k + 1) * width - 1 <= hi:
                self._buckets[k] = _Bucket(fp, got, serials.get(k) if k * width >= safe else None)
                self._buckets.move_to_end(k)
                self.buckets_summarised += 1
        return out


def _serials(chunks: tuple[tuple[int, int, int], ...], lo: int, hi: int, width: int) -> dict[int, tuple[int, ...]]:
    """Per bucket of [lo, hi] that some chunk overlaps, the sorted serials of those chunks (its rows' version):
    a loop over chunks and the buckets each spans (tens), not over rows."""
    out: dict[int, list[int]] = {}
    for serial, t_min, t_max in chunks:
        a, b = max(t_min, lo), min(t_max, hi)
        for k in range(a // width, b // width + 1) if a <= b else ():
            out.setdefault(k, []).append(serial)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")  # the store reads plain numbers as seconds


def _times(table: pa.Table, column: str) -> np.ndarray:
    """A timestamp column as int64 ns (the store never holds a row without its time)."""
    col = table.column(column).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return col.to_numpy() if col.num_chunks == 1 else col.combine_chunks().to_numpy(zero_copy_only=False)


def _fingerprints(ns: np.ndarray, width: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Per bucket present: its index and a print of the start times in it (rows; sums of the offset in us, of its
    low 20 bits in ns, of a square of its us residue), each sum an integer below 2^53 so exact in float64 and
    independent of row order: the same rows always give the same print, and new, late or evicted rows change it."""
    k = ns // width
    k0 = int(k.min())
    kk = (k - k0).astype(np.intp)
    off = ns - k * width
    n = np.bincount(kk)
    sums = [np.bincount(kk, weights=w, minlength=len(n)) for w in
            (off // 1000, off & 0xFFFFF, np.square((off // 1000) % 4093))]
    present = np.flatnonzero(n)
    prints = list(zip(n[present].tolist(), *(np.rint(w[present]).astype(np.int64).tolist() for w in sums)))
    return present + k0, prints


def _runs(ks: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted bucket indexes, (first, last) each: one store read per run."""
    out: list[tuple[int, int]] = []
    for k in ks:
        if out and k == out[-1][1] + 1:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out


def _columns(table: pa.Table, start_ns: np.ndarray) -> dict[str, np.ndarray]:
    """The read as the summary's columns: strings ("" for none) as object arrays and times as epoch seconds, as
    `LiveSource._spans` hands them out (the same float for the same nanoseconds: the list equals the one
    summarised from that)."""
    out = {}
    for name in _STRINGS:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        out[name] = np.asarray(col.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
    out["start_time"] = start_ns / 1e9
    end = table.column("end_time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    out["end_time"] = np.asarray(end.to_numpy(zero_copy_only=False), dtype=float) / 1e9  # a missing end: NaN
    return out


def window_bounds(window_s: float, end: float) -> tuple[int, int]:
    """(lo, hi) ns of the spans window ending at `end` (epoch s), exactly as `collector.query.spans` cuts it."""
    end_ts = pd.Timestamp(end, unit="s", tz="UTC")
    return (end_ts - pd.Timedelta(seconds=window_s)).value, end_ts.value
