"""Size- and age-based rotation of the sidecars' access logs, the way logrotate does it for Envoy.

Why rename + reopen (not copytruncate): Envoy keeps its access-log file open; renaming it away
and then asking Envoy to reopen its logs (`POST /reopen_logs` on the admin API, what SIGUSR1 /
logrotate's `postrotate` do) loses nothing and copies nothing. Envoy writes to the renamed file
until its flush thread handles the reopen, and only then creates the new file; so when a tailer
sees the new file appear, the old one is already complete (the collector's tailer drains the old
inode it holds open before switching, and finds a rotated file by inode after a restart).

Disk budget per log: at most `max_bytes` in the live file plus `keep` rotated generations of
about `max_bytes` each (a little more: what is written between two checks), so
(keep + 1) * max_bytes, plus the overshoot of one `interval_s` at the log's write rate. Rotated
generations past `keep` are deleted, oldest first.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationPolicy:
    """When a log is rotated and how many old generations stay on disk."""

    max_bytes: int = 8 * 2**20  # rotate when the live file reaches this size ...
    max_age_s: float = 6 * 3600.0  # ... or when its oldest line is this old (and it is not empty)
    keep: int = 2  # rotated generations kept: <log>.1 (newest) .. <log>.<keep>
    interval_s: float = 5.0  # how often sizes are checked

    def budget_bytes(self) -> int:
        """Disk held by one log at most (not counting the overshoot of one check interval)."""
        return (self.keep + 1) * self.max_bytes


@dataclass
class RotatedLog:
    """One log file and how to make its writer reopen it (returns the admin API's status)."""

    path: Path
    reopen: Callable[[], tuple[int, str]]


class LogRotator:
    """Checks `logs()` every `policy.interval_s` and rotates those past their size or age."""

    def __init__(self, logs: Callable[[], Iterable[RotatedLog]], policy: RotationPolicy = RotationPolicy(),
                 clock: Callable[[], float] = time.time) -> None:
        self._logs = logs
        self.policy = policy
        self._clock = clock
        self._born: dict[Path, float] = {}  # when the live file's generation started (first seen non-empty)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rotations = 0
        self.failures = 0

    def start(self) -> LogRotator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mesh-log-rotation", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.policy.interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - rotation must never take the mesh down
                log.exception("access log rotation failed")

    def check(self) -> int:
        """Rotate every log that is due; returns how many were rotated."""
        done = 0
        now = self._clock()
        for entry in list(self._logs()):
            path = Path(entry.path)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # rotated and not written since: Envoy creates it again on its next line
            if size == 0:
                self._born.pop(path, None)
                continue
            born = self._born.setdefault(path, now)
            if size >= self.policy.max_bytes or now - born >= self.policy.max_age_s:
                if self.rotate(entry):
                    done += 1
        return done

    def rotate(self, entry: RotatedLog) -> bool:
        """Shift the generations (<log>.k -> .k+1, dropping past `keep`), rename the live file to
        <log>.1 and ask the writer to reopen. True when the writer confirmed the reopen."""
        path = Path(entry.path)
        keep = max(1, self.policy.keep)
        try:
            oldest = _generation(path, keep)
            if oldest.exists():
                oldest.unlink()
            for k in range(keep - 1, 0, -1):
                src = _generation(path, k)
                if src.exists():
                    os.replace(src, _generation(path, k + 1))
            os.replace(path, _generation(path, 1))
        except FileNotFoundError:
            return False
        self._born.pop(path, None)
        try:
            status, body = entry.reopen()
        except OSError as exc:  # the sidecar is restarting: it opens the path afresh when it starts
            status, body = 0, str(exc)
        if status != 200:
            self.failures += 1
            log.warning("access log %s rotated but the writer did not reopen it (%s %s)", path, status, body[:200])
            return False
        self.rotations += 1
        return True


def _generation(path: Path, k: int) -> Path:
    return path.with_name(f"{path.name}.{k}")
