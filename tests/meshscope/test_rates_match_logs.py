"""The graph's numbers equal the access logs, edge by edge: rps, error % and response-code mix.

On the shared mesh, meshscope (a Stack on its own data dir) is compared with the sidecars'
own access logs of the same window for the healthy mesh and for scenarios of the classes
that broke the counting: both sides see a request differently (a route timeout: the client's
504 UT, the server's 0 DC), and requests that never reach the server (client-side fault
injection). Each is checked right after the change (the window holds both states) and once
the window holds only the new one, and again after meshscope restarts on the same data dir.
The tolerance is the sampling resolution: 1 s scrapes against a 20 s window. The logged truth is the
requests that completed in the window (start + duration), as counters count them.
"""
from __future__ import annotations

import time

import pytest

from bench.rates_vs_logs import measure
from tests.util import free_port, wait_until

pytestmark = pytest.mark.e2e
WINDOW = 20.0
# sampling resolution: a request counts in the logs at its end (start + duration) and in the counters at the first
# scrape after its end, so each window edge may shift up to ~1 scrape interval (1 s) of traffic
RESOLUTION = 2 * 1.0 / WINDOW
LAG = 1.0  # then `measure` waits until every log and scrape has been read past the window end


def start_stack(mesh, data_dir):
    from meshscope.app import BundledBackend, Stack, StackOptions

    options = StackOptions(port=free_port(), otlp_port=0, data_dir=data_dir, diagnose_interval=5.0, ui=False)
    return Stack(BundledBackend(mesh=mesh, scrape_interval=1.0), options).start()


def at(t: float, what: str) -> None:
    wait_until(lambda: time.time() >= t, timeout=WINDOW + 60, interval=0.2, what=what)


def check(store, end: float, what: str) -> None:
    at(end + LAG, f"{what}: window end")
    r = measure(store, end - WINDOW, end)
    what = f"{what}: {r}"
    assert r["edges"] >= 4, what  # every Bookinfo caller logged something
    assert r["rps_err_pct"] <= 100 * RESOLUTION + 2, what  # + low-rate edges (2 rps: a request is 3 %)
    assert r["error_pct_diff"] <= 100 * RESOLUTION, what
    assert r["code_share_diff"] <= RESOLUTION, what
    assert r["extra_edges"] == 0, what


def test_graph_equals_access_logs_after_changes_and_a_restart(bundled_mesh, tmp_path):
    bundled_mesh.reset()
    stack = start_stack(bundled_mesh, tmp_path)
    try:
        # the windows are judged once they are past, so the next change goes in right at the end of the
        # previous window instead of waiting for its measurement (each window still holds what it claims)
        windows = [(time.time() + WINDOW + 5, "healthy mesh")]
        for name in ("timeout", "fault-abort"):
            at(windows[-1][0], f"{name}: its turn")
            bundled_mesh.apply_scenario(name)
            changed = time.time()
            windows += [(changed + 6, f"{name}, first window after the change"), (changed + WINDOW + 4, f"{name}, steady")]
        for end, what in sorted(windows):
            check(stack.store, end, what)
        stack.stop()
        stopped = time.time()
        stack = start_stack(bundled_mesh, tmp_path)  # the same data dir: earlier samples are read back
        check(stack.store, max(time.time(), stopped + WINDOW / 2) + 2, "after a restart, window across it")
    finally:
        stack.stop()
        bundled_mesh.reset()
