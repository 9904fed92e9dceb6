"""One computation shared by concurrent callers of a key (the trace list's, the snapshot and live graphs', the
findings layouts', the pages' own).

Why: two requests for the same expensive answer (a page and the API in one refresh, a page opened while the
server is still preparing it) must cost one computation, not two. Each caller gets a result computed from
after it arrived, so a live answer never predates its request; a caller whose answer holds for its key (a
graph of a view that has none usable, a findings layout of one state) passes `ready`, a cache check: it gets
the cached answer without a computation, or the outcome of the one already running.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dashboard.coalesced")


@dataclass
class _Run:
    """One key's computations: how many started and finished, and the last one's outcome."""

    started: int = 0
    finished: int = 0
    running: bool = False
    result: Any = None
    error: BaseException | None = None
    waiting: int = 0


class Coalesced:
    """`compute(key)` shared by concurrent callers, each getting a result computed from after it arrived.

    A caller arriving while a computation of its key runs waits for it to end and then shares the next one
    with everyone who arrived meanwhile: at most one runs per key, and none hands out data older than its
    caller (a live list must hold what arrived before the request). A failed computation's error reaches
    every caller sharing it; the next caller computes again.
    """

    def __init__(self, keep: int = 8):
        self._lock = threading.Lock()  # entered directly: a cache hit costs what a plain lock costs
        self._cond = threading.Condition(self._lock)
        self._runs: OrderedDict[Any, _Run] = OrderedDict()
        self._keep = keep
        self.computations = 0  # for tests and self-checks

    def get(self, key: Any, compute: Callable[[], Any], ready: Callable[[], Any] | None = None) -> Any:
        """`compute()`'s result, shared. `ready()`, when given, is called under this object's lock (so it must
        only look, never block): a non-None answer is returned at once; else the caller takes the outcome of
        the computation of `key` already running, if one is (its answer holds for the key, however early it
        began), or computes."""
        with self._lock:
            if ready is not None and (got := ready()) is not None:
                return got
            run = self._run(key)
            # the computation this caller takes: the running one when any will do, else the next to start
            want = run.started if ready is not None and run.running else run.started + 1
            run.waiting += 1
            try:
                while run.finished < want and (run.running or run.started >= want):
                    self._cond.wait()
                mine = run.finished < want
                if mine:
                    run.started, run.running = want, True
            finally:
                run.waiting -= 1
            if not mine:
                result, error = run.result, run.error
                if not run.waiting:  # only callers waiting now use a result: none holds it longer
                    run.result = run.error = None
                if error is not None:
                    raise error
                return result
        result, error = self._compute(key, run, want, compute)
        if error is not None:
            raise error
        return result

    def start(self, key: Any, compute: Callable[[], Any], name: str = "coalesced") -> bool:
        """Run `compute()` for `key` on a thread of its own unless one of `key` runs already (a refresh off the
        request path: `get` callers with `ready` arriving meanwhile take its outcome). False if one ran. `name`
        names the thread (the per-thread CPU metrics group by it)."""
        with self._lock:
            run = self._run(key)
            if run.running:
                return False
            want = run.started + 1
            run.started, run.running = want, True
        threading.Thread(target=self._in_background, args=(key, run, want, compute), daemon=True, name=name).start()
        return True

    def _in_background(self, key: Any, run: _Run, want: int, compute: Callable[[], Any]) -> None:
        _, error = self._compute(key, run, want, compute)
        if error is not None:  # its waiters got it; the next request computes again
            log.debug("background computation of %r failed: %s", key, error)

    def waiting(self, key: Any) -> int:
        """How many callers wait on `key`'s computation now (for tests and self-checks)."""
        with self._lock:
            run = self._runs.get(key)
            return run.waiting if run is not None else 0

    def _run(self, key: Any) -> _Run:
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run()
        return run

    def _compute(self, key: Any, run: _Run, want: int, compute: Callable[[], Any]) -> tuple[Any, BaseException | None]:
        """Run the computation `run` claimed as its `want`th and hand its outcome to the callers waiting on it."""
        try:
            result, error = compute(), None
        except BaseException as exc:  # handed to every caller sharing this computation
            result, error = None, exc
        with self._lock:
            run.finished, run.running = want, False
            run.result, run.error = (result, error) if run.waiting else (None, None)
            self.computations += 1
            self._runs.move_to_end(key)
            if len(self._runs) > self._keep:  # old keys (past windows) that nobody waits on
                idle = [k for k, r in self._runs.items() if not (r.running or r.waiting) and k != key]
                for old in idle[:len(self._runs) - self._keep]:
                    self._runs.pop(old)
            if run.waiting:  # only this key's callers wait on its computation
                self._cond.notify_all()
        return result, error
