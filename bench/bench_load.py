"""Load: the meshscope process's CPU share, RSS and API latency while `meshscope up --rate N` runs.

Why a separate process per rate: the figures must be those of the real command (mesh, collectors,
diagnoser, UI in one process), not of an in-process harness. For each offered rate it starts
`meshscope up` on free ports in a temp data dir, lets it warm up, then for a bounded period:
- samples CPU (utime+stime from /proc) of the meshscope process and, beside it, of its Envoy
  children and of its other children (demo apps), and the meshscope process's RSS every second;
- polls the API and UI routes from a few client threads and records each answer's latency;
- applies a scenario mid-run and clears it (the API must stay responsive while config changes);
- counts the requests the traffic generator completed against the distinct request ids meshscope
  stored from the gateway's access log in the same interval ("every request accounted for").
Then SIGTERM, and the time the process takes to exit.

Knobs (environment): BENCH_LOAD_RATES (default "5,20,50,200"), BENCH_LOAD_SECONDS (60),
BENCH_LOAD_WARMUP (15). Each run is bounded: startup 180 s, measure as set, stop 30 s.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import report

ROUTES = {"graph": "/api/v1/graph", "findings": "/api/v1/findings", "slos": "/api/v1/slos", "ui": "/"}
_TICK = os.sysconf("SC_CLK_TCK")
SCENARIO = "fault-abort"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- /proc readings (no psutil dependency) --------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _descendants(root: int) -> dict[int, str]:
    """pid -> command name of every process below `root`."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        parent[int(d)] = int(rest.split()[1])
        names[int(d)] = name
    out, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in out:
                out[child] = names[child]
                frontier.append(child)
    return out


@dataclass
class Run:
    rate: float
    cpu_self: float = 0.0  # share of one core
    cpu_envoy: float = 0.0
    cpu_other: float = 0.0
    rss_start: float = 0.0
    rss_end: float = 0.0
    rss_max: float = 0.0
    threads_max: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    stored: int = 0
    skipped: int = 0
    stop_s: float = 0.0


def _poll_routes(base: str, stop: threading.Event, run: Run) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            for name, path in ROUTES.items():
                t0 = time.perf_counter()
                try:
                    r = client.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                if ok:
                    run.latencies.setdefault(name, []).append(dt)
                else:
                    run.failures[name] = run.failures.get(name, 0) + 1
            stop.wait(0.25)


def _wait_ready(proc: subprocess.Popen, deadline: float) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("meshscope up exited before it was ready:\n" + "".join(lines[-20:]))
        lines.append(line)
        if line.startswith("Ready."):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
            return lines
    raise RuntimeError("meshscope up not ready in time:\n" + "".join(lines[-20:]))


def _stored_request_ids(data_dir: Path, start: float, end: float) -> int:
    """Distinct request ids (x-request-id: one per gateway request, shared by every hop) meshscope stored
    with a start time in [start, end]."""
    import pyarrow.compute as pc

    from collector.store import TelemetryStore

    with TelemetryStore(data_dir / "telemetry", window_s=3600 * 24) as store:
        ids = store.arrow("requests", start, end, columns=["request_id"]).column("request_id")
    ids = pc.filter(ids, pc.not_equal(ids, ""))
    return len(pc.unique(ids))


def start_up(rate: float, data: Path) -> tuple[subprocess.Popen, int, int]:
    """`meshscope up` on free loopback ports in its own session (so the whole tree can be killed): (proc, UI port, control port)."""
    port, gw, ctl, otlp = (_free_port() for _ in range(4))
    cmd = [sys.executable, "-m", "meshscope", "up", "--rate", str(rate), "--port", str(port),
           "--gateway-port", str(gw), "--control-port", str(ctl), "--otlp-port", str(otlp), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return proc, port, ctl


def measure(rate: float, seconds: float, warmup: float) -> Run:
    from mesh.control_api import ControlClient

    run = Run(rate)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        data = Path(tmp)
        proc, port, ctl = start_up(rate, data)
        try:
            _wait_ready(proc, time.monotonic() + 180)
            control = ControlClient(f"http://127.0.0.1:{ctl}", data_dir=data)
            time.sleep(warmup)  # a bench's fixed warm-up, not synchronisation
            kids = _descendants(proc.pid)
            envoys = [p for p, n in kids.items() if "envoy" in n]
            others = [p for p in kids if p not in envoys]
            c0 = (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys)), sum(map(_cpu_seconds, others)))
            sent0 = control.status()["traffic"] or {}
            t_start = time.time()
            wall0 = time.monotonic()
            run.rss_start = _rss_mb(proc.pid)
            stop = threading.Event()
            pollers = [threading.Thread(target=_poll_routes, args=(f"http://127.0.0.1:{port}", stop, run), daemon=True)
                       for _ in range(2)]
            for t in pollers:
                t.start()
            applied = cleared = False
            while (elapsed := time.monotonic() - wall0) < seconds:
                run.rss_max = max(run.rss_max, _rss_mb(proc.pid))
                run.threads_max = max(run.threads_max, _threads(proc.pid))
                if not applied and elapsed > seconds / 3:
                    control._call("POST", f"/v1/scenarios/{SCENARIO}")
                    applied = True
                if not cleared and elapsed > 2 * seconds / 3:
                    control._call("DELETE", "/v1/scenario")
                    cleared = True
                time.sleep(1.0)
            wall = time.monotonic() - wall0
            sent1 = control.status()["traffic"] or {}
            t_end = time.time()
            c1 = (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys)), sum(map(_cpu_seconds, others)))
            stop.set()
            for t in pollers:
                t.join(timeout=35)
            run.rss_end = _rss_mb(proc.pid)
            run.cpu_self, run.cpu_envoy, run.cpu_other = ((b - a) / wall for a, b in zip(c0, c1))
            run.sent = sent1.get("sent", 0) - sent0.get("sent", 0)
            run.skipped = sent1.get("skipped", 0) - sent0.get("skipped", 0)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
                run.stop_s = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                run.stop_s = float("inf")
            # requests that started well inside the interval; sent counts completions
            run.stored = _stored_request_ids(data, t_start, t_end)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    return run


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    rates = [float(r) for r in os.environ.get("BENCH_LOAD_RATES", "5,20,50,200").split(",") if r.strip()]
    seconds = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
    warmup = float(os.environ.get("BENCH_LOAD_WARMUP", "15"))
    sustained = 0.0
    for rate in rates:
        try:
            run = measure(rate, seconds, warmup)
        except Exception as exc:  # one rate failing must not hide the others
            print(f"# load {rate:g} rps failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        tag = f"load {rate:g}rps"
        report(f"{tag} meshscope cpu", 100 * run.cpu_self, "% of one core")
        report(f"{tag} envoys cpu", 100 * run.cpu_envoy, "% of one core")
        report(f"{tag} demo apps cpu", 100 * run.cpu_other, "% of one core")
        report(f"{tag} meshscope cpu vs envoys", 100 * run.cpu_self, "%", ("envoys", 100 * run.cpu_envoy))
        report(f"{tag} meshscope rss start", run.rss_start, "MB")
        report(f"{tag} meshscope rss end", run.rss_end, "MB", ("start", run.rss_start))
        report(f"{tag} meshscope rss max", run.rss_max, "MB")
        report(f"{tag} meshscope threads max", run.threads_max, "threads")
        for name in ROUTES:
            lat = run.latencies.get(name, [])
            report(f"{tag} {name} p50", 1000 * _pct(lat, 0.5), "ms")
            report(f"{tag} {name} p99", 1000 * _pct(lat, 0.99), "ms")
            report(f"{tag} {name} answered", len(lat), f"of {len(lat) + run.failures.get(name, 0)}")
        report(f"{tag} requests completed", run.sent / seconds, "rps", ("offered", rate))
        report(f"{tag} requests stored", run.stored, f"of {run.sent} completed (skipped by generator {run.skipped})")
        report(f"{tag} sigterm exit", run.stop_s, "s")
        accounted = run.sent > 0 and run.stored >= 0.98 * run.sent and run.sent >= 0.9 * rate * seconds
        if accounted:
            sustained = max(sustained, rate)
    report("load highest rate sustained, every request accounted for", sustained, "rps")


if __name__ == "__main__":
    main()
