"""Child processes that cannot outlive meshscope.

Each child gets its own process group (so a terminal's Ctrl-C reaches only us and
we stop children in order) and `PR_SET_PDEATHSIG` (so if meshscope is killed
with SIGKILL the kernel still terminates them). PDEATHSIG fires when the *thread*
that forked exits, which is why the supervisor forks from one long-lived thread.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    os.setpgrp()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:  # not Linux/glibc: the atexit and signal handlers still stop children
        pass


@dataclass
class ProcessSpec:
    """How to (re)start one child."""

    name: str
    argv: list[str]
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    restart: bool = True


def spawn(spec: ProcessSpec) -> subprocess.Popen:
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    log = open(spec.log_file, "ab")
    try:
        return subprocess.Popen(spec.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **spec.env}, cwd=spec.cwd, preexec_fn=_child_setup,
                                close_fds=True)
    finally:
        log.close()


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the child's process group (it may have children of its own)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the child's group, then SIGKILL if it lingers; always reaps it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout)
