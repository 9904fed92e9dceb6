"""`meshscope.latest.Latest`: the latest value of a costly read at once, one refresh per key, a cold key computed once
(issue #18: the trace summary took 2-4.5 s on the request at 20 rps)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from meshscope.latest import Latest
from tests.util import wait_until


class Held:
    """A computation that returns its call number, and waits while `gate` is closed (after the first `free` calls)."""

    def __init__(self, free: int = 1):
        self.free, self.calls, self.running, self.most = free, 0, 0, 0
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
            n = self.calls
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if n > self.free:
                assert self.gate.wait(30), "never released"
            return n
        finally:
            with self._lock:
                self.running -= 1


def test_a_due_key_answers_at_once_with_its_latest_value_and_refreshes_once():
    clock = [1000.0]
    cache: Latest[int] = Latest(fresh_s=1.0, idle_s=15.0, stand_in_s=60.0, clock=lambda: clock[0])
    compute = Held()
    assert cache.get("k", compute).value == 1
    assert cache.get("k", compute).value == 1 and compute.calls == 1  # fresh: reused
    clock[0] += 5
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(lambda _: cache.get("k", compute), range(12)))
    assert {(g.value, g.at) for g in got} == {(1, 1000.0)}  # the latest value, saying when it is from
    wait_until(lambda: compute.running == 1, timeout=10, what="the refresh")
    assert compute.calls == 2 and compute.most == 1  # one refresh for twelve readers
    compute.gate.set()
    wait_until(lambda: cache.get("k", compute).value == 2, timeout=10, what="the refreshed value")
    assert cache.get("k", compute).at == 1005.0


def test_an_unchanged_version_keeps_a_value_longer_and_a_new_one_makes_it_due():
    clock = [0.0]
    cache: Latest[int] = Latest(fresh_s=1.0, idle_s=15.0, clock=lambda: clock[0])
    compute = Held(free=10)
    cache.get("k", compute, version=7)
    clock[0] += 10
    assert cache.get("k", compute, version=7).value == 1 and compute.calls == 1  # inputs unchanged: no work
    assert cache.get("k", compute, version=8).value == 1  # due: answered at once, refreshed behind
    wait_until(lambda: cache.get("k", compute, version=8).value == 2, timeout=10, what="refresh on a new version")


def test_a_cold_or_too_old_key_is_computed_once_for_every_concurrent_caller():
    clock = [0.0]
    cache: Latest[int] = Latest(stand_in_s=60.0, clock=lambda: clock[0])
    compute = Held(free=0)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(cache.get, "k", compute) for _ in range(6)]
        wait_until(lambda: compute.running == 1, timeout=10, what="the cold computation")
        compute.gate.set()
        assert {f.result(timeout=10).value for f in futures} == {1}
    assert compute.calls == 1
    clock[0] += 61  # older than the stand-in bound: not served, computed on the request
    assert cache.get("k", compute).value == 2


def test_a_failing_cold_computation_raises_to_its_callers_and_a_failing_refresh_keeps_the_value():
    clock = [0.0]
    cache: Latest[int] = Latest(clock=lambda: clock[0])

    def broken() -> int:
        raise RuntimeError("store closed")

    with pytest.raises(RuntimeError, match="store closed"):
        cache.get("k", broken)
    assert cache.get("k", lambda: 5).value == 5
    clock[0] += 5
    assert cache.get("k", broken).value == 5  # the refresh fails in the background; the last value stands
    wait_until(lambda: not cache._running, timeout=10, what="the failed refresh to end")
    assert cache.get("k", lambda: 6).value == 5  # answered at once again, and refreshed behind
    wait_until(lambda: cache.get("k", lambda: 6).value == 6, timeout=10, what="a later refresh")


def test_a_value_that_may_not_stand_in_is_recomputed_on_the_request():
    clock = [0.0]
    cache: Latest[list] = Latest(clock=lambda: clock[0], stand_in=lambda v: bool(v))
    assert cache.get("k", list).value == []
    clock[0] += 5
    assert cache.get("k", lambda: [1]).value == [1]  # the empty value is not served while due
    clock[0] += 5
    assert cache.get("k", lambda: [2]).value == [1]  # a value that may stand in is
