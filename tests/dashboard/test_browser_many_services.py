"""Issue #17 on the Services page: 10,000 services (some named hundreds of characters long) in real headless
Chromium.

The page listed every service in one table: 80,000 DOM nodes and one main-thread task of 56 s (load 45), the tab
frozen. The list is now a page of `PAGE_ROWS` with links to the others and a name search; what is bounded is
structural (rows in the DOM), so the test holds the page to it, and to reaching any service: paging to the
next rows and finding one by part of its long name.
"""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.pages.service import PAGE_ROWS
from dashboard.sample import _node, bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import css, text_of
from tests.util import wait_until

pytestmark = pytest.mark.browser

SERVICES = 10_000
LONG = "settlement-" * 25  # 275 characters


def rows(driver) -> list[str]:
    return [r.text.split("\n")[0] for r in css(driver, "#svc-table tbody tr")]


def test_ten_thousand_services_are_paged_and_searchable(browser, ui_server):
    snap = bookinfo_snapshot()
    nodes = next(iter(snap["graphs"].values()))["nodes"]
    before = sum(1 for n in nodes if n["type"] == "service")
    for i in range(SERVICES):
        name = f"svc-{i}" + (f"-{LONG}" if i % 1000 == 7 else "")
        nodes.append({**_node(f"svc:ns-{i % 10}/{name}", "service", name, f"ns-{i % 10}"),
                      "rps_in": 1.0, "error_pct": 0.0, "health": "healthy"})
    total = before + SERVICES
    ui = ui_server(SnapshotSource(snap), refresh_s=0)
    browser.get(ui.url + "/services")
    wait_until(lambda: text_of(browser, "#svc-pages"), 120, what="the services list and its pages")
    nodes_in_dom = browser.execute_script("return document.getElementsByTagName('*').length")
    assert len(rows(browser)) == PAGE_ROWS and nodes_in_dom < 3_000, (len(rows(browser)), nodes_in_dom)
    assert f"services 1-{PAGE_ROWS} of {total}" in text_of(browser, "#svc-pages")
    first = rows(browser)
    browser.find_element(By.LINK_TEXT, "next").click()
    wait_until(lambda: f"services {PAGE_ROWS + 1}-{2 * PAGE_ROWS} of" in text_of(browser, "#svc-pages"), 60,
               what="the second page")
    second = rows(browser)
    assert len(second) == PAGE_ROWS and not set(first) & set(second)
    # one service among 10,000 by a part of its 280-character name
    box = browser.find_element(By.CSS_SELECTOR, "#svc-q")
    box.send_keys("svc-3007-settlement")
    box.send_keys(Keys.ENTER)
    wait_until(lambda: rows(browser) and len(rows(browser)) == 1 and rows(browser)[0].startswith("svc-3007-settlement"),
               60, what="the service found by name")
    assert not css(browser, "#svc-pages")  # one page: no pager
    severe = [line["message"] for line in browser.get_log("browser") if line["level"] == "SEVERE"]
    assert not severe, severe
