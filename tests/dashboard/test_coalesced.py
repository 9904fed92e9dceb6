"""dashboard.coalesced: one computation per key for concurrent callers, with and without a cache check (`ready`).

Threads and events only: a computation is held on an event, callers are known to wait by `Coalesced.waiting`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from dashboard.coalesced import Coalesced
from tests.util import wait_until


class _Held:
    """A compute function whose runs are numbered (from 1) and each held until the test releases it."""

    def __init__(self, fail: Exception | None = None):
        self.runs = 0
        self.entered = threading.Event()  # the first run began
        self._gates: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.fail = fail

    def _gate(self, n: int) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(n, threading.Event())

    def release(self, *runs: int) -> None:
        for n in runs:
            self._gate(n).set()

    def __call__(self) -> int:
        with self._lock:
            self.runs += 1
            n = self.runs
        self.entered.set()
        assert self._gate(n).wait(30), f"the test never released run {n}"
        if self.fail is not None:
            raise self.fail
        return n


def _call(results: dict, name: str, fn: Callable[[], Any]) -> threading.Thread:
    def run():
        try:
            results[name] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each caller got
            results[name] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a caller hangs"


@pytest.mark.parametrize("callers", [1, 2, 8])
@pytest.mark.parametrize("with_ready", [False, True])
def test_callers_arriving_during_a_computation_share_one(callers, with_ready):
    """Without `ready` they share the computation after the running one (theirs starts after they arrived); with
    it they take the running one's result. Either way one computation serves all of them."""
    shared, compute, results = Coalesced(), _Held(), {}
    ready = (lambda: None) if with_ready else None
    first = _call(results, "first", lambda: shared.get("k", compute))
    assert compute.entered.wait(30)
    late = [_call(results, f"c{i}", lambda: shared.get("k", compute, ready)) for i in range(callers)]
    wait_until(lambda: shared.waiting("k") == callers, what=f"{callers} callers waiting")
    compute.release(1, 2)
    _join([first, *late])
    expected = 1 if with_ready else 2
    assert results == {"first": 1, **{f"c{i}": expected for i in range(callers)}}
    assert shared.computations == compute.runs == expected
    assert shared.waiting("k") == 0


def test_a_caller_arriving_after_a_computation_ended_gets_a_fresh_one():
    shared = Coalesced()
    count = iter(range(1, 100))
    assert [shared.get("k", lambda: next(count)) for _ in range(3)] == [1, 2, 3]
    assert shared.get("other", lambda: next(count)) == 4  # keys do not share


@pytest.mark.parametrize("with_ready", [False, True])
def test_an_error_reaches_every_waiter_and_the_next_caller_computes_again(with_ready):
    shared, results = Coalesced(), {}
    compute = _Held(fail=ValueError("store closed"))
    ready = (lambda: None) if with_ready else None
    first = _call(results, "first", lambda: shared.get("k", compute))
    assert compute.entered.wait(30)
    late = [_call(results, f"c{i}", lambda: shared.get("k", compute, ready)) for i in range(4)]
    wait_until(lambda: shared.waiting("k") == 4, what="4 callers waiting")
    compute.release(1, 2)  # without `ready` the callers share the second run, which fails as well
    _join([first, *late])
    assert all(isinstance(r, ValueError) and str(r) == "store closed" for r in results.values()), results
    assert compute.runs == (1 if with_ready else 2)
    assert shared.get("k", lambda: "recovered", ready) == "recovered"


def test_the_cache_answers_without_a_computation_and_a_miss_computes_once():
    shared, cache = Coalesced(), {}

    def compute():
        cache["k"] = "built"
        return "built"

    ready = lambda: cache.get("k")  # noqa: E731
    assert shared.get("k", compute, ready) == "built"
    assert [shared.get("k", compute, ready) for _ in range(5)] == ["built"] * 5
    assert shared.computations == 1


def test_a_background_start_runs_once_and_callers_with_ready_take_its_result():
    shared, compute, results = Coalesced(), _Held(), {}
    assert shared.start("k", compute, name="refresh")
    assert compute.entered.wait(30)
    assert not shared.start("k", compute)  # one at a time per key
    waiters = [_call(results, f"c{i}", lambda: shared.get("k", compute, lambda: None)) for i in range(3)]
    live = _call(results, "live", lambda: shared.get("k", compute))  # no `ready`: wants one started after it
    wait_until(lambda: shared.waiting("k") == 4, what="4 callers waiting")
    compute.release(1)  # run 2 (the live caller's) is held: the others must have taken run 1's result
    _join(waiters)
    assert results == {"c0": 1, "c1": 1, "c2": 1}
    wait_until(lambda: compute.runs == 2, what="the live caller's own run")
    compute.release(2)
    _join([live])
    assert results["live"] == 2
    assert compute.runs == shared.computations == 2
    assert shared.start("k", lambda: None)  # free again once it ended
    wait_until(lambda: shared.computations == 3, what="the second background run")


def test_a_failed_background_start_fails_its_waiters_only():
    shared, results = Coalesced(), {}
    compute = _Held(fail=RuntimeError("backend down"))
    assert shared.start("k", compute)
    assert compute.entered.wait(30)
    waiter = _call(results, "w", lambda: shared.get("k", compute, lambda: None))
    wait_until(lambda: shared.waiting("k") == 1, what="a caller waiting")
    compute.release(1)
    _join([waiter])
    assert isinstance(results["w"], RuntimeError)
    assert shared.get("k", lambda: "ok", lambda: None) == "ok"


def test_idle_keys_beyond_keep_are_forgotten_but_a_waited_on_key_is_not():
    shared, compute, results = Coalesced(keep=2), _Held(), {}
    held = _call(results, "held", lambda: shared.get("held", compute))
    assert compute.entered.wait(30)
    waiter = _call(results, "w", lambda: shared.get("held", compute, lambda: None))
    wait_until(lambda: shared.waiting("held") == 1, what="a caller waiting")
    for i in range(10):
        assert shared.get(i, lambda i=i: i) == i
    assert len(shared._runs) <= 3 and "held" in shared._runs
    compute.release(1)
    _join([held, waiter])
    assert results == {"held": 1, "w": 1}
