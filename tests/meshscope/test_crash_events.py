"""A crashed sidecar is an event meshscope shows: counted on /metrics and on its graph node (one crash, no finding)."""
from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.util import wait_until

pytestmark = pytest.mark.e2e


def test_a_killed_sidecar_is_counted_on_metrics_and_on_its_node(stack):
    mesh = stack.backend.mesh
    name = "bookinfo.ratings-v1"
    before = next((p["restarts"] for p in mesh.crashes() if p["process"] == name), 0)
    pid = mesh.pids()[name]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (p := mesh.pids().get(name)) and p != pid, timeout=60, what="ratings sidecar restarted")
    (crashed,) = [p for p in mesh.crashes() if p["process"] == name]
    assert crashed["kind"] == "sidecar" and crashed["restarts"] == before + 1
    assert crashed["workloads"] == [{"name": "ratings-v1", "namespace": "bookinfo"}]
    assert crashed["crashes"][-1]["exit_code"] == -signal.SIGKILL

    with httpx.Client(base_url=stack.ui.url, timeout=60) as api:
        metrics = api.get("/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("meshscope_process_restarts_total{")
                    and f'process="{name}"' in x)
        assert 'workload="ratings-v1"' in line and float(line.rsplit(" ", 1)[1]) == before + 1

        def node():
            graph = api.get("/api/v1/graph", params={"graphType": "workload"}).json()
            return next((e["data"] for e in graph["elements"] if e["data"].get("name") == "ratings-v1"
                         and "source" not in e["data"] and (e["data"].get("restarts") or 0) > before), None)

        # a graph built before the kill may still be served (it shows an earlier test's crash, if any): poll
        n = wait_until(node, timeout=60, interval=1, what="ratings-v1 node with its new restart count")
        assert n["restarts"] == before + 1 and "restarted" in n["badges"]
        loops = [f for f in api.get("/api/v1/findings", params={"status": "open"}).json() if f["code"] == "MS3060"
                 and name in f["message"]]
        assert not loops  # one crash is counted, not a crash loop (other processes' loops are not this test's)
