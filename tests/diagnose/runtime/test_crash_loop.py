"""MS3060: a process that keeps crashing is a finding; one crash is not; the finding ends when it is stable."""
from __future__ import annotations

import pytest

from diagnose.live import LiveDiagnoser, LiveSources
from diagnose.rules.runtime.crash_loop import CrashLoop


def process(times, exit_code=-9, name="bookinfo.reviews-v2", kind="sidecar", workloads=(("reviews-v2", "bookinfo"),)):
    return {"process": name, "kind": kind, "restarts": len(times),
            "workloads": [{"name": n, "namespace": ns} for n, ns in workloads],
            "crashes": [{"time": t, "exit_code": exit_code} for t in times]}


@pytest.mark.parametrize("times, now, looping", [
    ([100.0], 101.0, False),  # one crash: counted, not a loop
    ([100.0, 160.0, 220.0], 230.0, True),  # three in five minutes
    ([100.0, 160.0, 220.0], 401.0, False),  # ... but the first has left the window: stable again
    ([100.0, 160.0, 220.0, 280.0], 401.0, True),
])
def test_crash_loop_needs_repeated_crashes_within_the_window(times, now, looping):
    found = CrashLoop().analyze([process(times)], now)
    assert bool(found) == looping
    if looping:
        f = found[0]
        assert f.code == "MS3060" and f.severity == "error"
        assert f.resource.name == "reviews-v2" and f.resource.namespace == "bookinfo"
        assert "signal 9" in f.message and "bookinfo.reviews-v2" in f.message
        assert f.evidence["crashes"] and all(now - 300 < c["time"] <= now for c in f.evidence["crashes"])


def test_exit_codes_and_shared_processes_are_named():
    apps = process([1.0, 2.0, 3.0], exit_code=1, name="demo-apps", kind="app",
                   workloads=(("details-v1", "bookinfo"), ("ratings-v1", "bookinfo")))
    (f,) = CrashLoop().analyze([apps], 10.0)
    assert "code 1" in f.message and "(app)" in f.message
    assert f.resource is None and {r.name for r in f.related} == {"details-v1", "ratings-v1"}
    assert CrashLoop().analyze([process([1.0, 2.0, 3.0], exit_code=None)], 10.0)[0].message.count("unknown") == 1


def test_the_live_loop_reports_crash_loops_from_its_extra_source():
    state = {"crashes": [process([95.0, 97.0, 99.0])]}
    rule = CrashLoop()
    loop = LiveDiagnoser(LiveSources(extra=lambda now: rule.analyze(state["crashes"], now)), interval_s=1.0,
                         clock=lambda: 100.0)
    loop.evaluate()
    assert [f["code"] for f in (x.to_dict() for x in loop.findings({"status": "open"}))] == ["MS3060"]
