"""One computation shared by concurrent callers of a key (the trace list's, the snapshot graphs', the pages' own).

Why: two requests for the same expensive answer (a page and the API in one refresh, a page opened while the
server is still preparing it) must cost one computation, not two. Each caller gets a result computed from
after it arrived, so a live answer never predates its request; a caller whose compute function first looks
in a cache (what data that never changes does) gets the cached answer without a second computation.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    caller (a live list must hold what arrived before the request).
    """

    def __init__(self, keep: int = 8):
        self._cond = threading.Condition()
        self._runs: OrderedDict[Any, _Run] = OrderedDict()
        self._keep = keep
        self.computations = 0  # for tests and self-checks

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._cond:
            run = self._runs.get(key)
            if run is None:
                run = self._runs[key] = _Run()
            want = run.started + 1  # the first computation to start after this call arrived
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
        try:
            result, error = compute(), None
        except BaseException as exc:  # handed to every caller sharing this computation
            result, error = None, exc
        with self._cond:
            run.finished, run.running = want, False
            run.result, run.error = (result, error) if run.waiting else (None, None)
            self.computations += 1
            self._runs.move_to_end(key)
            while len(self._runs) > self._keep:  # old keys (past windows) that nobody waits on
                old = next(iter(self._runs))
                if self._runs[old].running or self._runs[old].waiting or old == key:
                    break
                self._runs.pop(old)
            self._cond.notify_all()
        if error is not None:
            raise error
        return result
