"""The topology page's stylesheet in real headless Chromium: what a refresh and a toggle cost the browser.

dash-cytoscape re-applies its whole stylesheet (every element restyled) whenever the prop
is a new array, and each refresh re-sends an equal one; the page's asset skips an equal
stylesheet (assets/topology_render.js). A big graph draws with the lean sheet and joins
edge labels only once a label is asked for. Completion and counts, not timing.
"""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from dashboard.components.graph_style import LARGE_GRAPH_EDGES
from dashboard.sample import synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import FIND_CY, cy, wait_for_graph
from tests.util import wait_until

pytestmark = pytest.mark.browser

WORKLOADS = 400  # ~600 edges: above LARGE_GRAPH_EDGES, so the page draws it as a big graph, yet quick

# counts, in the page, the stylesheets the component hands Cytoscape and the elements Cytoscape restyles
COUNT = """const cy = window._cy, st = cy.style();
window._restyled = 0; window._sheets = 0;
cy.on('style', () => { window._restyled++; });
if (!st._counted) { const guarded = st.fromJson; st._counted = true;
  st.fromJson = function (json) { window._sheets++; return guarded.call(this, json); }; }
return true;"""


def test_a_refresh_resending_an_equal_stylesheet_restyles_nothing_and_a_change_still_applies(browser, ui_server):
    snap = synthetic_snapshot(WORKLOADS)
    graph = snap["graphs"]["workload"]
    assert len(graph["edges"]) > LARGE_GRAPH_EDGES
    ui = ui_server(SnapshotSource(snap), refresh_s=2)
    browser.get(ui.url + "/topology?group=none")
    wait_for_graph(browser, len(graph["nodes"]), timeout=120)
    # the asset has tuned the graph (guard installed) before counting starts
    wait_until(lambda: cy(browser, "!!cy.scratch('_meshscope_tuned')"), 30, what="the page's asset on the graph")
    # the lean sheet of a big graph: straight edges, no label outline, no mTLS mark where mTLS is full
    edge = "cy.edges('.mtls-full')[0]"
    assert cy(browser, f"{edge}.style('curve-style')") == "straight"
    assert cy(browser, f"{edge}.style('text-outline-width')") == "0px"
    assert cy(browser, f"{edge}.style('source-arrow-shape')") == "none"
    assert cy(browser, "cy.edges('.mtls-full').length") > 0
    # edge labels are off on a big graph: nothing joined yet
    assert cy(browser, "cy.edges().filter(e => e.data('lbl_rps') !== undefined).length") == 0

    browser.execute_script(FIND_CY)
    assert browser.execute_script(COUNT)
    # refreshes every 2 s re-send the highlight store, whose callback re-sends the stylesheet
    wait_until(lambda: cy(browser, "window._sheets") >= 2, 60, what="two refreshes re-sending the stylesheet")
    assert cy(browser, "window._restyled") == 0

    # a real change still applies: the rps label toggle restyles, and the labels are joined then
    box = [b for b in browser.find_elements(By.CSS_SELECTOR, "#topo-labels input") if b.get_attribute("value") == "rps"]
    box[0].click()
    wait_until(lambda: cy(browser, "window._restyled") > 0, 60, what="the new stylesheet applied")
    wait_until(lambda: cy(browser, "cy.edges().filter(e => typeof e.data('lbl_rps') === 'string').length")
               == len(graph["edges"]), 60, what="edge labels joined once shown")
    # the drawn label is the joined one (the mTLS mark, then the rate)
    some = cy(browser, "(() => { const e = cy.edges().filter(e => e.data('label_rps'))[0];"
                       " return [e.style('label'), e.data('lbl_rps'), e.data('label_rps')]; })()")
    assert some[0] == some[1] and some[1].endswith(some[2])
