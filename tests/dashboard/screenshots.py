"""Regenerate docs/screenshots/*.png in headless Chromium. Not a test: it writes files.

    .venv/bin/python -m tests.dashboard.screenshots --live   # a running mesh with a real incident (the docs' pictures)
    .venv/bin/python -m tests.dashboard.screenshots          # the built-in Bookinfo incident sample (seconds, no mesh)

`--live` starts what `meshscope up` starts (bundled mesh with traffic, collectors, live
diagnoser, SLOs, UI) on free ports in a temporary directory, lets healthy traffic flow,
applies the `mtls-mismatch` scenario, waits until the incident is on the graph and in the
findings, takes the pictures, then clears the scenario and stops everything it started.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By

from tests.dashboard.browser_helpers import RED, click_element, cy, wait_for_graph
from tests.fixtures.browser import make_driver
from tests.util import free_port, wait_until

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCENARIO = "mtls-mismatch"


def _settled(driver) -> None:
    """Until Dash has no callback in flight (its loading marker is gone)."""
    wait_until(lambda: not driver.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']"), 30, what="idle page")


def _css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def _shoot(driver, name: str) -> None:
    path = OUT / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"  wrote {path.relative_to(OUT.parents[1])}", flush=True)


# ---- the sample ---------------------------------------------------------------------------------
def sample() -> None:
    from dashboard.sample import bookinfo_snapshot
    from dashboard.server import start
    from dashboard.snapshot_source import SnapshotSource

    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    driver = make_driver((1440, 900))
    css = lambda s: _css(driver, s)  # noqa: E731
    try:
        driver.get(ui.url + "/")
        wait_until(lambda: css("#ov-findings"), 15)
        _shoot(driver, "overview")

        driver.get(ui.url + "/topology")
        wait_for_graph(driver, 12)
        click_element(driver, "wl:bookinfo/reviews-v2->svc:bookinfo/ratings")
        wait_until(lambda: len(css("#topo-panel .js-plotly-plot")) >= 3, 15)
        _settled(driver)
        _shoot(driver, "topology")

        driver.get(ui.url + "/findings")
        wait_until(lambda: css("#find-table td[data-dash-column='code']"), 15)
        next(c for c in css("#find-table td[data-dash-column='code']") if c.text == "MS2001").click()
        wait_until(lambda: css("#find-detail .yaml-line.hl"), 15)
        driver.execute_script("document.querySelector('#find-detail h4').scrollIntoView()")
        _shoot(driver, "findings")

        driver.get(ui.url + "/traces?trace=4bf92f3577b34da6a3ce929d0e0e4736")
        wait_until(lambda: css("#tr-waterfall .point path"), 15)
        driver.execute_script("document.getElementById('tr-waterfall-box').scrollIntoView()")
        _shoot(driver, "traces")

        for name, path, ready in (("slos", "/slos", ".chart-row .main-svg"), ("config", "/config", "#cfg-table"),
                                  ("service", "/services?name=reviews.bookinfo.svc.cluster.local", "#svc-detail .main-svg")):
            driver.get(ui.url + path)
            wait_until(lambda: css(ready), 15)
            _settled(driver)
            _shoot(driver, name)
    finally:
        driver.quit()
        ui.stop()


# ---- the live mesh ------------------------------------------------------------------------------
def _red_reviews_edge(driver) -> str | None:
    return cy(driver, """(() => { const e = cy.nodes().filter(n => n.data('name') === 'productpage-v1').outgoers('edge')
        .filter(e => (e.target().data('app') || e.target().data('name') || '').startsWith('reviews')
                     && e.style('line-color') === '%s');
        return e.length ? e[0].id() : null; })()""" % RED)


def _incident_open(src) -> bool:
    """MS3001 open and on the graph; says what it sees meanwhile, so a slow machine is not a silent wait."""
    found = [f for f in src.findings({"code": "MS3001", "status": "open"}) if f["elements"]]
    if not found:
        codes = sorted({f["code"] for f in src.findings({"status": "open"})})
        print(f"  [{time.strftime('%H:%M:%S')}] waiting for MS3001; open now: {', '.join(codes) or 'none'}", flush=True)
    return bool(found)


def _stop(stack) -> None:
    """Clear the scenario and stop the stack; if a part hangs in stop, still stop the mesh's processes."""
    import threading

    mesh = stack.backend.mesh
    if mesh is not None:
        try:
            mesh.clear_scenario()
        except Exception as exc:  # stopping follows anyway
            print(f"  clearing the scenario failed: {exc}", flush=True)
    stopper = threading.Thread(target=stack.stop, name="stack-stop", daemon=True)
    stopper.start()
    stopper.join(timeout=90)
    if stopper.is_alive() and mesh is not None:
        print("  a part did not stop within 90 s; stopping the mesh's processes directly", flush=True)
        mesh.stop()


def live(warmup_s: float = 90.0) -> None:
    """Screenshots of `meshscope up` during the mtls-mismatch incident."""
    from urllib.parse import quote

    from dashboard.query import TraceFilters
    from mesh.bundled import BundledConfig
    from mesh.controlplane.registry import free_local_port
    from meshscope.app import DEMO_SLOS, BundledBackend, Stack, StackOptions

    with tempfile.TemporaryDirectory(prefix="meshscope-shots-") as tmp:
        mesh_cfg = BundledConfig(gateway_port=free_local_port(), control_port=0, data_dir=Path(tmp) / "mesh",
                                 traffic_rate=5.0)  # `meshscope up`'s defaults, on free ports
        stack = Stack(BundledBackend(mesh_cfg, scrape_interval=2.0),
                      StackOptions(port=free_port(), otlp_port=0, data_dir=Path(tmp) / "stack", diagnose_interval=2.0,
                                   refresh_s=5.0, slo_paths=[DEMO_SLOS]))
        driver = None
        try:
            stack.start(progress=lambda msg: print(f"  {msg}", flush=True))
            src, url = stack.source, stack.ui.url
            wait_until(lambda: sum("source" in e["data"] for e in src.graph().elements) >= 7, 120, interval=1,
                       what="the Bookinfo edges")
            print(f"  healthy traffic for {warmup_s:g}s (the charts' baseline) ...", flush=True)
            started = time.monotonic()
            wait_until(lambda: time.monotonic() - started >= warmup_s, warmup_s + 5, interval=1, what="warm-up")
            print(f"  applying the {SCENARIO} scenario", flush=True)
            stack.backend.mesh.apply_scenario(SCENARIO)
            wait_until(lambda: _incident_open(src), 180, interval=2, what="MS3001 open on the graph")
            wait_until(lambda: src.traces(TraceFilters(status="error")), 60, interval=1, what="failed traces")
            started = time.monotonic()  # a little incident history for the charts
            wait_until(lambda: time.monotonic() - started >= 30, 35, interval=1, what="incident history")

            OUT.mkdir(parents=True, exist_ok=True)
            driver = make_driver((1440, 900))
            driver.set_page_load_timeout(90)
            css = lambda s: _css(driver, s)  # noqa: E731

            driver.get(url + "/")
            wait_until(lambda: "active: " + SCENARIO in (css("#ov-scenario-status") or [None])[0].text, 30,
                       what="overview with the scenario")
            _settled(driver)
            _shoot(driver, "overview")

            driver.get(url + "/topology")
            wait_until(lambda: cy(driver, "cy.nodes().length") >= 7, 60, what="live graph")
            wait_for_graph(driver, cy(driver, "cy.nodes().length"))
            edge = wait_until(lambda: _red_reviews_edge(driver), 60, what="the red productpage -> reviews edge")
            click_element(driver, edge)
            wait_until(lambda: "MS3001" in css("#panel-findings")[0].text, 60, what="MS3001 in the side panel")
            wait_until(lambda: len(css("#topo-panel .js-plotly-plot")) >= 3, 60, what="panel charts")
            _settled(driver)
            _shoot(driver, "topology")

            fp = src.findings({"code": "MS3001", "status": "open"})[0]["fingerprint"]
            driver.get(url + "/findings?fp=" + quote(fp, safe=""))
            wait_until(lambda: css("#find-detail .yaml-line.hl"), 60, what="finding detail with the YAML line marked")
            _settled(driver)
            # the related config with its offending line, the remediation under it
            driver.execute_script("document.querySelector('#find-detail .yaml-line.hl').scrollIntoView({block: 'center'})")
            _shoot(driver, "findings")

            trace = src.traces(TraceFilters(status="error", service="productpage"))[0]["trace_id"]
            driver.get(f"{url}/traces?trace={trace}")
            wait_until(lambda: css("#tr-waterfall .point path"), 60, what="waterfall")
            bar = css("#tr-waterfall .point path")[0]
            from selenium.webdriver.common.action_chains import ActionChains
            ActionChains(driver).move_to_element(bar).click().perform()
            wait_until(lambda: "Attributes" in css("#tr-attrs")[0].text, 30, what="span attributes")
            _settled(driver)
            driver.execute_script("document.getElementById('tr-waterfall-box').scrollIntoView()")
            _shoot(driver, "traces")

            driver.get(url + "/slos")
            wait_until(lambda: css(".chart-row .main-svg"), 60, what="SLO charts")
            _settled(driver)
            _shoot(driver, "slos")

            driver.get(url + "/config")
            wait_until(lambda: css("#cfg-table td"), 60, what="config table")
            row = wait_until(lambda: [r for r in css("#cfg-table tbody tr")
                                      if "DestinationRule" in r.text and "MS" in r.text], 30, what="the DR row")[0]
            row.find_elements(By.CSS_SELECTOR, "td")[2].click()
            wait_until(lambda: css("#cfg-detail .yaml-line.hl"), 30, what="YAML with the offending line")
            _settled(driver)
            driver.execute_script("document.querySelector('#cfg-detail .yaml-line.hl').scrollIntoView({block: 'center'})")
            _shoot(driver, "config")

            driver.get(url + "/services?name=reviews.bookinfo.svc.cluster.local")
            wait_until(lambda: css("#svc-detail .main-svg"), 60, what="service charts")
            _settled(driver)
            _shoot(driver, "service")
        finally:
            if driver is not None:
                driver.quit()
            _stop(stack)
    print(f"screenshots written to {OUT}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.dashboard.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="from a running bundled mesh with the mtls-mismatch "
                        "incident (takes a few minutes) instead of the built-in sample")
    parser.add_argument("--warmup", type=float, default=90.0, metavar="S",
                        help="seconds of healthy traffic before the incident (--live; default 90)")
    args = parser.parse_args(argv)
    live(args.warmup) if args.live else sample()


if __name__ == "__main__":
    main()
