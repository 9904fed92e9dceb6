"""Idle is idle: the live diagnoser's CPU over steady traffic, with and without the steady check (issue #18).

Why in-process: `bench load`'s idle figure is the whole `meshscope up` process (collectors, Envoys' exports,
scrapes) and on a loaded box every part of it is starved alike, so the diagnoser's own change cannot be read
from it. Here the real loop thread (`LiveDiagnoser.start`) runs over a real `TelemetryStore` that a feeder
thread fills with healthy requests at a steady rate (BENCH_IDLE_RPS log lines/s, 40: the 5 rps demo's
sidecars log about that many), the store's generation as the data version (as `meshscope up` passes it), for
BENCH_IDLE_SECONDS (30) per mode, the modes in turns (`steady=False` is the previous scheduling). The
figure is the diagnoser thread's CPU time (/proc/self/task/<tid>/stat: other processes' load does not count)
as a share of one core, and how many cycles ran.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pandas as pd

from bench.common import report
from collector import schema as s
from meshscope.threads import stat_cpu_seconds


def _thread_cpu(tid: int) -> float:
    return stat_cpu_seconds(f"/proc/self/task/{tid}/stat")


def _healthy(n: int, t: float, rng: np.random.Generator, services: int = 8) -> pd.DataFrame:
    """`n` healthy client-side requests ending at `t` over a few services (usual latency, no error)."""
    from bench.bench_diagnose import synthetic_requests

    df = synthetic_requests(n, services=services, callers=2, broken=0, t0=t - 1.0, span_s=1.0,
                            seed=int(rng.integers(1 << 30)))
    df[s.PROTOCOL] = "HTTP/1.1"
    return df


def run(steady: bool, seconds: float, rps: float) -> tuple[float, int, int]:
    """(diagnoser CPU share of one core, cycles run, cycles skipped as steady) over `seconds` of steady traffic."""
    from collector.store import TelemetryStore
    from diagnose.live import LiveDiagnoser, LiveSources

    store = TelemetryStore(window_s=600)
    rng = np.random.default_rng(1)
    stop = threading.Event()

    def feed() -> None:  # a batch a second, as the tailer hands them over
        while not stop.wait(1.0):
            store.add_requests(_healthy(int(rps), time.time(), rng))

    for k in range(30, 0, -1):  # a warm window, as after start-up
        store.add_requests(_healthy(int(rps), time.time() - k, rng))
    diag = LiveDiagnoser(LiveSources.from_store(store), data_version=lambda: store.generation("requests"),
                         steady=steady)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    diag.start()
    try:
        deadline = time.monotonic() + 180  # the first cycles (imports, baseline learning) are start-up, not idle
        while diag.last_evaluation.get("count", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        tid = diag._thread.native_id
        c0, runs0, t0 = _thread_cpu(tid), diag.last_evaluation.get("count", 0), time.monotonic()
        time.sleep(seconds)  # the measured period itself
        share = (_thread_cpu(tid) - c0) / (time.monotonic() - t0)
        runs = diag.last_evaluation.get("count", 0) - runs0
    finally:
        stop.set()
        diag.stop()
        store.close()
    return share, runs, diag.steady_skips


def main() -> None:
    seconds = float(os.environ.get("BENCH_IDLE_SECONDS", "30"))
    rps = float(os.environ.get("BENCH_IDLE_RPS", "40"))
    load = os.getloadavg()[0]
    before = run(False, seconds, rps)
    after = run(True, seconds, rps)
    report("idle diagnoser cpu", 100 * after[0], f"% of one core ({rps:g} lines/s steady, {seconds:g} s, "
           f"load {load:.0f}-{os.getloadavg()[0]:.0f})", ("every cycle", 100 * before[0]))
    report("idle diagnoser cpu every cycle", 100 * before[0], "% of one core (the previous scheduling)")
    report("idle diagnoser cycles", after[1], f"cycles in {seconds:g} s ({after[2]} skipped as steady)",
           ("every cycle", before[1]))


if __name__ == "__main__":
    main()
