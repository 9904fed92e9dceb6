"""Load: the meshscope process's CPU share, RSS and API latency while `meshscope up --rate N` runs.

Why a separate process per rate: the figures must be those of the real command (mesh, collectors,
diagnoser, UI in one process), not of an in-process harness. For each offered rate it starts
`meshscope up` on free ports in a temp data dir, lets it warm up, then for a bounded period:
- samples CPU (utime+stime from /proc) of the meshscope process and, beside it, of its Envoy
  children and of its other children (demo apps), and the meshscope process's RSS every second;
- polls the API and UI routes a user's open pages hit (graph, findings, SLOs, traces, and the Overview
  and Services pages through the Dash callback the browser calls) from a few client threads and
  records each answer's latency (p50/p99 per route; a request that fails or times out is counted);
- applies scenarios and clears them in turn during the run (the API must stay responsive while config
  changes; issue #18: "while scenarios are applied and cleared");
- counts the requests the traffic generator completed against the distinct request ids meshscope
  stored from the access logs and against the requests the graph shows leaving the ingress gateway
  over the same interval ("every request accounted for": sent = in the logs = in the graph).
Then SIGTERM, and the time the process takes to exit.

Before that, with BENCH_LOAD_IDLE_SECONDS (60; 0 skips it), the process's CPU share is measured with the
traffic steady, no page polling and no config change: issue #18's "idle is idle" figure, with where it goes
(each collector's thread CPU and the diagnoser's cycles, read from meshscope's /metrics).
Knobs (environment): BENCH_LOAD_RATES (default "5,20,50,200"), BENCH_LOAD_SECONDS (60),
BENCH_LOAD_WARMUP (15), BENCH_LOAD_ARGS (more `meshscope up` flags, e.g. --trace-batch), BENCH_LOAD_CODE (a checkout whose `meshscope` runs, e.g. a `git worktree` of the
code before a change: the honest baseline, same bench). Each run is bounded: startup 180 s, measure as set,
stop 30 s. The issue's full run: `python -m bench.bench_load --rate R --minutes 10` (default 3 minutes).
"""
from __future__ import annotations

import argparse
import json
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
from meshscope.threads import stat_cpu_seconds

# name -> API path, or ("page", pathname): a UI page as the browser loads it (the Dash router callback)
ROUTES: dict[str, str | tuple[str, str]] = {
    "graph": "/api/v1/graph", "findings": "/api/v1/findings", "slos": "/api/v1/slos", "traces": "/api/v1/traces",
    "overview": ("page", "/"), "services": ("page", "/services"), "ui": "/"}
SCENARIOS = ("fault-abort", "mtls-mismatch", "fault-delay")  # applied in turn, each cleared before the next
SCENARIO_EVERY_S = 20.0  # apply or clear this often (a 60 s run: apply, clear, apply)
TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- /proc readings (no psutil dependency) --------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    try:
        return stat_cpu_seconds(f"/proc/{pid}/stat")
    except OSError:
        return 0.0


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


def _process_name(pid: int, comm: str) -> str:
    """A child's name: its `python -m <module>` when it is one (the demo apps), else its command name."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    if b"-m" in argv[:-1]:
        return argv[argv.index(b"-m") + 1].decode(errors="replace")
    return comm


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
    in_graph: float = 0.0  # requests the graph shows leaving the gateway over the run's window
    seconds: float = 0.0  # the measured wall time
    load_start: float = 0.0  # the machine's 1-min load average (other work on the box)
    load_end: float = 0.0
    idle_cpu_self: float = float("nan")  # share of one core with steady traffic, no page open, nothing changing
    idle_cpu_envoy: float = float("nan")
    idle_children: dict[str, float] = field(default_factory=dict)  # share of one core per other child process
    idle_seconds: float = 0.0
    idle_parts: dict[str, float] = field(default_factory=dict)  # share of one core per collector and the diagnoser
    idle_load: tuple[float, float] = (float("nan"), float("nan"))


def page_body(pathname: str) -> bytes:
    """The request the browser sends to render a page (`dashboard.app`'s router callback)."""
    return json.dumps({"output": "..page.children...nav.children..",
                       "outputs": [{"id": "page", "property": "children"}, {"id": "nav", "property": "children"}],
                       "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                                  {"id": "url", "property": "search", "value": ""}],
                       # the page's layout brought no page (`page-for` empty): the router renders it
                       "changedPropIds": ["url.pathname"],
                       "state": [{"id": "page-for", "property": "data", "value": None}]}).encode()


def _get(client, route: str | tuple[str, str]):
    if isinstance(route, tuple):
        return client.post("/_dash-update-component", content=page_body(route[1]),
                           headers={"Content-Type": "application/json", "X-Meshscope-CSRF": "1"})
    return client.get(route)


def _poll_routes(base: str, stop: threading.Event, run: Run) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        while not stop.is_set():
            for name, path in ROUTES.items():
                t0 = time.perf_counter()
                try:
                    r = _get(client, path)
                    ok = r.status_code == 200 and b"page-problem" not in r.content
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                if ok:
                    run.latencies.setdefault(name, []).append(dt)
                else:
                    run.failures[name] = run.failures.get(name, 0) + 1
            stop.wait(0.25)


def _cpu_parts(base: str) -> dict[str, float]:
    """CPU seconds so far per part, from meshscope's own /metrics: each collector's threads
    (meshscope_collector_cpu_seconds_total{source}) and the diagnoser's cycles. Thread CPU, so the box's load
    does not inflate it; {} when /metrics does not answer (an older checkout has no such counters)."""
    import re

    import httpx

    try:
        text = httpx.get(f"{base}/metrics", timeout=TIMEOUT_S).text
    except httpx.HTTPError:
        return {}
    parts = {m.group(1): float(m.group(2)) for m in
             re.finditer(r'^meshscope_collector_cpu_seconds_total\{source="([^"]+)"\} (\S+)$', text, re.M)}
    if m := re.search(r"^meshscope_diagnoser_cycle_cpu_seconds_total (\S+)$", text, re.M):
        parts["diagnoser cycles"] = float(m.group(1))
    parts.update({f"diagnoser phase {m.group(1)}": float(m.group(2)) for m in
                  re.finditer(r'^meshscope_diagnoser_phase_cpu_seconds_total\{phase="([^"]+)"\} (\S+)$', text, re.M)})
    # not CPU: the diagnoser's cycles by outcome and its steady checks by result (why a cycle had to run)
    parts.update({f"count cycles {m.group(1)}": float(m.group(2)) for m in
                  re.finditer(r'^meshscope_diagnoser_cycles_total\{outcome="([^"]+)"\} (\S+)$', text, re.M)})
    parts.update({f"count steady check {m.group(1)}": float(m.group(2)) for m in
                  re.finditer(r'^meshscope_diagnoser_steady_checks_total\{result="([^"]+)"\} (\S+)$', text, re.M)})
    # every thread group of the process (meshscope.threads): the collectors and the diagnoser again, and the rest
    parts.update({f"thread {m.group(1)}": float(m.group(2)) for m in
                  re.finditer(r'^meshscope_thread_cpu_seconds\{thread="([^"]+)"\} (\S+)$', text, re.M)})
    return parts


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
    """Distinct request ids (x-request-id: one per gateway request, shared by every hop) meshscope stored whose
    request ENDED in (start, end]: the generator's `sent` counts completions between two reads of its counter,
    so the stored side must count completions over the same interval. (Counting by start time, as before,
    added the requests in flight at the end and dropped those in flight at the start: +-1 at 20 rps, the
    12,003 stored of 12,002 completed of the lead's 10-minute run.) A request's end is its latest hop's
    start + duration (the gateway's, which spans every other hop)."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    from collector.store import TelemetryStore

    with TelemetryStore(data_dir / "telemetry", window_s=3600 * 24) as store:
        # hops start up to a request's duration before it ends: read a minute earlier, cut on the end
        t = store.arrow("requests", start - 60.0, end, columns=["request_id", "start_time", "duration_ms"])
    t = t.filter(pc.not_equal(t.column("request_id"), ""))
    if t.num_rows == 0:
        return 0
    starts = t.column("start_time").cast("int64").to_numpy(zero_copy_only=False) / 1e9
    ends = starts + np.nan_to_num(t.column("duration_ms").to_numpy(zero_copy_only=False), nan=0.0) / 1000
    ids = t.column("request_id").to_numpy(zero_copy_only=False)
    last = pd.Series(ends).groupby(ids, sort=False).max()
    return int(((last > start) & (last <= end)).sum())


def _counter_read(control) -> tuple[dict, float]:
    """The generator's counters and the moment it read them (its `at`; a generator without it: the middle of the
    call, which on a loaded box can take seconds, each worth 20 requests at 20 rps)."""
    t0 = time.time()
    traffic = control.status()["traffic"] or {}
    return traffic, float(traffic.get("at") or (t0 + time.time()) / 2)


def start_up(rate: float, data: Path) -> tuple[subprocess.Popen, int, int]:
    """`meshscope up` on free loopback ports in its own session (so the whole tree can be killed): (proc, UI port, control port).

    BENCH_LOAD_CODE names another checkout whose code runs instead of this one (a baseline worktree)."""
    port, gw, ctl, otlp = (_free_port() for _ in range(4))
    cmd = [sys.executable, "-m", "meshscope", "up", "--rate", str(rate), "--port", str(port),
           "--gateway-port", str(gw), "--control-port", str(ctl), "--otlp-port", str(otlp), "--data-dir", str(data),
           *os.environ.get("BENCH_LOAD_ARGS", "").split()]
    code = os.environ.get("BENCH_LOAD_CODE")
    env = {**os.environ, "PYTHONPATH": code} if code else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            cwd=code or None, env=env)
    return proc, port, ctl


def _graph_requests(base: str, window_s: float, end: float) -> float:
    """Requests the workload graph shows leaving the ingress gateway over [end - window, end] (rps x window)."""
    import httpx

    body = httpx.get(f"{base}/api/v1/graph", params={"window": f"{window_s:.3f}", "end": f"{end:.3f}"},
                     timeout=120).json()
    data = [e["data"] for e in body["elements"]]
    gateway = {d["id"] for d in data if "source" not in d and "ingressgateway" in str(d.get("name") or d.get("workload"))}
    return sum(float(d.get("rps") or 0.0) for d in data if d.get("source") in gateway) * window_s


def _cycle_scenarios(control, elapsed: float, state: dict) -> None:
    """Every SCENARIO_EVERY_S: apply the next scenario, or clear the one applied."""
    step = int(elapsed // SCENARIO_EVERY_S)
    if step == state.get("step", 0):
        return
    state["step"] = step
    if state.get("active"):
        control._call("DELETE", "/v1/scenario")
        state["active"] = None
    else:
        name = SCENARIOS[state.get("applied", 0) % len(SCENARIOS)]
        control._call("POST", f"/v1/scenarios/{name}")
        state["active"], state["applied"] = name, state.get("applied", 0) + 1


def measure(rate: float, seconds: float, warmup: float, idle_s: float = 0.0) -> Run:
    from mesh.control_api import ControlClient

    run = Run(rate)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        data = Path(tmp)
        proc, port, ctl = start_up(rate, data)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, time.monotonic() + 180)
            control = ControlClient(f"http://127.0.0.1:{ctl}", data_dir=data)
            time.sleep(warmup)  # a bench's fixed warm-up, not synchronisation
            kids = _descendants(proc.pid)
            envoys = [p for p, n in kids.items() if "envoy" in n]
            others = [p for p in kids if p not in envoys]
            if idle_s > 0:  # "idle is idle": steady traffic, no page polling, no config change
                p0, la0 = _cpu_parts(base), os.getloadavg()[0]
                i0, t_idle = (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys))), time.monotonic()
                k0 = {p: _cpu_seconds(p) for p in others}
                time.sleep(idle_s)  # the measured period itself, not synchronisation
                run.idle_seconds = time.monotonic() - t_idle
                for p in others:  # the demo apps (and whatever else the mesh runs beside meshscope), by name
                    name = _process_name(p, kids[p])
                    run.idle_children[name] = run.idle_children.get(name, 0.0) + (_cpu_seconds(p) - k0[p]) / run.idle_seconds
                run.idle_cpu_self, run.idle_cpu_envoy = (
                    (b - a) / run.idle_seconds for a, b in zip(i0, (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys)))))
                p1, run.idle_load = _cpu_parts(base), (la0, os.getloadavg()[0])
                run.idle_parts = {k: (p1[k] - p0.get(k, 0.0)) / run.idle_seconds for k in p1}
            c0 = (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys)), sum(map(_cpu_seconds, others)))
            sent0, t_start = _counter_read(control)
            wall0 = time.monotonic()
            run.rss_start = _rss_mb(proc.pid)
            run.load_start = os.getloadavg()[0]
            stop = threading.Event()
            pollers = [threading.Thread(target=_poll_routes, args=(base, stop, run), daemon=True) for _ in range(2)]
            for t in pollers:
                t.start()
            scenarios: dict = {}
            while (elapsed := time.monotonic() - wall0) < seconds:
                run.rss_max = max(run.rss_max, _rss_mb(proc.pid))
                run.threads_max = max(run.threads_max, _threads(proc.pid))
                _cycle_scenarios(control, elapsed, scenarios)
                time.sleep(1.0)
            wall = time.monotonic() - wall0
            sent1, t_end = _counter_read(control)
            c1 = (_cpu_seconds(proc.pid), sum(map(_cpu_seconds, envoys)), sum(map(_cpu_seconds, others)))
            run.load_end = os.getloadavg()[0]
            stop.set()
            for t in pollers:
                t.join(timeout=TIMEOUT_S + 5)
            if scenarios.get("active"):
                control._call("DELETE", "/v1/scenario")
            run.rss_end = _rss_mb(proc.pid)
            run.cpu_self, run.cpu_envoy, run.cpu_other = ((b - a) / wall for a, b in zip(c0, c1))
            run.sent = sent1.get("sent", 0) - sent0.get("sent", 0)
            run.skipped = sent1.get("skipped", 0) - sent0.get("skipped", 0)
            run.seconds = wall
            time.sleep(5)  # every target's next scrape (1 s) closes the window before the graph reads it
            try:
                run.in_graph = _graph_requests(base, t_end - t_start, t_end)
            except Exception as exc:  # noqa: BLE001 - the other figures still count
                print(f"# graph of the run's window failed: {type(exc).__name__}: {exc}", flush=True)
                run.in_graph = float("nan")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
                run.stop_s = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                run.stop_s = float("inf")
            # requests that completed between the two counter reads, as `sent` counts them
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


def accounted(run: Run) -> bool:
    """Every request accounted for: the generator kept up (>= 90 % of offered), and the access logs (>= 98 %)
    and the graph (within 5 %) hold what it completed."""
    return (run.sent > 0 and run.sent >= 0.9 * run.rate * run.seconds and run.stored >= 0.98 * run.sent
            and abs(run.in_graph - run.sent) <= 0.05 * run.sent)


def report_run(run: Run, tag: str | None = None) -> None:
    tag = f"{tag + ' ' if tag else ''}load {run.rate:g}rps"
    report(f"{tag} machine load average", run.load_start, f"(at end {run.load_end:.1f})")
    if run.idle_seconds:
        report(f"{tag} idle meshscope cpu", 100 * run.idle_cpu_self, f"% of one core (no page open, nothing changing, "
               f"{run.idle_seconds:.0f} s)")
        report(f"{tag} idle meshscope cpu vs envoys", 100 * run.idle_cpu_self, "%", ("envoys", 100 * run.idle_cpu_envoy))
        for name, share in sorted(run.idle_children.items(), key=lambda kv: -kv[1]):
            report(f"{tag} idle child process {name}", 100 * share, "% of one core (beside meshscope and the envoys)")
        for part, share in sorted(run.idle_parts.items(), key=lambda kv: -kv[1]):
            if part.startswith("count "):
                report(f"{tag} idle {part[6:]}", share * run.idle_seconds, f"in {run.idle_seconds:.0f} s")
                continue
            report(f"{tag} idle cpu {part}", 100 * share, f"% of one core (thread CPU; load {run.idle_load[0]:.1f}"
                   f"-{run.idle_load[1]:.1f})")
    report(f"{tag} meshscope cpu", 100 * run.cpu_self, "% of one core (pages polled, scenarios cycled)")
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
    seconds = run.seconds or 1.0
    report(f"{tag} requests completed", run.sent / seconds, "rps", ("offered", run.rate))
    report(f"{tag} requests stored", run.stored, f"of {run.sent} completed (skipped by generator {run.skipped})")
    report(f"{tag} requests in the graph", run.in_graph, f"of {run.sent} completed")
    report(f"{tag} sigterm exit", run.stop_s, "s")


def main() -> None:
    rates = [float(r) for r in os.environ.get("BENCH_LOAD_RATES", "5,20,50,200").split(",") if r.strip()]
    seconds = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
    warmup = float(os.environ.get("BENCH_LOAD_WARMUP", "15"))
    idle = float(os.environ.get("BENCH_LOAD_IDLE_SECONDS", "60"))
    sustained = 0.0
    for rate in rates:
        try:
            run = measure(rate, seconds, warmup, idle)
        except Exception as exc:  # one rate failing must not hide the others
            print(f"# load {rate:g} rps failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        report_run(run)
        if accounted(run):
            sustained = max(sustained, rate)
    report("load highest rate sustained, every request accounted for", sustained, "rps")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one bounded load run at one offered rate (issue #18's API p99 run)")
    parser.add_argument("--rate", type=float, default=None, help="offered requests/s (default: every BENCH_LOAD_RATES)")
    parser.add_argument("--minutes", type=float, default=3.0, help="measured minutes (the issue's full run: 10)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds after ready before measuring")
    parser.add_argument("--idle", type=float, default=0.0,
                        help="seconds measured first with nothing polling and nothing changing (the idle CPU share)")
    parser.add_argument("--tag", default=None, help="prefix of the printed figures (e.g. base / new)")
    args = parser.parse_args()
    if args.rate is None:
        main()
    else:
        report_run(measure(args.rate, 60 * args.minutes, args.warmup, args.idle), args.tag)
