"""Memory over time: is the meshscope process's memory flat over time? RSS of `meshscope up --rate N`, sampled.

Why a slope and not a peak: a leak shows as RSS that keeps rising after warm-up while the load is
steady; a flat process has a slope near zero however high its level. The bench starts
`meshscope up` (same process layout as bench_load: mesh, collectors, diagnoser and UI in one
process), waits out the warm-up, then samples RSS every few seconds for the run while polling
the graph and findings routes like an open UI would, and reports the least-squares slope over the
whole run and over its second half (the first minutes still fill the store's window).

Why RSS minus the store: the telemetry store fills its window up to its cap (128 MB in `meshscope up`;
at 5 rps it takes ~12 minutes), and that growth is by design. The store's own size is read from
`/metrics` (`meshscope_store_bytes`) at each sample, and the slope of RSS minus it is what a leak
would show; it is reported beside the plain RSS slope.

Where it sits: the bench turns on meshscope's memory probe (meshscope/memory_probe.py, a line a minute) and
prints, at the end, each allocator's figures beside the kernel's and the RSS none of them covers.

Knobs (environment): BENCH_RSS_RATE (20), BENCH_RSS_SECONDS (600), BENCH_RSS_WARMUP (60),
BENCH_RSS_EVERY (5 s between samples), BENCH_RSS_CSV (a file that gets every sample as it is taken:
seconds, RSS MB, store MB, threads, load average; an hour-long run can be read while it runs and is not
lost if it is stopped). Bounded: startup 180 s, the run as set, stop 30 s.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.bench_load import Run, _poll_routes, _rss_mb, _threads, _wait_ready, start_up
from bench.common import report


def slope_mb_per_min(t: list[float], rss: list[float]) -> float:
    """Least-squares slope of RSS (MB) against time (s), in MB per minute."""
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(np.asarray(t), np.asarray(rss), 1)[0] * 60.0)


def store_mb(port: int) -> float:
    """The telemetry store's bytes in memory, as meshscope's /metrics reports them (NaN if unreadable)."""
    import re
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20).read().decode()
    except OSError:
        return float("nan")
    m = re.search(r"^meshscope_store_bytes (\S+)", text, re.M)
    return float(m.group(1)) / 2**20 if m else float("nan")


def holders(path: Path, peak: bool = False) -> dict[str, float]:
    """What held the memory at the probe's last line, or with `peak` at its line of highest RSS (MB): each
    allocator's own books beside the kernel's, and what waited to be stored (the receivers' queues, the access-log
    lines not read yet: `queues`, from the probe's lines of code that has them).

    `unexplained` is resident anonymous memory none of the allocators' books covers (RSS minus file pages,
    jemalloc's resident, glibc's heaps and blocks mapped on their own, pymalloc's arenas, thread stacks)."""
    import json

    try:
        snaps = [json.loads(line) for line in path.read_text().splitlines()]
        snap = max(snaps, key=lambda x: x["smaps"]["rss"]) if peak else snaps[-1]
    except (OSError, IndexError, ValueError, KeyError):
        return {}
    sm, gl, pm, je = snap["smaps"], snap.get("glibc", {}), snap.get("pymalloc", {}), snap.get("jemalloc", {})
    out = {"rss": sm["rss"], "file pages": sm.get("file", 0.0), "jemalloc resident": je.get("resident", 0.0),
           "jemalloc allocated": je.get("allocated", 0.0), "arrow allocated": snap.get("arrow", {}).get("allocated", 0.0),
           "store": snap.get("store_mb", 0.0), "glibc heaps": gl.get("arena", 0.0), "glibc in use": gl.get("in_use", 0.0),
           "glibc mapped blocks": gl.get("mmapped", 0.0), "pymalloc arenas": pm.get("arenas_mb", 0.0),
           "thread stacks": sm.get("thread_stacks", 0.0), "lazily freed": sm.get("lazyfree", 0.0)}
    out["unexplained"] = (sm["rss"] - out["file pages"] - out["jemalloc resident"] - out["glibc heaps"]
                          - out["glibc mapped blocks"] - out["pymalloc arenas"] - out["thread stacks"] - sm.get("other_special", 0.0))
    out.update(snap.get("queues", {}))
    out["minutes"] = (snap["t"] - snaps[0]["t"]) / 60
    return out


def soak(rate: float, seconds: float, warmup: float, every: float) -> tuple[list[float], list[float], Run, int]:
    run = Run(rate)
    times: list[float] = []
    rss: list[float] = []
    run.store_mb = []  # type: ignore[attr-defined]
    run.loads = []  # type: ignore[attr-defined]
    csv_path = os.environ.get("BENCH_RSS_CSV")
    csv = open(csv_path, "a", buffering=1) if csv_path else None  # noqa: SIM115 - closed below
    if csv is not None:
        csv.write("seconds,rss_mb,store_mb,threads,load1\n")
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        data = Path(tmp)
        # where the memory sits, every minute (meshscope/memory_probe.py; a baseline without the probe writes nothing)
        probe = os.environ.setdefault("MESHSCOPE_MEMORY_PROBE", str(data / "memory-probe.jsonl"))
        os.environ.setdefault("MESHSCOPE_MEMORY_PROBE_EVERY", "60")
        proc, port, _ = start_up(rate, data)
        threads_max = 0
        try:
            _wait_ready(proc, time.monotonic() + 180)
            time.sleep(warmup)  # a bench's fixed warm-up, not synchronisation
            stop = threading.Event()
            poller = threading.Thread(target=_poll_routes, args=(f"http://127.0.0.1:{port}", stop, run), daemon=True)
            poller.start()
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < seconds:
                if proc.poll() is not None:
                    raise RuntimeError(f"meshscope exited during the soak (code {proc.returncode})")
                times.append(elapsed)
                rss.append(_rss_mb(proc.pid))
                run.store_mb.append(store_mb(port))  # type: ignore[attr-defined]
                threads = _threads(proc.pid)
                threads_max = max(threads_max, threads)
                run.loads.append(os.getloadavg()[0])  # type: ignore[attr-defined]
                if csv is not None:
                    csv.write(f"{elapsed:.1f},{rss[-1]:.1f},{run.store_mb[-1]:.1f},{threads},{run.loads[-1]:.1f}\n")  # type: ignore[attr-defined]
                time.sleep(every)
            stop.set()
            poller.join(timeout=35)
            run.holders = holders(Path(probe))  # type: ignore[attr-defined]
            run.peak_holders = holders(Path(probe), peak=True)  # type: ignore[attr-defined]
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            if csv is not None:
                csv.close()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    return times, rss, run, threads_max


def main() -> None:
    rate = float(os.environ.get("BENCH_RSS_RATE", "20"))
    seconds = float(os.environ.get("BENCH_RSS_SECONDS", "600"))
    warmup = float(os.environ.get("BENCH_RSS_WARMUP", "60"))
    every = float(os.environ.get("BENCH_RSS_EVERY", "5"))
    times, rss, run, threads_max = soak(rate, seconds, warmup, every)
    tag = f"rss {rate:g}rps {seconds / 60:g}min"
    half = len(times) // 2
    report(f"{tag} meshscope rss start", rss[0], "MB")
    report(f"{tag} meshscope rss end", rss[-1], "MB", ("start", rss[0]))
    report(f"{tag} meshscope rss max", max(rss), "MB")
    report(f"{tag} meshscope rss slope", slope_mb_per_min(times, rss), "MB/min")
    report(f"{tag} meshscope rss slope second half", slope_mb_per_min(times[half:], rss[half:]), "MB/min")
    store = np.asarray(run.store_mb)
    ok = ~np.isnan(store)
    if ok.sum() >= 3:
        t, rest = np.asarray(times)[ok], (np.asarray(rss) - store)[ok]
        report(f"{tag} store size end", float(store[ok][-1]), "MB")
        report(f"{tag} store slope", slope_mb_per_min(list(t), list(store[ok])), "MB/min")
        report(f"{tag} meshscope rss minus store slope", slope_mb_per_min(list(t), list(rest)), "MB/min")
        h = len(t) // 2
        report(f"{tag} meshscope rss minus store slope second half", slope_mb_per_min(list(t[h:]), list(rest[h:])), "MB/min")
        report(f"{tag} meshscope rss minus store end", float(rest[-1]), "MB")
    report(f"{tag} meshscope threads max", threads_max, "threads")
    for what, held in (("last line", getattr(run, "holders", {})), ("line of highest RSS", getattr(run, "peak_holders", {}))):
        if held:
            print(f"# where RSS sat at the probe's {what} (minute {held.pop('minutes'):.1f} of the probe): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in held.items()) + " MB", flush=True)
    loads = run.loads  # type: ignore[attr-defined]
    print(f"# load average over the run: min {min(loads):.1f}, median {float(np.median(loads)):.1f}, "
          f"max {max(loads):.1f} on {os.cpu_count()} cores", flush=True)
    for name in ("graph", "findings"):
        lat = sorted(run.latencies.get(name, []))
        if lat:
            report(f"{tag} {name} p99", 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "ms")
        report(f"{tag} {name} answered", len(lat), f"of {len(lat) + run.failures.get(name, 0)}")


if __name__ == "__main__":
    main()
