"""The live trace list's CPU per request at 20 requests/s of Bookinfo-shaped traces (#18).

Why: `GET /api/v1/traces` summarised the last 15 minutes of spans (~180k at 20 rps) on every request; it now keeps
per-bucket summaries and summarises only the spans that changed (`meshscope.trace_list`). This bench fills a store
with 15 minutes of traces (10 spans each over 8 services, exported in batches that arrive 1-4 s after they start),
then, on the store's own clock, adds what arrived in the next ~0.6 s (a page polling the list) and asks for the list,
20 times: CPU per request of the full summary (the code before: every span of the window read and summarised) beside
the incremental list, same store, same run. Both lists are compared (they must be equal).
"""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from bench.common import report

RATE = 20.0  # traces per second (one per gateway request)
WINDOW_S = 900.0
SERVICES = ["istio-ingressgateway.istio-system", "productpage.bookinfo", "productpage-v1.bookinfo",
            "details.bookinfo", "details-v1.bookinfo", "reviews.bookinfo", "reviews-v2.bookinfo", "ratings.bookinfo"]
SPANS_PER_TRACE = 10
REQUESTS = 20


def _batch(rng: np.random.Generator, first: int, count: int, t0: float) -> pa.Table:
    """Traces first..first+count-1 (trace i starts at t0 + i / RATE), every span of them."""
    ids = np.arange(first, first + count)
    k = SPANS_PER_TRACE
    span_ids = np.arange(first * k, (first + count) * k)
    starts = np.repeat(t0 + ids / RATE, k) + np.tile(np.arange(k) * 0.002, count)
    ends = starts + rng.uniform(0.001, 0.08, len(starts))
    parent = np.where(span_ids % k == 0, "", np.char.mod("%016x", span_ids - 1))
    ts = pa.timestamp("ns", tz="UTC")
    return pa.table({
        "trace_id": np.char.mod("%032x", np.repeat(ids, k)), "span_id": np.char.mod("%016x", span_ids),
        "parent_span_id": parent, "service_name": np.tile(np.array(SERVICES + SERVICES[:2]), count),
        "name": np.full(len(starts), "GET /productpage"), "kind": np.full(len(starts), "SERVER"),
        "start_time": pa.array((starts * 1e9).astype(np.int64)).cast(ts),
        "end_time": pa.array((ends * 1e9).astype(np.int64)).cast(ts),
        "status_code": np.where(rng.random(len(starts)) < 0.01, "ERROR", "UNSET")})


def main() -> None:
    from collector.store import TelemetryStore
    from dashboard.query import TraceFilters
    from dashboard.snapshot_source import filter_traces, summarize_traces
    from meshscope.live_source import LiveSource
    from meshscope.trace_list import SUMMARY_COLUMNS

    rng = np.random.default_rng(18)
    t0 = time.time() - WINDOW_S - 60
    clock = [t0]
    store = TelemetryStore(window_s=3600.0, clock=lambda: clock[0])

    class At(LiveSource):
        def now(self) -> float:
            return clock[0]

    src = At(SimpleNamespace(store=store, backend=None))
    sent = 0  # traces added so far; a trace's spans arrive ~2.5 s after it started (exporters batch)

    def advance(to: float) -> None:
        nonlocal sent
        due = int((to - 2.5 - t0) * RATE)
        while sent < due:  # one export batch per second of traces
            n = min(due - sent, int(RATE))
            store.add_spans(_batch(rng, sent, n, t0))
            sent += n
        clock[0] = to

    advance(t0 + WINDOW_S + 60)
    report("trace list spans in the window", store.row_count("spans"), "spans")
    src.traces(TraceFilters())  # the first request summarises every bucket (as the old path always did)
    full_cpu, incr_cpu = [], []
    for _ in range(REQUESTS):
        advance(clock[0] + 0.6)
        c0 = time.process_time()
        got = src.traces(TraceFilters())
        incr_cpu.append(time.process_time() - c0)
        c0 = time.process_time()
        want = filter_traces(summarize_traces(src._spans(WINDOW_S, columns=SUMMARY_COLUMNS)), TraceFilters())
        full_cpu.append(time.process_time() - c0)
        assert got == want, "the incremental list differs from the full summary"
    store.close()
    load = os.getloadavg()[0]
    full, incr = 1000 * float(np.median(full_cpu)), 1000 * float(np.median(incr_cpu))
    report("trace list cpu per request, incremental", incr, f"ms (median of {REQUESTS}, load {load:.1f})")
    # the ratio the other way round: at one decimal, incremental / full reads 0.0x
    report("trace list cpu per request, full summary (before)", full, f"ms (median of {REQUESTS}, load {load:.1f})",
           ("incremental", incr))


if __name__ == "__main__":
    main()
