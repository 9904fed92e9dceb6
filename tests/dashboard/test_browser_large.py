"""A 10,000-workload mesh in real headless Chromium: the topology page finishes drawing and stays usable.

Completion, not timing (speed is bench/bench_ui.py's job): the graph reaches all its
elements on a painted canvas, a real drag and wheel do not freeze the tab, a real
click opens the side panel with the full record. One page carries the issue's bad
input at once: two namespaces of 5,000 workloads each, about 15,000 edges (half of
them between the two), and workload names hundreds of characters long. A second test
puts 40,000+ edges between two namespaces and opens the page as a user gets it.
"""
from __future__ import annotations

import pytest

from dashboard.components.lean import LABEL_MAX
from dashboard.sample import synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import FIND_CY, click_element, cy, sel, text_of
from tests.util import wait_until

pytestmark = pytest.mark.browser

WORKLOADS = 10_000
LONG_PREFIX = "payments-settlement-reconciliation-"


@pytest.fixture(scope="module")
def big_mesh():
    snap = synthetic_snapshot(WORKLOADS, namespaces=2)
    graph = snap["graphs"]["workload"]
    # very long names on a few workloads spread over the mesh (ids stay as they are)
    long_named = {}
    for i in (7, WORKLOADS // 2 + 1, WORKLOADS - 3):
        node = graph["nodes"][i]
        node["name"] = f"{LONG_PREFIX}{i}-" + "x" * 260 + "-v1"
        long_named[node["id"]] = node["name"]
    ns_of = {n["id"]: n["namespace"] for n in graph["nodes"]}
    return snap, long_named, ns_of


def test_ten_thousand_workloads_render_and_stay_usable(browser, ui_server, big_mesh):
    snap, long_named, ns_of = big_mesh
    graph = snap["graphs"]["workload"]
    per_ns = {ns: sum(1 for n in graph["nodes"] if n["namespace"] == ns) for ns in ("ns-0", "ns-1")}
    crossing = sum(1 for e in graph["edges"] if ns_of[e["source"]] != ns_of[e["target"]])
    assert per_ns == {"ns-0": 5_000, "ns-1": 5_000} and crossing >= 5_000  # the bad input is what it says
    nodes, edges = len(graph["nodes"]), len(graph["edges"])

    ui = ui_server(SnapshotSource(snap))
    browser.get(ui.url + "/topology?group=none")  # every workload: the page would open grouped by namespace
    wait_until(lambda: browser.execute_script(FIND_CY), 600, interval=0.5, what="cytoscape instance")
    wait_until(lambda: cy(browser, "[cy.nodes().length, cy.edges().length]") == [nodes, edges], 600, interval=0.5,
               what=f"{nodes} nodes and {edges} edges in the graph")
    # painted: two animation frames after the elements arrived, and the canvas has coloured pixels
    browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                 "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));")
    assert browser.execute_script("""return [...document.querySelectorAll('#topo-graph canvas')].some(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4 * 97) if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) return true;
        return false; });""")
    # a graph this size draws for speed: renderer options set on the live renderer by the page's asset
    wait_until(lambda: cy(browser, "cy.renderer().textureOnViewport && cy.renderer().hideEdgesOnViewport"), 30,
               what="large-graph renderer options")

    # long names: the drawn label is truncated, the element keeps the full name
    nid, full = list(long_named.items())[-1]  # in the last layer: it has callers, so inbound codes
    label = cy(browser, f"cy.$('{sel(nid)}').data('label')")
    assert len(label) <= LABEL_MAX and "\u2026" in label and label.startswith(LONG_PREFIX[:20])
    assert cy(browser, f"cy.$('{sel(nid)}').data('name')") == full

    # real gestures on the whole graph: a drag and a wheel; the tab answers afterwards (no freeze)
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    box = browser.find_element(By.CSS_SELECTOR, "#topo-graph")
    pan0 = cy(browser, "cy.pan()")
    corner = (-box.size["width"] // 2 + 8, -box.size["height"] // 2 + 8)  # inside the fit padding: no node there
    ActionChains(browser).move_to_element_with_offset(box, *corner).click_and_hold().move_by_offset(60, 30) \
        .move_by_offset(60, 30).release().perform()
    wait_until(lambda: cy(browser, "cy.pan()") != pan0, 60, what="the drag to pan the graph")
    browser.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": 600, "y": 400, "deltaX": 0,
                                                          "deltaY": -120})
    assert browser.execute_script("return 1 + 1") == 2

    # hover a long-named node: the browser tooltip (the container's title) carries the full name
    point = cy(browser, f"(() => {{ const n = cy.$('{sel(nid)}'); cy.zoom(1.5); cy.center(n); "
                        f"return n.renderedPosition(); }})()")
    browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                 "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));")
    ActionChains(browser).move_to_element_with_offset(
        box, int(point["x"] - box.size["width"] / 2), int(point["y"] - box.size["height"] / 2)).perform()
    wait_until(lambda: full in (box.get_attribute("title") or ""), 30, what="full name on hover")

    # a real click: the side panel shows the node by its full name, with what only the server kept (inbound codes)
    click_element(browser, nid)
    wait_until(lambda: text_of(browser, "#panel-title").endswith(full), 120, what="side panel of the clicked node")
    wait_until(lambda: "response codes (inbound)" in text_of(browser, "#topo-panel"), 60, what="inbound codes chart")
    wait_until(lambda: cy(browser, f"cy.$('{sel(nid)}').hasClass('ms-selected')"), 30, what="clicked node marked")
    assert cy(browser, "cy.$('.ms-selected').length") == 1


def test_tens_of_thousands_of_edges_between_two_namespaces_open_grouped(browser, ui_server):
    snap = synthetic_snapshot(WORKLOADS, namespaces=2, extra_callers=3)
    graph = snap["graphs"]["workload"]
    ns_of = {n["id"]: n["namespace"] for n in graph["nodes"]}
    crossing = [e for e in graph["edges"] if ns_of[e["source"]] != ns_of[e["target"]]]
    assert len(crossing) >= 20_000
    ui = ui_server(SnapshotSource(snap))
    browser.get(ui.url + "/topology")  # as opened: grouped by namespace above the threshold
    wait_until(lambda: browser.execute_script(FIND_CY), 300, interval=0.5, what="cytoscape instance")
    wait_until(lambda: cy(browser, "cy.nodes().length") >= 2, 300, interval=0.5, what="the namespaces drawn")
    # the traffic between the two namespaces is drawn summed: nothing of the 20,000+ edges is lost
    drawn = cy(browser, "cy.edges().filter(e => e.data('source') !== e.data('target'))"
                        ".map(e => e.data('rps') || 0).reduce((a, b) => a + b, 0)")
    assert drawn == pytest.approx(sum(e["rps"] for e in crossing), rel=1e-3)
    assert browser.execute_script("return 1 + 1") == 2  # the tab answers
