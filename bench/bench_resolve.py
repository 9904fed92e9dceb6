"""Time to resolve: how long a finding stays open after its fault is cleared, when the same fault comes and goes.

Why: late in a long-lived mesh (a test suite, an SRE trying a fix twice) the same fault is applied and cleared
many times; each clear must close its finding as fast as the first one did, or the page says an incident is
still open minutes after it ended. This runs `meshscope up`'s stack in-process (bundled mesh, scrapes and
access logs every second, diagnoser every `--interval` s, UI on: the test suite's settings), then applies and
clears one scenario `--reps` times in a row and, per repetition, prints:
- open: seconds from the apply to the scenario's finding being open on its edge;
- resolved: seconds from the clear to that finding being resolved, split into the window's hold (the clear to
  the last cycle that still saw the fault in its window) and the quiet cycles after it (how many, their spacing,
  the damping state: reopenings counted within the flap window and whether the finding was marked flapping);
- each cycle after the clear as a log line with --verbose.
`bench resolve_repN: S s (Rx vs resolve_rep1)` is the figure; the first repetition is the baseline of the same
run (an undamped resolution). First, `bench tracker_save_N` (no mesh, a second): the CPU of a cycle that changes
a finding's state with N findings tracked (`--reps 0` runs only that). Knobs: BENCH_RESOLVE_REPS (5), BENCH_RESOLVE_SCENARIO (fault-abort),
BENCH_RESOLVE_HOLD (8 s the fault stays applied once open). Bounded: start 180 s, each wait 300 s.
For a before/after, run the same file from a `git worktree` of the old code (cd there: its packages are imported).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import report

WAIT_S = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cycle:
    """One diagnoser cycle as the scenario's finding saw it."""

    at: float  # wall clock when the cycle's findings were handed over
    status: str | None  # the finding's status after the cycle (None: not tracked)
    seen: bool  # the cycle's window still held the fault's requests
    count: object = None  # the finding's evidence count (requests hurt in the window) when seen
    missing: int = 0
    reopenings: int = 0
    flapping: bool = False
    seconds: float = 0.0  # the evaluation's own wall time


@dataclass
class Watch:
    """Records every cycle for the findings of `codes` on edge `dest` (a diagnoser subscriber)."""

    tracker: object
    codes: tuple[str, ...]
    dest: str
    last_evaluation: dict
    cycles: list[Cycle] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, findings: list, now: float) -> None:
        with self.tracker.lock:  # type: ignore[attr-defined]
            tracks = [t for t in self.tracker.tracks.values()  # type: ignore[attr-defined]
                      if t.finding.code in self.codes and (t.finding.evidence or {}).get("edge_key") == self.dest]
            ours = max(tracks, key=lambda t: t.finding.last_seen or 0, default=None)
            if ours is None:
                c = Cycle(time.time(), None, False, seconds=self.last_evaluation.get("seconds", 0.0))
            else:
                f = ours.finding
                c = Cycle(time.time(), ours.status, f.last_seen == now, (f.evidence or {}).get("count"),
                          ours.missing_streak, len(ours.reopenings), bool((f.evidence or {}).get("flapping")),
                          self.last_evaluation.get("seconds", 0.0))
        with self.lock:
            self.cycles.append(c)

    def since(self, t: float) -> list[Cycle]:
        with self.lock:
            return [c for c in self.cycles if c.at >= t]

    def is_open(self) -> bool:
        with self.lock:
            return bool(self.cycles) and self.cycles[-1].status == "open"


def _wait(pred, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - t0


def run(reps: int, scenario: str, hold: float, interval: float, verbose: bool) -> list[float]:
    from mesh.bundled import BundledConfig
    from mesh.scenarios import get
    from meshscope.app import DEMO_SLOS, BundledBackend, Stack, StackOptions

    sc = get(scenario)
    dest, codes = sc.edge[1], tuple(sc.expected_codes)
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        cfg = BundledConfig(gateway_port=_free_port(), control_port=None, data_dir=Path(tmp) / "mesh",
                            traffic_rate=10.0, ready_timeout=180.0)
        options = StackOptions(port=_free_port(), otlp_port=0, data_dir=Path(tmp), diagnose_interval=interval,
                               refresh_s=2.0, slo_paths=[DEMO_SLOS])
        stack = Stack(BundledBackend(config=cfg, scrape_interval=1.0), options).start()
        try:
            mesh, diag = stack.backend.mesh, stack.diagnoser
            watch = Watch(diag.tracker, codes, dest, diag.last_evaluation)
            diag.subscribe(watch)
            _wait(lambda: len(watch.cycles) >= 3 and not watch.is_open(), WAIT_S, "healthy start")
            print(f"# {scenario} on {dest} ({', '.join(codes)}), {reps} repetitions, hold {hold:.0f} s, "
                  f"diagnoser every {interval:g} s; load {os.getloadavg()[0]:.1f}", flush=True)
            results = []
            for rep in range(1, reps + 1):
                t_apply = time.time()
                mesh.apply_scenario(scenario)
                opened = _wait(watch.is_open, WAIT_S, f"open {codes} finding on {dest}")
                time.sleep(hold)  # the fault stays a while, as an incident does (a bench, not a test: no assertion waits)
                t_clear = time.time()
                mesh.clear_scenario()
                _wait(lambda: not watch.is_open() and any(c.at > t_clear for c in watch.cycles), WAIT_S,
                      f"resolved {codes} finding on {dest}")
                t_done = time.time()
                after = watch.since(t_clear)
                seen = [c for c in after if c.seen]
                t_last = seen[-1].at if seen else t_clear
                quiet = [c for c in after if c.at > t_last]
                gaps = [b.at - a.at for a, b in zip(after, after[1:])]
                last = after[-1] if after else Cycle(t_done, None, False)
                took = t_done - t_clear
                results.append(took)
                print(f"rep {rep}: open {opened:.1f} s after apply ({t_clear - t_apply:.0f} s applied); resolved "
                      f"{took:.1f} s after clear = {t_last - t_clear:.1f} s until the window was clean + "
                      f"{t_done - t_last:.1f} s over {len(quiet)} quiet cycles (reopenings counted {last.reopenings}, "
                      f"flapping {last.flapping}; cycle gap mean {sum(gaps) / max(1, len(gaps)):.1f} s max "
                      f"{max(gaps, default=0):.1f} s, evaluation max {max((c.seconds for c in after), default=0):.2f} s); "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                if verbose:
                    for c in after:
                        print(f"    +{c.at - t_clear:6.1f} s {c.status or '-':8} seen={c.seen!s:5} count={c.count} "
                              f"missing={c.missing} reopenings={c.reopenings} eval={c.seconds:.2f} s", flush=True)
                report(f"resolve_rep{rep}", took, "s", ("resolve_rep1", results[0]) if rep > 1 else None)
                _wait(lambda: not watch.is_open(), WAIT_S, "quiet edge")
            report("resolve_max", max(results), "s", ("resolve_rep1", results[0]))
            return results
        finally:
            stack.stop()


def save_cost(sizes: tuple[int, ...] = (10, 300, 1000), cycles: int = 20) -> None:
    """CPU of one tracker update that changes a state (so the state file is written) with N findings tracked:
    resolved findings stay tracked for the retention (24 h in `meshscope up`), so late in a busy day
    hundreds are; a save must not re-serialise them all every cycle (it did, and the cycle waited for it)."""
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef
    from diagnose.live.tracker import FindingTracker

    def finding(i: int):
        f = make("MS3010", resource=ResourceRef("VirtualService", f"vs{i}", "bookinfo", path="spec/http[0]/fault"),
                 source="productpage-v1", destination=f"svc{i}.bookinfo.svc.cluster.local", count=5, total=10)
        f.evidence = {"edge_key": f"svc{i}.bookinfo.svc.cluster.local",
                      "edges": [{"source": "productpage-v1", "destination": f"svc{i}", "count": 5}] * 3}
        return f

    first = None
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-resolve-save-") as tmp:
            tr = FindingTracker(resolve_after=3, state_path=Path(tmp) / "findings-state.json")
            t = 1000.0
            tr.update([finding(i) for i in range(n)], t)
            for _ in range(5):  # all resolved, kept for the retention
                t += 1
                tr.update([], t)
            c0 = time.process_time()
            for k in range(cycles):  # one finding comes and goes: its state changes every cycle
                t += 1
                tr.update([finding(0)] if k % 4 < 2 else [], t)
            ms = (time.process_time() - c0) / cycles * 1e3
        report(f"tracker_save_{n}", ms, "ms CPU per state change", (f"tracker_save_{sizes[0]}", first) if first else None)
        first = first or ms
    print(f"# load {os.getloadavg()[0]:.1f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_RESOLVE_REPS", "5")))
    ap.add_argument("--scenario", default=os.environ.get("BENCH_RESOLVE_SCENARIO", "fault-abort"))
    ap.add_argument("--hold", type=float, default=float(os.environ.get("BENCH_RESOLVE_HOLD", "8")))
    ap.add_argument("--interval", type=float, default=1.0, help="the diagnoser's interval (the test stack's: 1 s)")
    ap.add_argument("--verbose", action="store_true", help="one line per cycle after each clear")
    a = ap.parse_args(argv if argv is not None else [])
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops the mesh too (finally runs)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    save_cost()
    if a.reps > 0:
        run(a.reps, a.scenario, a.hold, a.interval, a.verbose)


if __name__ == "__main__":
    main(sys.argv[1:])
