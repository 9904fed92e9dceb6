"""Helpers every bench uses, so output lines stay uniform: `bench NAME: VALUE UNIT (RATIOx vs BASELINE)`."""
from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from collections.abc import Callable, Iterator


def report(name: str, value: float, unit: str, baseline: tuple[str, float] | None = None) -> None:
    """Print one figure; `baseline` is (name, value in the same unit) measured in the same run."""
    line = f"bench {name}: {value:,.3f} {unit}" if value < 100 else f"bench {name}: {value:,.0f} {unit}"
    if baseline and baseline[1]:
        line += f" ({value / baseline[1]:.1f}x vs {baseline[0]})"
    print(line, flush=True)


def best_of(fn: Callable[[], object], repeat: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best time in seconds over `repeat` runs by `clock` (wall time by default: least disturbed by the other core)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def cpu_best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Least CPU time (this process) in seconds over `repeat` runs: what the code costs, whatever else the box runs."""
    return best_of(fn, repeat, time.process_time)


@contextlib.contextmanager
def live_diagnosed_mesh(traffic_rate: float = 10.0) -> Iterator[tuple]:
    """A bundled mesh on free ports with its access logs tailed into a store and a fast live diagnoser over it.

    Yields (mesh, log files, diagnoser); everything is stopped on exit. The time-to-finding and soak benches
    both measure the diagnoser as `meshscope up` runs it, without the UI in the way.
    """
    from collector.sources.access_log import AccessLogTailer, LogFile
    from collector.store import TelemetryStore
    from diagnose.live import LiveDiagnoser, LiveSources
    from mesh.bundled import BundledConfig, BundledMesh

    with socket.socket() as sock:  # a free loopback port for the gateway (8080 may be taken by `meshscope up`)
        sock.bind(("127.0.0.1", 0))
        gateway_port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        mesh = BundledMesh(BundledConfig(gateway_port=gateway_port, control_port=None, data_dir=tmp,
                                         traffic_rate=traffic_rate))
        mesh.start()
        store = TelemetryStore(window_s=600)
        paths = {p.name: p for p in mesh.access_log_paths()}
        files = [LogFile(str(paths[f"{w.namespace}.{w.name}.log"]), w.name, w.namespace,
                         f"spiffe://cluster.local/ns/{w.namespace}/sa/{w.service_account}", "json")
                 for w in mesh.workloads if f"{w.namespace}.{w.name}.log" in paths]
        tailer = AccessLogTailer(files, store, interval=0.2)
        diag = LiveDiagnoser(LiveSources.from_store(store, snapshot=mesh.snapshot), interval_s=0.5, window_s=8,
                             ingest_lag_s=0.5, resolve_after=2)
        tailer.start()
        diag.start()
        try:
            yield mesh, files, diag
        finally:
            diag.stop()
            tailer.stop()
            store.close()
            mesh.stop()
