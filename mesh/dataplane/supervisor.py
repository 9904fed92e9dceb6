"""Keeps the mesh's processes running: start, restart on crash (with backoff), stop everything.

All forks happen on the supervisor's own thread (see process.py for why). The
thread also polls for exits; a crashed process is restarted after a backoff that
doubles up to 5 s, and each restart is counted, with the time and exit code of the
crash, so /metrics, the graph and the crash-loop finding can see it.
"""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CRASH_LOG = 50  # exits remembered per child (enough to tell a crash loop from an odd crash)

from mesh.dataplane.process import ProcessSpec, signal_group, spawn, terminate


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.2
    started_at: float = 0.0
    crashes: deque = field(default_factory=lambda: deque(maxlen=CRASH_LOG))  # (wall time, exit code) per exit


class Supervisor:
    def __init__(self, on_restart: Callable[[str, int], None] | None = None):
        self._children: dict[str, _Child] = {}
        self._requests: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._on_restart = on_restart
        self._thread = threading.Thread(target=self._loop, name="mesh-supervisor", daemon=True)
        self._thread.start()

    # --- API (any thread) ---------------------------------------------------------------
    def start(self, spec: ProcessSpec) -> int:
        """Start `spec` (from the supervisor thread) and return its pid."""
        done: queue.Queue = queue.Queue()
        self._requests.put((spec, done))
        result = done.get(timeout=30)
        if isinstance(result, BaseException):
            raise result
        return result

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {n: c.proc.pid for n, c in self._children.items() if c.proc and c.proc.poll() is None}

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {n: c.restarts for n, c in self._children.items()}

    def crashes(self) -> dict[str, list[tuple[float, int | None]]]:
        """Per child, its recent unexpected exits: (epoch seconds seen, exit code; negative = killed by that signal)."""
        with self._lock:
            return {n: list(c.crashes) for n, c in self._children.items()}

    def stop_child(self, name: str, timeout: float = 5.0) -> None:
        """Stop one child for good (it is not restarted)."""
        with self._lock:
            child = self._children.pop(name, None)
        if child is not None and child.proc is not None:
            terminate(child.proc, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._requests.put(None)
        self._thread.join(timeout=10)
        with self._lock:
            procs = [c.proc for c in self._children.values() if c.proc is not None]
        for p in procs:  # signal everyone first, then reap: shutdown takes one exit time, not the sum
            signal_group(p, signal.SIGTERM)
        for p in procs:
            terminate(p, timeout)

    # --- supervisor thread --------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                req = self._requests.get(timeout=0.2)
            except queue.Empty:
                req = None
            if req is not None:
                spec, done = req
                try:
                    proc = spawn(spec)
                    with self._lock:
                        self._children[spec.name] = _Child(spec, proc, started_at=time.monotonic())
                    done.put(proc.pid)
                except BaseException as exc:  # hand the error to the caller
                    done.put(exc)
            if self._stopping.is_set():
                break
            self._check()

    def _check(self) -> None:
        now = time.monotonic()
        with self._lock:
            children = list(self._children.values())
        for c in children:
            if c.proc is None or c.proc.poll() is None or not c.spec.restart:
                continue
            if c.next_start == 0.0:
                c.crashes.append((time.time(), c.proc.returncode))
                if now - c.started_at > 30:
                    c.backoff = 0.2  # it ran fine for a while: restart quickly
                c.next_start = now + c.backoff
                c.backoff = min(c.backoff * 2, 5.0)
                continue
            if now >= c.next_start and not self._stopping.is_set():
                with self._lock:
                    if self._children.get(c.spec.name) is not c:
                        continue  # stopped for good meanwhile
                proc = spawn(c.spec)
                with self._lock:  # the new pid and its restart count become visible together
                    c.proc = proc
                    c.restarts += 1
                c.next_start = 0.0
                c.started_at = now
                if self._on_restart:
                    self._on_restart(c.spec.name, c.restarts)
