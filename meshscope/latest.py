"""The latest computed value of a costly read, answered at once while one background refresh recomputes it.

Why (issue #18): under load a computation over telemetry (the last 15 minutes of spans summarised per
trace: 2-4.5 s at 20 rps on a loaded 2-core box) must not run on a request's time, or the API stalls
exactly when someone looks. Each key keeps its latest value and the time it describes; a read within
`fresh_s` (or while the input's version is unchanged, up to `idle_s`) reuses it; an older one is
returned at once and ONE refresh of that key starts in the background; only a key with no value, or
one older than `stand_in_s`, is computed on the request, once for every concurrent caller.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Stamped(Generic[T]):
    """A computed value and the epoch second it describes."""

    value: T
    at: float
    version: Any = None


class Latest(Generic[T]):
    """Per-key latest values with stale-while-refresh and single-flight computation."""

    def __init__(self, fresh_s: float = 1.0, idle_s: float = 15.0, stand_in_s: float = 60.0,
                 clock: Callable[[], float] = time.time, name: str = "refresh",
                 stand_in: Callable[[T], bool] = lambda value: True) -> None:
        """`stand_in(value)` False: that value is never answered while due (e.g. an empty one built before any
        data arrived: recomputing it is cheap, and serving it would hide the first data for `stand_in_s`)."""
        self.fresh_s, self.idle_s, self.stand_in_s = fresh_s, idle_s, stand_in_s
        self.stand_in = stand_in
        self.clock = clock
        self.name = name
        self.computed = 0  # computations so far (tests and self-checks)
        self._lock = threading.Lock()
        self._values: dict[Hashable, Stamped[T]] = {}
        self._running: dict[Hashable, threading.Event] = {}
        self._errors: dict[Hashable, BaseException] = {}

    def get(self, key: Hashable, compute: Callable[[], T], version: Any = None) -> Stamped[T]:
        now = self.clock()
        with self._lock:
            hit = self._values.get(key)
            if hit is not None:
                age = now - hit.at
                if age < self.fresh_s or (version is not None and version == hit.version and age < self.idle_s):
                    return hit
            usable = hit is not None and now - hit.at < self.stand_in_s and self.stand_in(hit.value)
            running = self._running.get(key)
            starter = running is None
            if starter:
                running = self._running[key] = threading.Event()
        if usable:
            if starter:
                threading.Thread(target=self._refresh, args=(key, compute, version, running), daemon=True,
                                 name=self.name).start()
            return hit
        if starter:
            return self._refresh(key, compute, version, running, raise_errors=True)
        running.wait(120)
        with self._lock:
            value, error = self._values.get(key), self._errors.get(key)
        if value is not None and value is not hit:
            return value
        if error is not None:
            raise error
        return self.get(key, compute, version)

    def _refresh(self, key: Hashable, compute: Callable[[], T], version: Any, done: threading.Event,
                 raise_errors: bool = False) -> Stamped[T] | None:
        at = self.clock()
        try:
            value = Stamped(compute(), at, version)
        except BaseException as exc:
            with self._lock:
                self._errors[key] = exc
                self._running.pop(key, None)
            done.set()
            if raise_errors:
                raise
            log.debug("background refresh of %r failed: %s", key, exc)
            return None
        with self._lock:
            self.computed += 1
            self._values[key] = value
            self._errors.pop(key, None)
            self._running.pop(key, None)
        done.set()
        return value
