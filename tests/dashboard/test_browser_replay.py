"""Replay autoplay on the topology (issue #14), in headless Chromium against `meshscope up` on the shared mesh.

Play steps the slider through the window's slices, one per tick once the step shown has been drawn; every
step is the graph of its own slice (the page's "Last updated" is the slice's end); Pause holds the step; the
last step is the whole window again and stops the replay.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from selenium.webdriver.common.by import By

from dashboard.components import replay
from tests.dashboard.browser_helpers import css, cy, text_of
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

STEP_JS = "const h = document.querySelector('.topo-replay [role=slider]'); return h && h.getAttribute('aria-valuenow');"


def _state(browser) -> tuple[int | None, float | None, str]:
    """(slider step, the drawn graph's time, the play button's label)."""
    raw = browser.execute_script(STEP_JS)
    updated = text_of(browser, "#topo-updated")
    at = datetime.strptime(updated, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp() \
        if updated else None
    return (int(float(raw)) if raw not in (None, "") else None), at, text_of(browser, "#topo-play")


def test_replay_autoplay_steps_through_real_slices_pauses_and_stops_at_the_end(browser, stack):
    browser.get(stack.ui.url + "/topology")  # the default 5 min window: ten 30 s slices
    wait_until(lambda: cy(browser, "cy.nodes().length") > 0, 90, what="the live graph")
    assert _state(browser)[0] == replay.STEPS and "Play" in _state(browser)[2]

    drawn: set[float] = set()  # the times of the graphs drawn while a slice was on the slider
    steps: list[int] = []
    slice_s = replay.slice_s(300)

    def record(until):
        def poll():
            step, at, label = _state(browser)
            if step is not None and step < replay.STEPS:
                # while step k is on the slider the page shows its graph, or still the previous step's, both ending
                # at least (STEPS-1-k) slices ago; the live graph shown before the first step was drawn does not
                if at is not None and at <= time.time() - (replay.STEPS - 1 - step) * slice_s + 2:
                    drawn.add(at)
                if not steps or steps[-1] != step:
                    steps.append(step)
            return until(step, label)
        return poll

    browser.find_element(By.ID, "topo-play").click()
    wait_until(record(lambda step, label: "Pause" in label and step is not None and step >= 2), 180, interval=0.2,
               what="autoplay reaching the third slice")
    browser.find_element(By.ID, "topo-play").click()  # pause
    held = wait_until(record(lambda step, label: "Play" in label and step), 120, interval=0.2, what="paused")
    hold_from = time.monotonic()
    wait_until(lambda: time.monotonic() - hold_from > 3 * replay.tick_ms(1.0) / 1000, 30, interval=0.5,
               what="three ticks' time")  # an absence needs a bounded watch: the step must not move meanwhile
    assert _state(browser)[0] == held, "paused replay moved on"

    browser.find_element(By.ID, "topo-play").click()  # resume where it was, run to the end
    wait_until(record(lambda step, label: "Play" in label and step == replay.STEPS), 300, interval=0.2,
               what="autoplay running to the whole window and stopping")
    assert steps == sorted(steps) and steps[0] == 0, steps  # forward only, from the first slice
    times = sorted(drawn)
    assert len(times) >= replay.STEPS - 2, times  # a poll can miss a step drawn quickly, not most of them
    # each step is the graph of its own slice: the next slice ends a slice later (30 s for a 5 min window)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= slice_s - 2, gaps
    assert cy(browser, "cy.nodes().length") > 0
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "topo" in e["message"]]
