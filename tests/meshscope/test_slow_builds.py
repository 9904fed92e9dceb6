"""Requests read the latest computed graph and never wait for a build once a view has one (#18).

A backend whose rate query blocks until the test releases it stands for a build that takes as long as the
machine makes it take (graph p99 ~9.5 s at load ~100 when a request waited for it): while it is held,
every request for the view must answer at once with the previous graph, saying when it is from, and only
one refresh of the view may run. Only a view with no usable graph is computed on the request's time.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest

from dashboard.server import start
from meshscope import live_source
from tests.meshscope.pinned import PinnedSource
from tests.meshscope.test_element_metrics import WINDOW, RecordedBackend, recorded_frame
from tests.util import wait_until


class HeldBackend(RecordedBackend):
    """Rate queries wait while `hold` is set (after the first `free` calls); counts the queries running at once."""

    def __init__(self, frame, free: int = 1):
        super().__init__(frame)
        self.free = free
        self.released = threading.Event()
        self.running = self.most_running = self.started = 0
        self._count = threading.Lock()

    def rates(self, window_s, end=None):
        with self._count:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.started += 1
            held = self.started > self.free
        try:
            if held:
                assert self.released.wait(60), "the test never released the held build"
            return super().rates(window_s, end)
        finally:
            with self._count:
                self.running -= 1


def _source(backend) -> PinnedSource:
    return PinnedSource(SimpleNamespace(backend=backend), at=1_800_000_000.0)


def test_a_held_build_never_delays_a_request_once_the_view_has_a_graph():
    backend = HeldBackend(recorded_frame())
    src = _source(backend)
    first = src.graph("workload", None, WINDOW)  # the cold view: computed once, on the request
    src.at += 30  # past every freshness allowance: the view is due for a refresh
    with ThreadPoolExecutor(16) as pool:  # 16 requests while the refresh is held: each answers at once
        answers = list(pool.map(lambda _: src.graph("workload", None, WINDOW), range(16)))
    assert {a.updated_at for a in answers} == {first.updated_at}  # the previous graph, saying when it is from
    wait_until(lambda: backend.running == 1, timeout=10, what="the one background refresh to start")
    assert backend.most_running == 1 and backend.started == 2  # one refresh of the view, not one per request
    backend.released.set()
    wait_until(lambda: src.graph("workload", None, WINDOW).updated_at == src.at, timeout=30, what="the refreshed graph")
    assert src.graph_builds == 2 and backend.most_running == 1


def test_a_graph_older_than_the_stand_in_bound_is_not_served():
    src = _source(RecordedBackend(recorded_frame()))
    src.graph("workload", None, WINDOW)
    (built,) = src._graphs.values()
    built.seconds = 0.5
    src.at += live_source._STALE_S + 1  # a view nobody read for over a minute: computed, not a minute-old answer
    assert src.graph("workload", None, WINDOW).updated_at == src.at and src.graph_builds == 2
    (built,) = src._graphs.values()
    built.seconds = 100.0  # a starved machine: a build takes longer than the bound ...
    src.at += 150  # ... so a graph up to two builds old stands in rather than making the request wait for a third
    assert src.graph("workload", None, WINDOW).updated_at == src.at - 150
    wait_until(lambda: src.graph_builds == 3, timeout=30, what="the background refresh")


def test_applying_a_scenario_makes_every_view_due_without_making_a_request_wait():
    backend = HeldBackend(recorded_frame())
    applied = []
    src = PinnedSource(SimpleNamespace(backend=backend), at=1_800_000_000.0)
    src.backend.mesh = SimpleNamespace(apply_scenario=applied.append, clear_scenario=lambda: applied.append(None))
    old = src.graph("workload", None, WINDOW)
    assert src.graph("workload", None, WINDOW) is old  # fresh: no refresh
    src.apply_scenario("fault-abort")
    assert applied == ["fault-abort"]
    assert src.graph("workload", None, WINDOW) is old  # answered at once, from before the change (its time says so)
    wait_until(lambda: backend.running == 1, timeout=10, what="a refresh under the new config")
    backend.released.set()
    wait_until(lambda: src.graph("workload", None, WINDOW) is not old, timeout=30, what="the graph of the new config")


def test_a_cold_view_is_computed_once_for_every_concurrent_caller():
    backend = HeldBackend(recorded_frame(), free=0)
    src = _source(backend)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(src.graph, "app", None, WINDOW) for _ in range(8)]
        wait_until(lambda: backend.running == 1, timeout=10, what="the one cold build")
        backend.released.set()
        results = [f.result(timeout=30) for f in futures]
    assert len({id(r) for r in results}) == 1 and src.graph_builds == 1 and backend.most_running == 1


@pytest.fixture
def held_api():
    """The API over a live source whose refreshes the test holds, on a real HTTP server."""
    backend = HeldBackend(recorded_frame())
    src = _source(backend)
    diagnoser = SimpleNamespace(last_evaluation={"time": src.at - 4.0}, findings=lambda filters=None: [],
                                slo_status=lambda now=None: [])
    src.stack.diagnoser = diagnoser
    ui = start(src, port=0)
    try:
        with httpx.Client(base_url=ui.url, timeout=10) as client:
            yield src, backend, client
    finally:
        backend.released.set()
        ui.stop()


def test_every_live_answer_says_how_old_it_is(held_api):
    src, backend, api = held_api
    first = api.get("/api/v1/graph", params={"window": WINDOW})
    assert first.status_code == 200 and first.json()["age_s"] == 0.0 and first.headers["Age"] == "0"
    src.at += 42  # the next read is answered from that graph, while its refresh is held
    t0 = time.monotonic()
    stale = api.get("/api/v1/graph", params={"window": WINDOW})
    assert time.monotonic() - t0 < 5  # not the held build's time (60 s)
    body = stale.json()
    assert body["updated_at"] == first.json()["updated_at"] and body["age_s"] == pytest.approx(42.0)
    assert stale.headers["Age"] == "42" and float(stale.headers["X-Meshscope-As-Of"]) == body["updated_at"]
    for route in ("/api/v1/findings", "/api/v1/slos"):  # the diagnoser's latest cycle, as of its own time
        r = api.get(route)
        assert r.status_code == 200 and float(r.headers["X-Meshscope-As-Of"]) == src.at - 42 - 4.0
        assert r.headers["Age"] == "46"


def test_a_graph_of_no_traffic_never_stands_in():
    """The views warmed at start are built before the first scrapes: answering with them for a minute would hide
    the mesh's first traffic; redoing an empty graph is cheap, so it is computed on the request instead."""
    backend = RecordedBackend(recorded_frame().iloc[0:0])
    src = _source(backend)
    empty = src.graph("workload", None, WINDOW)
    assert not any("source" in e["data"] for e in empty.elements)
    backend.frame = recorded_frame()  # the first scrapes land
    src.at += 5
    assert any("source" in e["data"] for e in src.graph("workload", None, WINDOW).elements)

