"""The live trace list's CPU per request at 50 (or `BENCH_TRACE_LIST_RATE`) requests/s of Bookinfo traces (#18).

Why: `GET /api/v1/traces` summarised the last 15 minutes of spans (~480k at 50 rps) on every request; it now keeps
per-bucket summaries and summarises only the spans that changed (`meshscope.trace_list`). This bench fills a store
with 15 minutes of traces (10 spans each over 8 services, exported in batches that arrive 1-4 s after they start),
then, on the store's own clock, adds what arrived in the next ~0.6 s (a page polling the list) and asks for the list,
`BENCH_TRACE_LIST_REQUESTS` times (60: 36 s of store time, so several ten-second buckets complete and leave the
window and the once-per-bucket costs show in the p99): CPU per request, p50 and p99. Every tenth list is compared with
the full summary (the code before #18: every span of the window read and summarised; its CPU is reported too).
`BENCH_TRACE_LIST_CODE=<dir>` (a worktree of an older commit) also runs the same sequence on that code in a child
process, new and base alternating `BENCH_TRACE_LIST_ROUNDS` (2) times each, and reports the ratios against it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from bench.common import report

RATE = float(os.environ.get("BENCH_TRACE_LIST_RATE", "50"))  # traces per second (one per gateway request)
WINDOW_S = 900.0
SERVICES = ["istio-ingressgateway.istio-system", "productpage.bookinfo", "productpage-v1.bookinfo",
            "details.bookinfo", "details-v1.bookinfo", "reviews.bookinfo", "reviews-v2.bookinfo", "ratings.bookinfo"]
SPANS_PER_TRACE = 10
REQUESTS = int(os.environ.get("BENCH_TRACE_LIST_REQUESTS", "60"))
COMPARE_EVERY = 10
ROUNDS = int(os.environ.get("BENCH_TRACE_LIST_ROUNDS", "2"))  # with a base: runs of each, alternating


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


def run(t0: float, compare: bool) -> dict[str, list[float]]:
    """The request sequence on the code importable here: CPU seconds per incremental request (and per full summary,
    every COMPARE_EVERY-th request, when `compare`)."""
    from collector.store import TelemetryStore
    from dashboard.query import TraceFilters
    from dashboard.snapshot_source import filter_traces, summarize_traces
    from meshscope.live_source import LiveSource
    from meshscope.trace_list import SUMMARY_COLUMNS

    rng = np.random.default_rng(18)
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
    spans = store.row_count("spans")
    src.traces(TraceFilters())  # the first request summarises every bucket (as the old path always did)
    full_cpu, incr_cpu = [], []
    for i in range(REQUESTS):
        advance(clock[0] + 0.6)
        c0 = time.process_time()
        got = src.traces(TraceFilters())
        incr_cpu.append(time.process_time() - c0)
        if compare and (i % COMPARE_EVERY == COMPARE_EVERY - 1 or i == REQUESTS - 1):
            c0 = time.process_time()
            want = filter_traces(summarize_traces(src._spans(WINDOW_S, columns=SUMMARY_COLUMNS)), TraceFilters())
            full_cpu.append(time.process_time() - c0)
            assert got == want, "the incremental list differs from the full summary"
    store.close()
    return {"incremental": incr_cpu, "full": full_cpu, "spans": [spans]}


def _base(code: str, t0: float) -> dict[str, list[float]]:
    """This bench's sequence on the code in `code` (a worktree), in a child process: its figures."""
    env = dict(os.environ, PYTHONPATH=code, BENCH_TRACE_LIST_CHILD=str(t0))
    env.pop("BENCH_TRACE_LIST_CODE")
    out = subprocess.run([sys.executable, __file__], cwd=code, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(values: list[float], q: float) -> float:
    return 1000 * float(np.percentile(values, q))


def main() -> None:
    t0 = float(int(time.time() - WINDOW_S - 60))
    load0 = os.getloadavg()[0]
    code = os.environ.get("BENCH_TRACE_LIST_CODE")
    base, new = None, run(t0, compare=True)
    if code:  # base and new alternate, ROUNDS each, requests pooled: a load that drifts over the run hits both
        base = _base(code, t0)
        for _ in range(ROUNDS - 1):
            more = run(t0, compare=False)
            new["incremental"] += more["incremental"]
            base["incremental"] += _base(code, t0)["incremental"]
    load = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"  # at the start and the end
    report("trace list spans in the window", new["spans"][0], f"spans ({RATE:g} traces/s for {WINDOW_S:g} s)")
    for q, name in ((50, "p50"), (99, "p99")):
        unit = f"ms ({name} of {len(new['incremental'])} requests, load {load})"
        report(f"trace list cpu per request, {name}", _ms(new["incremental"], q), unit,
               ("base", _ms(base["incremental"], q)) if base else None)
        if base:
            report(f"trace list cpu per request, {name}, base ({code})", _ms(base["incremental"], q), unit)
    # the ratio the other way round: at one decimal, incremental / full reads 0.0x
    report("trace list cpu per request, full summary (before #18)", _ms(new["full"], 50),
           f"ms (median of {len(new['full'])}, load {load})", ("incremental p50", _ms(new["incremental"], 50)))


if __name__ == "__main__":
    if os.environ.get("BENCH_TRACE_LIST_CHILD"):  # the base run of `_base`: figures as JSON on the last line
        print(json.dumps(run(float(os.environ["BENCH_TRACE_LIST_CHILD"]), compare=False)))
    else:
        main()
