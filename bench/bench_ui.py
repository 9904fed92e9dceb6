"""UI speed in real headless Chromium: first full render of the topology page, click and pan response.

Figures are measured inside the page (`performance.now()` since navigation
start, after two animation frames so the canvas has painted), on synthetic
meshes of 100, 500 and 1,000 workloads. Goal from the issue: under 2 s at
1,000 nodes. Ratios compare against the 100-node render in the same run.
"""
from __future__ import annotations

import os
import time

from bench.common import report

SIZES = (100, 500, 1000)
RUNS = 3
FIND_CY = """const root = document.getElementById('topo-graph'); if (!root) return 0;
for (const e of [root, ...root.querySelectorAll('*')]) if (e._cyreg && e._cyreg.cy) { window._cy = e._cyreg.cy;
  return window._cy.nodes().length; }
return 0;"""
AFTER_PAINT = """const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));"""


def _wait(fn, timeout: float = 60.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("the page did not finish rendering in time")


def _render_ms(driver, url: str, nodes: int) -> tuple[float, float]:
    """(wall ms from navigation start to painted graph, main-thread CPU ms spent by the page).

    The CPU figure (Chrome's ThreadTime) does not grow when other processes
    compete for the cores, so it is the one to compare between runs on a busy machine.
    """
    driver.get("about:blank")
    driver.get(url + "/topology")
    _wait(lambda: driver.execute_script(FIND_CY) == nodes)
    wall = float(driver.execute_async_script(AFTER_PAINT))
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return wall, metrics.get("ThreadTime", 0.0) * 1000


def _click_ms(driver, node_id: str) -> float:
    """Real mouse click on a node -> side panel shows that node (server callback + DOM update).

    The view is first zoomed to 1x around the node, as a user does before clicking in a big graph.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    pos = driver.execute_script(f"""const cy = window._cy, n = cy.$id({node_id!r});
        cy.zoom(1); cy.center(n); return n.renderedPosition();""")
    driver.execute_async_script(AFTER_PAINT)
    box = driver.find_element(By.ID, "topo-graph")
    name = node_id.split("/", 1)[1]

    def shown() -> bool:
        title = driver.execute_script("const t = document.getElementById('panel-title'); return t && t.textContent;")
        return bool(title) and title.endswith(name)

    t0 = time.perf_counter()
    ActionChains(driver).move_to_element_with_offset(
        box, int(pos["x"] - box.size["width"] / 2), int(pos["y"] - box.size["height"] / 2)).click().perform()
    _wait(shown, timeout=30, interval=0.005)
    return (time.perf_counter() - t0) * 1000


def _pan_frame_ms(driver) -> float:
    """Mean time per frame while panning the whole graph 20 steps (what dragging the canvas costs)."""
    return float(driver.execute_async_script("""const done = arguments[arguments.length - 1];
      const cy = window._cy; let i = 0; const t0 = performance.now();
      function step() { if (i++ >= 20) return done((performance.now() - t0) / 20);
        cy.panBy({x: 7, y: 3}); requestAnimationFrame(step); }
      requestAnimationFrame(step);"""))


def main() -> None:
    from dashboard.sample import synthetic_snapshot
    from dashboard.server import start
    from dashboard.snapshot_source import SnapshotSource
    from tests.fixtures.browser import make_driver

    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    driver = make_driver((1440, 900))
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Performance.enable", {})
    results: dict[int, float] = {}
    cpu: dict[int, float] = {}
    try:
        warm = start(SnapshotSource(synthetic_snapshot(50)), port=0)
        _render_ms(driver, warm.url, 50)  # browser cache warm for the bundles, as for a returning user
        warm.stop()
        for n in SIZES:
            ui = start(SnapshotSource(synthetic_snapshot(n)), port=0)
            try:
                # best of RUNS: the machine is shared, and the least disturbed run is the page's own cost
                runs = [_render_ms(driver, ui.url, n) for _ in range(RUNS)]
                results[n] = min(w for w, _ in runs)
                cpu[n] = min(c for _, c in runs)
                report(f"topology_render_{n}", results[n], "ms",
                       baseline=("topology_render_100", results[100]) if n != 100 else None)
                report(f"topology_render_cpu_{n}", cpu[n], "ms",
                       baseline=("topology_render_cpu_100", cpu[100]) if n != 100 else None)
                if n == SIZES[-1]:
                    targets = [f"wl:ns-{i % 10}/svc-{i}-v1" for i in (n // 2, n // 3, n // 4)]
                    clicks = [_click_ms(driver, t) for t in targets]
                    report(f"topology_click_panel_{n}", min(clicks), "ms")
                    report(f"topology_pan_frame_{n}", _pan_frame_ms(driver), "ms")
            finally:
                ui.stop()
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
