"""Replay autoplay on the topology (issue #14) in headless Chromium: Play steps the slider through the window's
slices, one per tick once the step shown has been drawn; Pause holds it; the last step stops it.

The page is served over a saved snapshot given a `graph_at` (what the live source has: the graph of a window
ending at a time) that stamps each slice with its end and takes longer than the page's refresh timer, as a
build on a loaded machine does: a refresh must not supersede a step's drawing. That the graph of a past window
is the right one is tested with the live stack (tests/meshscope/test_changes_e2e.py); this tests the player.
"""
from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timezone

import pytest
from selenium.webdriver.common.by import By

from dashboard.components import replay
from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import cy, text_of
from tests.util import wait_until

pytestmark = pytest.mark.browser

STEP_JS = "const h = document.querySelector('.topo-replay [role=slider]'); return h && h.getAttribute('aria-valuenow');"
WATCH_JS = """window.__seen = []; const el = document.getElementById('topo-updated');
new MutationObserver(() => { const h = document.querySelector('.topo-replay [role=slider]');
  window.__seen.push([h && h.getAttribute('aria-valuenow'), el.textContent]); })
  .observe(el, {childList: true, characterData: true, subtree: true});"""
BUILD_S = 1.5  # longer than the 1 s refresh timer below


class SlowHistory(SnapshotSource):
    """A snapshot whose past windows are its own graph ending at the asked time, built in BUILD_S."""

    def __init__(self, snapshot):
        super().__init__(snapshot)
        self.asked: list[float] = []
        self._slow = threading.Event()  # never set: waiting on it is the build's duration

    def graph_at(self, graph_type, namespaces, window_s, end):
        self._slow.wait(BUILD_S)
        self.asked.append(end)
        return dataclasses.replace(self.graph(graph_type, namespaces, window_s), updated_at=end, window_s=window_s)


def _state(browser) -> tuple[int | None, float | None, str]:
    raw = browser.execute_script(STEP_JS)
    updated = text_of(browser, "#topo-updated")
    at = datetime.strptime(updated, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp() \
        if updated else None
    return (int(float(raw)) if raw not in (None, "") else None), at, text_of(browser, "#topo-play")


def test_replay_autoplay_draws_every_slice_in_order_pauses_and_stops_at_the_end(browser, ui_server):
    source = SlowHistory(bookinfo_snapshot())
    ui = ui_server(source, refresh_s=1.0)
    browser.get(ui.url + "/topology")  # the default 5 min window: ten 30 s slices
    wait_until(lambda: cy(browser, "cy.nodes().length") > 0, 60, what="the graph")
    assert _state(browser)[0] == replay.STEPS and "Play" in _state(browser)[2]
    end = source.now()
    slice_s = replay.slice_s(300)
    expected = {end - (replay.STEPS - 1 - k) * slice_s: k for k in range(replay.STEPS)}  # each step's slice end

    browser.execute_script(WATCH_JS)  # every drawing of the graph's time, with the slider's step then

    def poll(until):
        def check():
            step, _, label = _state(browser)
            return until(step, label)
        return check

    browser.find_element(By.ID, "topo-play").click()
    wait_until(poll(lambda step, label: "Pause" in label and step is not None and step >= 3), 60, interval=0.1,
               what="autoplay drawing the fourth slice")
    browser.find_element(By.ID, "topo-play").click()  # pause
    held = wait_until(poll(lambda step, label: "Play" in label and step), 30, interval=0.1, what="paused")
    # an absence needs a bounded watch: three ticks' time, and no step moves nor any slice is built meanwhile
    watch = threading.Event()
    watch.wait(3 * replay.tick_ms(1.0) / 1000)
    # (the held step's own build may still finish meanwhile; no later slice may be asked for)
    assert _state(browser)[0] == held and all(expected.get(e, -1) <= held for e in source.asked), source.asked

    browser.find_element(By.ID, "topo-play").click()  # resume where it was, run to the whole window, stop
    wait_until(poll(lambda step, label: "Play" in label and step == replay.STEPS), 120, interval=0.1,
               what="autoplay running to the whole window and stopping")
    seen = browser.execute_script("return window.__seen")
    drawn = {int(float(step)) for step, text in seen if step not in (None, "")
             and expected.get(datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp())
             == int(float(step))}
    assert drawn == set(range(replay.STEPS)), seen  # every slice drawn as its own step, none skipped
    steps_built = [expected.get(e) for e in source.asked if e in expected]
    assert steps_built == sorted(steps_built), source.asked  # in order, forward only
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
