"""The open side panel is rebuilt off the refresh's request (dashboard.pages.topology.PanelFollower).

Dash keeps only the newest request of a callback: a refresh slower than its interval never lands, and building a
panel inside the refresh made the whole topology page stop updating on a busy box while a panel was open."""
from __future__ import annotations

import threading

from dashboard.pages.topology import PanelFollower
from tests.util import wait_until


def test_a_slow_build_never_holds_the_refresh_and_one_build_runs_per_element():
    follower, release, builds = PanelFollower(), threading.Event(), []

    def slow_build():
        builds.append(1)
        release.wait(30)
        return ["panel", len(builds)]

    key = ("edge-1", ("workload", (), 60.0, 0))
    assert follower.latest(key, slow_build) is None  # answered at once, the build runs on
    assert follower.latest(key, slow_build) is None and len(builds) == 1  # no second build while one runs
    release.set()
    # each later refresh starts the next rebuild (the panel follows the data) and gets the newest finished one
    assert wait_until(lambda: follower.latest(key, slow_build), 30, what="the finished panel")[0] == "panel"
    assert follower.latest(("edge-2", key[1]), lambda: ["other"]) in (None, ["other"])  # elements apart


def test_a_failing_build_keeps_the_last_panel_and_is_tried_again():
    follower, calls = PanelFollower(), []
    key = ("node-1", ("workload", (), 60.0, 0))
    follower.latest(key, lambda: ["good"])
    wait_until(lambda: follower.latest(key, lambda: ["good"]), 30, what="a first panel")

    def broken():
        calls.append(1)
        raise RuntimeError("backend away")

    wait_until(lambda: follower.latest(key, broken) == ["good"] and len(calls) >= 2, 30,
               what="the failing build retried while the last panel stays")
