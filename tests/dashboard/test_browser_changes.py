"""The Changes page in headless Chromium: timeline, filters, a diff with changed lines marked, hostile text inert."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from mesh.journal import Journal, content_of
from tests.dashboard.test_api_changes import HOSTILE, JournalSource
from tests.util import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def changes_ui(tmp_path_factory):
    j = Journal(tmp_path_factory.mktemp("journal") / "journal.sqlite")
    src = JournalSource(j)
    now = src.now()
    dr = {"host": "reviews", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
    j.observe("DestinationRule", "bookinfo", "reviews", content_of(dr), at=now - 600, who="start")
    dr2 = {"host": "reviews", "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "note": HOSTILE}
    j.observe("DestinationRule", "bookinfo", "reviews", content_of(dr2), at=now - 60,
              who=f"meshscope apply -f {HOSTILE}.yaml")
    j.observe("VirtualService", "shop", "cart", content_of({"hosts": ["cart"]}), at=now - 30, who="helm (Apply)")
    j.gap(None, until=now - 10, reason="watch expired (410 Gone)")
    ui = start(src, port=0)
    yield ui
    ui.stop()


def _entries(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#chg-timeline details.change")


def test_timeline_diff_filters_and_escaping(browser, changes_ui):
    browser.get(changes_ui.url + "/changes")
    wait_until(lambda: len(_entries(browser)) == 3, timeout=30, what="three change entries")
    assert "watch expired (410 Gone)" in browser.find_element(By.CSS_SELECTOR, ".change-gap").text
    update = _entries(browser)[1]
    assert "DestinationRule bookinfo/reviews" in update.text and "ISTIO_MUTUAL -> DISABLE" in update.text
    assert f"meshscope apply -f {HOSTILE}.yaml" in update.text  # shown as text
    update.find_element(By.TAG_NAME, "summary").click()
    wait_until(lambda: update.find_elements(By.CSS_SELECTOR, ".change-diff .add"), timeout=10, what="diff shown")
    added = [e.text for e in update.find_elements(By.CSS_SELECTOR, ".change-diff .add")]
    removed = [e.text for e in update.find_elements(By.CSS_SELECTOR, ".change-diff .del")]
    assert any("mode: DISABLE" in t for t in added) and any("mode: ISTIO_MUTUAL" in t for t in removed)
    assert any(HOSTILE in t for t in added)
    assert not browser.find_elements(By.CSS_SELECTOR, "#chg-timeline script")  # the hostile string is not markup
    box = browser.find_element(By.ID, "chg-kind")
    box.send_keys("VirtualService", Keys.ENTER)
    wait_until(lambda: len(_entries(browser)) == 1 and "shop/cart" in _entries(browser)[0].text, timeout=20,
               what="kind filter applied")
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
