"""The live trace list kept incrementally (#18): summarising only new spans and merging must give exactly the list
summarised from every span of the window, whatever the arrival order, and concurrent requests share one computation
that started after they arrived (a live list holds what arrived before the request)."""
from __future__ import annotations

import random
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from collector.store import TelemetryStore
from dashboard.query import TraceFilters
from dashboard.snapshot_source import filter_traces, summarize_traces
from dashboard.trace_summary import LayeredParts, key_index, merge_into, merge_parts, parts_of, select_traces
from meshscope.live_source import LiveSource
from meshscope.trace_list import BUCKET_S, SUMMARY_COLUMNS, Coalesced

T0 = 1_800_000_000.0  # a fixed epoch second, so the buckets' alignment is the same on every run
# names where a prefix is another service's name: the service filter must tell them apart
SERVICES = ["gateway.istio-system", "productpage.bookinfo", "reviews.bookinfo", "reviews-ui.bookinfo", "ratings",
            "ratings.bookinfo", "details.bookinfo"]
FILTERS = [TraceFilters(limit=10_000), TraceFilters(limit=7), TraceFilters(status="error", limit=10_000),
           TraceFilters(status="ok", limit=50), TraceFilters(service="reviews", limit=10_000),
           TraceFilters(service="ratings", limit=20), TraceFilters(min_duration_ms=2_500.0, limit=10_000)]


class _At(LiveSource):
    """A live source whose clock is the test's (the store's clock too)."""

    def __init__(self, store: TelemetryStore, clock: list[float]):
        super().__init__(SimpleNamespace(store=store, backend=None))
        self.clock = clock

    def now(self) -> float:
        return self.clock[0]


def _spans(rng: random.Random, traces: int, span_s: float) -> list[dict]:
    """Traces of 1-8 spans starting over `span_s` seconds; a trace's spans spread over up to 25 s (several buckets);
    starts on a 5 ms grid so different traces tie; some traces have no root, some two, a few spans an error."""
    out = []
    for t in range(traces):
        tid = f"{rng.getrandbits(64):016x}{t:016x}"
        first = T0 + round(rng.uniform(0, span_s) / 0.005) * 0.005
        n = rng.randint(1, 8)
        roots = rng.choice([0, 1, 1, 1, 2])
        for i in range(n):
            start = first + (0 if i == 0 else round(rng.uniform(0, 25) / 0.005) * 0.005)
            out.append({"trace_id": tid, "span_id": f"{t:08x}{i:08x}",
                        "parent_span_id": "" if i < roots else f"{t:08x}{0:08x}",
                        "service_name": rng.choice(SERVICES), "name": rng.choice(["GET /", "GET /reviews", "call"]),
                        "start_ns": int(round(start * 1e9)), "dur_ns": rng.randint(0, 4_000_000_000),
                        "status_code": "ERROR" if rng.random() < 0.08 else rng.choice(["UNSET", "OK"])})
    return out


def _table(rows: list[dict]) -> pa.Table:
    ts = pa.timestamp("ns", tz="UTC")
    start = pa.array([r["start_ns"] for r in rows], pa.int64())
    end = pa.array([r["start_ns"] + r["dur_ns"] for r in rows], pa.int64())
    cols = {k: pa.array([r[k] for r in rows]) for k in ("trace_id", "span_id", "parent_span_id", "service_name",
                                                         "name", "status_code")}
    return pa.table({**cols, "start_time": start.cast(ts), "end_time": end.cast(ts)})


def _reference(src: _At, window: float, end: float | None, filters: TraceFilters) -> list[dict]:
    """The list summarised from every span of the window at once (the pre-#18 path)."""
    return filter_traces(summarize_traces(src._spans(window, end=end, columns=SUMMARY_COLUMNS)), filters)


# Each case below is a run of requests compared with the reference; what makes it a case (the classes of
# situation the incremental list must get right) is asserted to have occurred in the run, so a smaller run
# (fewer spans, fewer requests) cannot silently stop covering one. Sizes: TRACES traces over SPREAD_S seconds.
TRACES, SPREAD_S, MAX_BATCH = 60, 60.0, 40  # up to MAX_BATCH spans arrive between two pairs of requests


@pytest.mark.parametrize("seed,store_window,max_bytes,on_disk", [
    (1, 3600.0, 512 * 2**20, False),   # nothing evicted: only arrival order and window edges
    (2, 70.0, 512 * 2**20, False),     # retention: the store's window is shorter than the list's
    (3, 3600.0, 25_000, False),        # the memory budget drops the oldest chunks (no data dir: gone)
    (4, 3600.0, 25_000, True),         # ... and with a data dir: read back from the segments
])
def test_the_incremental_list_equals_the_summary_of_every_span(tmp_path, seed, store_window, max_bytes, on_disk):
    rng = random.Random(seed)
    rows = _spans(rng, TRACES, SPREAD_S)
    width = int(BUCKET_S * 1e9)
    buckets: dict[str, set[int]] = {}
    for r in rows:
        buckets.setdefault(r["trace_id"], set()).add(r["start_ns"] // width)
    multi_bucket = {tid for tid, b in buckets.items() if len(b) > 1}
    rows.sort(key=lambda r: r["start_ns"] + rng.uniform(-30e9, 30e9))  # roughly by time, spans up to 30 s late
    clock = [T0]
    store = TelemetryStore(tmp_path if on_disk else None, window_s=store_window, max_bytes=max_bytes,
                           clock=lambda: clock[0])
    src = _At(store, clock)
    compared = 0
    seen: dict[str, int] = {}  # the classes of situation that occurred in this run (asserted below)

    def saw(what: str, n: int = 1) -> None:
        seen[what] = seen.get(what, 0) + n

    try:
        i, newest, requests = 0, None, 0
        while i < len(rows):
            n = rng.randint(1, MAX_BATCH)
            batch, i = rows[i:i + n], i + n
            clock[0] = max(clock[0], max(r["start_ns"] for r in batch) / 1e9) + rng.uniform(0, 3)
            if newest is not None and compared:  # spans landing in a bucket older than one a request already read
                saw("late span", sum(r["start_ns"] // width < newest for r in batch))
            newest = max([newest or 0] + [r["start_ns"] // width for r in batch])
            store.add_spans(_table(batch))
            if on_disk and rng.random() < 0.5:  # evicted rows then come from segments as well as unflushed writes
                store.flush()  # (the store flushes every minute of wall time: never within this test)
            for _ in range(2):
                window = rng.choice([900.0, 60.0, 37.5, rng.uniform(5, 200)])
                end = None if rng.random() < 0.6 else clock[0] - rng.uniform(0, 120)
                k = requests % len(FILTERS)  # each filter in turn: every one is compared several times
                requests += 1
                filters = FILTERS[k]
                filters = TraceFilters(filters.service, filters.status, filters.min_duration_ms, filters.limit,
                                       end=end, window_s=window)
                evicted_before = store.evicted_rows
                got = src.traces(filters)
                assert got == _reference(src, window, end, filters), (seed, i, window, end, filters)
                compared += len(got)
                if got:
                    saw(f"filter {k}")
                    saw("multi-bucket trace", sum(t["trace_id"] in multi_bucket for t in got))
                    if window > store_window and evicted_before:
                        saw("window longer than retention")
        assert compared > 100  # the comparisons held lists, not just empty ones
        assert src._trace_list.buckets_reused > 0  # and the kept buckets were used, not recomputed each time
        assert seen.get("late span") and seen.get("multi-bucket trace"), seen
        assert all(seen.get(f"filter {k}") for k in range(len(FILTERS))), seen  # every filter gave a list
        evicted = store.evicted_rows > 0
        assert evicted == (store_window < 3600.0 or max_bytes < 2**20), (store.evicted_rows, seen)
        if store_window < 3600.0:
            assert seen.get("window longer than retention"), seen
        assert (store.disk_reads > 0) == (on_disk and evicted), store.disk_reads  # read back only from segments
    finally:
        store.close()


def test_a_request_summarises_only_the_buckets_whose_spans_changed():
    rng = random.Random(7)
    rows = _spans(rng, 200, 100.0)
    clock = [T0 + 200.0]
    store = TelemetryStore(window_s=3600.0, clock=lambda: clock[0])
    src = _At(store, clock)
    store.add_spans(_table(rows))
    lo_edge = int(T0 // BUCKET_S) * BUCKET_S  # a window whose start is a bucket's start: no partial bucket there
    window = clock[0] - lo_edge
    tl = src._trace_list
    first = src.traces(TraceFilters(limit=10_000, window_s=window))
    full_buckets = tl.buckets_summarised
    assert full_buckets >= 10
    # a late span of an old trace and a new span in the newest bucket: two buckets change, the rest are reused
    late = dict(rows[0], span_id="late0001", start_ns=rows[0]["start_ns"] + 1, status_code="ERROR")
    store.add_spans(_table([late]))
    again = src.traces(TraceFilters(limit=10_000, window_s=window))
    assert tl.buckets_summarised - full_buckets <= 1
    assert tl.buckets_reused >= full_buckets - 1
    changed = next(t for t in again if t["trace_id"] == late["trace_id"])
    before = next(t for t in first if t["trace_id"] == late["trace_id"])
    assert changed["spans"] == before["spans"] + 1 and changed["status"] == "error"
    assert again == _reference(src, window, None, TraceFilters(limit=10_000, window_s=window))
    store.close()


def test_concurrent_callers_share_the_computation_that_started_after_they_arrived():
    shared = Coalesced()
    gate, entered = threading.Event(), threading.Event()
    runs: list[int] = []

    def compute():
        runs.append(len(runs) + 1)
        entered.set()
        gate.wait(30)
        return runs[-1]

    results: dict[str, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__("first", shared.get("k", compute)))
    first.start()
    assert entered.wait(30)
    # three callers arrive while computation 1 runs: none may take its result (it began before they arrived)
    late = [threading.Thread(target=lambda n=n: results.__setitem__(n, shared.get("k", compute))) for n in "abc"]
    for t in late:
        t.start()
    deadline = time.monotonic() + 30
    while shared._runs["k"].waiting < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert shared._runs["k"].waiting == 3
    gate.set()
    for t in [first, *late]:
        t.join(30)
    assert results == {"first": 1, "a": 2, "b": 2, "c": 2}
    assert shared.computations == 2
    assert shared.get("k", compute) == 3  # a caller alone computes at once


def test_a_failed_computation_fails_every_caller_sharing_it_and_the_next_caller_tries_again():
    shared = Coalesced()

    def boom():
        raise ValueError("store closed")

    with pytest.raises(ValueError, match="store closed"):
        shared.get("k", boom)
    assert shared.get("k", lambda: 5) == 5


def test_the_live_list_over_an_empty_store_and_an_unsummarised_store_of_one_span(tmp_path):
    clock = [T0]
    store = TelemetryStore(window_s=3600.0, clock=lambda: clock[0])
    src = _At(store, clock)
    assert src.traces(TraceFilters()) == []
    row = _spans(random.Random(3), 1, 1.0)[0]
    store.add_spans(_table([row]))
    clock[0] = T0 + 5
    listed = src.traces(TraceFilters())
    assert [t["trace_id"] for t in listed] == [row["trace_id"]] and listed[0]["services"] == [row["service_name"]]
    store.close()


def test_summaries_do_not_depend_on_the_order_spans_are_stored_in():
    """Two roots with one start: the root is chosen by (start, service, name), not by which was stored first."""
    rows = [{"trace_id": "a" * 32, "span_id": "1", "parent_span_id": "", "service_name": "zeta", "name": "z",
             "start_time": 10.0, "end_time": 11.0, "status_code": "UNSET"},
            {"trace_id": "a" * 32, "span_id": "2", "parent_span_id": "", "service_name": "alpha", "name": "a",
             "start_time": 10.0, "end_time": 10.5, "status_code": "UNSET"}]
    one, other = summarize_traces(pd.DataFrame(rows)), summarize_traces(pd.DataFrame(rows[::-1]))
    assert one.to_dict("records") == other.to_dict("records")
    assert one.iloc[0]["root_service"] == "alpha"


@pytest.mark.parametrize("keys", ["unique body", "all equal"])
def test_merges_fold_by_trace_id_so_colliding_trace_keys_never_merge_two_traces(keys):
    """Parts are merged by a 64-bit hash of the trace id (`key`); traces whose hashes collide must stay apart, whether
    the kept body's index is unique (a fresh trace hits another body trace) or not (the plain merge then)."""
    rng = random.Random(11)
    rows = _spans(rng, 120, 60.0)
    frame = pd.DataFrame(rows)
    frame["start_time"], frame["end_time"] = frame.start_ns / 1e9, (frame.start_ns + frame.dur_ns) / 1e9
    cut = int(T0 * 1e9) + 30 * 10**9  # body: spans before; fresh: after (traces straddle the cut)
    body, fresh = parts_of(frame[frame.start_ns < cut]), parts_of(frame[frame.start_ns >= cut])
    want = [select_traces(merge_parts([body, fresh]), f) for f in FILTERS]
    assert sum(len(w) for w in want) > 100
    # keys still a function of the trace id, but colliding: every trace of the fresh part not in the body takes the
    # key of a body trace ("unique body"), or every trace the same key
    in_body = list(body.traces.trace_id)
    key = {tid: i for i, tid in enumerate(in_body)}
    key.update({tid: i % len(in_body) for i, tid in enumerate(t for t in fresh.traces.trace_id if t not in key)})
    for p in (body, fresh):
        p.traces["key"] = np.array([key[t] if keys == "unique body" else 7 for t in p.traces.trace_id], np.uint64)
    straddling = set(body.traces.trace_id) & set(fresh.traces.trace_id)
    unrelated = sum(k in set(body.traces.key) and t not in straddling for t, k in zip(fresh.traces.trace_id,
                                                                                      fresh.traces.key))
    assert straddling and unrelated  # a fresh trace hits its own body row, and another hits an unrelated one
    layered = merge_into(body, key_index(body), [fresh])
    assert isinstance(layered, LayeredParts) == (keys == "unique body")  # the fallback when not unique
    assert [select_traces(layered, f) for f in FILTERS] == want
    assert [select_traces(merge_parts([body, fresh]), f) for f in FILTERS] == want


def test_only_buckets_whose_chunks_changed_are_read_again_and_a_compaction_summarises_nothing_again():
    """A bucket is re-read only when the store chunks overlapping it changed; a compaction replaces chunks without
    changing rows, so its buckets are re-fingerprinted but keep their summaries."""
    rng = random.Random(5)
    old = sorted(_spans(rng, 150, 100.0), key=lambda r: r["start_ns"])
    new = [dict(r, start_ns=r["start_ns"] + 130 * 10**9) for r in sorted(_spans(rng, 60, 30.0),
                                                                          key=lambda r: r["start_ns"])]
    clock = [T0 + 300.0]
    store = TelemetryStore(window_s=3600.0, clock=lambda: clock[0])
    src = _At(store, clock)
    window = clock[0] - int(T0 // BUCKET_S) * BUCKET_S
    filters = TraceFilters(limit=10_000, window_s=window)
    try:
        for i in range(0, len(old), 20):  # small adds: each its own chunk, well under the compaction threshold
            store.add_spans(_table(old[i:i + 20]))
        assert src.traces(filters) == _reference(src, window, None, filters)
        tl = src._trace_list
        before = dict(tl._buckets)
        chunks_before = len(store.chunk_ranges("spans")[0])
        checked, summarised = tl.buckets_checked, tl.buckets_summarised
        for r in new:  # one add per span: enough small chunks for the store to compact them with the old ones
            store.add_spans(_table([r]))
        assert len(store.chunk_ranges("spans")[0]) < chunks_before + len(new)  # compacted
        assert src.traces(filters) == _reference(src, window, None, filters)
        assert tl.buckets_checked > checked  # the old buckets' chunks changed: their start times were read ...
        assert all(tl._buckets[k] is b for k, b in before.items())  # ... but their rows had not: not summarised
        new_buckets = {r["start_ns"] // int(BUCKET_S * 1e9) for r in new}
        assert 0 < tl.buckets_summarised - summarised <= len(new_buckets)
        checked, summarised = tl.buckets_checked, tl.buckets_summarised
        assert src.traces(filters) == _reference(src, window, None, filters)
        assert (tl.buckets_checked, tl.buckets_summarised) == (checked, summarised)  # nothing changed: nothing read
    finally:
        store.close()


def test_a_bucket_the_retention_cutoff_crosses_is_read_again_though_its_chunks_did_not_change():
    """Rows past the store's window are hidden before they are trimmed (the chunk stays): a bucket the cutoff lies
    in can lose rows with no chunk changed, so it is never reused on its chunks alone."""
    rows = sorted(_spans(random.Random(9), 80, 40.0), key=lambda r: r["start_ns"])
    clock = [T0 + 50.0]
    store = TelemetryStore(window_s=48.0, clock=lambda: clock[0])
    src = _At(store, clock)
    filters = TraceFilters(limit=10_000, window_s=900.0)
    try:
        store.add_spans(_table(rows))  # one chunk; no later add, so nothing is trimmed or compacted
        for step in range(12):  # the cutoff walks through the first buckets, within and across them
            got = src.traces(filters)
            assert got == _reference(src, 900.0, None, filters), step
            clock[0] += BUCKET_S * 0.35
        assert len(store.chunk_ranges("spans")[0]) == 1 and src._trace_list.buckets_reused > 0
    finally:
        store.close()


@pytest.mark.parametrize("services", [3, 63, 64, 90])
def test_each_traces_services_are_its_distinct_names_with_few_or_more_services_than_bits_in_a_mask(services):
    """Service sets are built per distinct set from a bit mask up to 63 services, per trace beyond: both must
    give each trace its own sorted names (compared with the summary of every span at once)."""
    rng = random.Random(services)
    names = [f"svc-{i:03d}.ns" for i in range(services)]
    frame = pd.DataFrame(_spans(rng, 150, 30.0))
    frame["service_name"] = [rng.choice(names) for _ in range(len(frame))]
    frame["start_time"], frame["end_time"] = frame.start_ns / 1e9, (frame.start_ns + frame.dur_ns) / 1e9
    want = filter_traces(summarize_traces(frame), TraceFilters(limit=10_000))
    got = select_traces(parts_of(frame), TraceFilters(limit=10_000))
    assert got == want and len({tuple(t["services"]) for t in got}) >= min(2**services - 1, 20)
