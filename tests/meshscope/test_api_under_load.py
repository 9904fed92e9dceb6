"""The API under concurrent load on the shared stack: every request answers, identical views are computed once,
and requests never wait for a diagnoser cycle."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _together(n: int, fn):
    """Run `fn(i)` in n threads released at the same instant; their results in order."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_identical_views_are_computed_once(stack):
    src = stack.source
    # views no other test asks for, so the cache is cold for them
    views = [("app", None, 77.0), ("service", ["bookinfo"], 83.0)]
    for graph_type, namespaces, window in views:
        key = (graph_type, tuple(sorted(namespaces or ())), window)
        before = src.builds_by_view.get(key, 0)
        results = _together(24, lambda i: src.graph(graph_type, namespaces, window))
        assert src.builds_by_view.get(key, 0) == before + 1, "24 concurrent requests for one view: one build"
        assert len({id(r) for r in results}) == 1  # everyone got that one computation
        assert any("source" in e["data"] for e in results[0].elements)


def test_hammered_api_answers_every_request(stack):
    routes = ["/api/v1/graph", "/api/v1/findings", "/api/v1/slos", "/api/v1/graph?graphType=versionedApp", "/"]
    diag = stack.diagnoser
    with httpx.Client(base_url=stack.ui.url, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        def get(i: int) -> int:
            return client.get(routes[i % len(routes)]).status_code

        with diag._eval_lock:  # a diagnoser cycle in progress for the whole burst: nobody may wait for it
            codes = _together(40, get)
    assert codes == [200] * 40
