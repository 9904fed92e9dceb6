"""The Config page's "preview a change" box in headless Chromium: a prediction, a file that does not load."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from dashboard.server import start
from tests.dashboard.test_api_impact import STRICT, LiveLike, _Backend
from tests.diagnose.whatif.test_replay import _window
from tests.util import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def preview_ui():
    backend = _Backend(_window())
    ui = start(LiveLike(backend), port=0)
    yield ui, backend
    ui.stop()


def _predict(browser, text: str) -> str:
    box = browser.find_element(By.ID, "cfg-preview-yaml")
    box.clear()
    browser.execute_script("arguments[0].focus();", box)
    box.send_keys(text)
    browser.find_element(By.ID, "cfg-preview-run").click()


def test_preview_names_the_broken_edge_and_the_bad_file(browser, preview_ui):
    ui, backend = preview_ui
    browser.get(ui.url + "/config")
    wait_until(lambda: browser.find_elements(By.ID, "cfg-preview-yaml"), timeout=30, what="preview box")
    _predict(browser, STRICT)
    answer = wait_until(lambda: browser.find_elements(By.ID, "cfg-preview-answer"), timeout=30, what="prediction")[0]
    assert "BREAKS: 1.50 req/s would newly fail" in answer.text
    assert "MS5001" in answer.text and "legacy/curl -> bookinfo/details-v1" in answer.text
    assert not backend.snapshot().of_kind("PeerAuthentication")  # nothing applied
    _predict(browser, "<script>x</script>: [\n")
    bad = wait_until(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".preview-bad")], timeout=30,
                     what="load problems")[0]
    assert "does not load" in bad.text and "MS5005" in bad.text
