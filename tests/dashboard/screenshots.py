"""Regenerate docs/screenshots/*.png from the Bookinfo incident sample in headless Chromium.

Run: `.venv/bin/python -m tests.dashboard.screenshots`. Not a test: it writes files.
"""
from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By

from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import click_element, wait_for_graph
from tests.fixtures.browser import make_driver
from tests.util import wait_until

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _settled(driver) -> None:
    """Until Dash has no callback in flight (its loading marker is gone)."""
    wait_until(lambda: not driver.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']"), 15, what="idle page")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    driver = make_driver((1440, 900))
    css = lambda s: driver.find_elements(By.CSS_SELECTOR, s)  # noqa: E731
    try:
        driver.get(ui.url + "/")
        wait_until(lambda: css("#ov-findings"), 15)
        driver.save_screenshot(str(OUT / "overview.png"))

        driver.get(ui.url + "/topology")
        wait_for_graph(driver, 12)
        click_element(driver, "wl:bookinfo/reviews-v2->svc:bookinfo/ratings")
        wait_until(lambda: len(css("#topo-panel .js-plotly-plot")) >= 3, 15)
        _settled(driver)
        driver.save_screenshot(str(OUT / "topology.png"))

        driver.get(ui.url + "/findings")
        wait_until(lambda: css("#find-table td[data-dash-column='code']"), 15)
        next(c for c in css("#find-table td[data-dash-column='code']") if c.text == "MS2001").click()
        wait_until(lambda: css("#find-detail .yaml-line.hl"), 15)
        driver.execute_script("document.querySelector('#find-detail h4').scrollIntoView()")
        driver.save_screenshot(str(OUT / "findings.png"))

        driver.get(ui.url + "/traces?trace=4bf92f3577b34da6a3ce929d0e0e4736")
        wait_until(lambda: css("#tr-waterfall .point path"), 15)
        driver.execute_script("document.getElementById('tr-waterfall-box').scrollIntoView()")
        driver.save_screenshot(str(OUT / "traces.png"))

        for name, path, ready in (("slos", "/slos", ".chart-row .main-svg"), ("config", "/config", "#cfg-table"),
                                  ("service", "/services?name=reviews.bookinfo.svc.cluster.local", "#svc-detail .main-svg")):
            driver.get(ui.url + path)
            wait_until(lambda: css(ready), 15)
            _settled(driver)
            driver.save_screenshot(str(OUT / f"{name}.png"))
        print(f"screenshots written to {OUT}")
    finally:
        driver.quit()
        ui.stop()


if __name__ == "__main__":
    main()
