"""A large mesh in headless Chromium: opens grouped, a click expands a namespace in place, Focus opens the incident view."""
from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from dashboard.sample import synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import FIND_CY, click_element, css, cy, text_of, wait_for_graph
from tests.dashboard.test_api_graph_views import with_incident
from tests.util import wait_until

pytestmark = pytest.mark.browser

POSITIONS = "Object.fromEntries(cy.nodes().map(n => [n.id(), n.position()]))"


def test_grouped_view_expands_in_place_and_focus_shows_the_incident(browser, ui_server):
    snap, bad = with_incident(synthetic_snapshot(400, seed=3, namespaces=8))  # 400 > the default threshold of 300
    ui = ui_server(SnapshotSource(snap), refresh_s=0)
    browser.get(ui.url + "/topology")
    wait_for_graph(browser, 8)
    assert cy(browser, "cy.nodes().every(n => n.hasClass('aggregate'))")
    before = cy(browser, POSITIONS)
    target = "agg:ns:ns-2"

    click_element(browser, target)
    wait_until(lambda: cy(browser, "cy.nodes().length") == 7 + 50, 60, what="ns-2 opened into its 50 workloads")
    after = cy(browser, POSITIONS)
    assert target not in after
    for nid, pos in before.items():  # everything else stays where it was drawn
        if nid != target:
            assert after[nid] == pytest.approx(pos)
    members = [p for nid, p in after.items() if nid.startswith("wl:ns-2/")]
    assert len(members) == 50
    centre = before[target]
    assert all(abs(p["x"] - centre["x"]) <= 400 and abs(p["y"] - centre["y"]) <= 400 for p in members)
    # the click also showed the aggregate's roll-up and worst members
    wait_until(lambda: "ns-2" in text_of(browser, "#panel-title"), 30, what="aggregate side panel")
    assert css(browser, "#panel-worst li")

    browser.get(ui.url + "/topology?focus=" + quote(snap["findings"][0]["fingerprint"], safe="") + "&hops=1")
    wait_until(lambda: browser.execute_script(FIND_CY) and cy(browser, "cy.nodes('.config').length") == 1, 60,
               what="incident view with the blamed DestinationRule")
    shown = cy(browser, "cy.nodes().length")
    assert 3 <= shown < 400
    assert cy(browser, f"cy.getElementById({bad['id']!r}).length") == 1
    assert "incident view" in text_of(browser, "#topo-notes")


def _page_ids(browser) -> set[str]:
    return set(cy(browser, "cy.nodes().map(n => n.id())"))


def _api_ids(ui, **params) -> set[str]:
    answer = httpx.get(ui.url + "/api/v1/graph", params=params, timeout=60).json()
    return {e["data"]["id"] for e in answer["elements"] if "source" not in e["data"]}


def test_focus_links_of_a_finding_and_an_incident_open_the_incident_view_with_k_selectable(browser, ui_server):
    """From the Findings page's detail and the Overview's incident list, Focus opens the incident view the API
    serves (`GET /api/v1/graph?focus=`); the hops control widens it to exactly the API's k-hop answer."""
    snap, bad = with_incident(synthetic_snapshot(400, seed=3, namespaces=8))
    ui = ui_server(SnapshotSource(snap), refresh_s=0)
    fp = snap["findings"][0]["fingerprint"]
    browser.get(ui.url + "/findings?fp=" + quote(fp, safe=""))
    wait_until(lambda: css(browser, "#finding-focus"), 60, what="the finding's Focus link")
    css(browser, "#finding-focus")[0].click()
    wait_until(lambda: browser.execute_script(FIND_CY) and _page_ids(browser) == _api_ids(ui, focus=fp, hops=1), 60,
               what="the finding's incident view (k = 1)")
    assert cy(browser, "cy.nodes('.config').length") == 1 and bad["source"] in _page_ids(browser)
    wide = _api_ids(ui, focus=fp, hops=3)
    assert len(wide) > len(_api_ids(ui, focus=fp, hops=1))
    browser.execute_script("window.dash_clientside.set_props('topo-hops', {value: 3})")  # as the hops control does
    wait_until(lambda: _page_ids(browser) == wide, 60, what="the incident view at k = 3")

    incident = httpx.get(ui.url + "/api/v1/incidents", timeout=30).json()[0]["id"]
    browser.get(ui.url + "/")
    wait_until(lambda: css(browser, "#ov-incidents .focus-link"), 60, what="the incident's Focus link")
    css(browser, "#ov-incidents .focus-link")[0].click()
    wait_until(lambda: browser.execute_script(FIND_CY) and _page_ids(browser) == _api_ids(ui, focus=incident, hops=1),
               60, what="the incident's incident view")
    assert "incident view" in text_of(browser, "#topo-notes")


def test_graph_types_and_namespace_filters_on_the_grouped_view_draw_what_the_api_serves(browser, ui_server):
    """The Graph and Namespaces controls on a grouped page: the page draws the API's grouped graph of that type
    and those namespaces (aggregates carry name, namespace, health and rates like any node)."""
    ui = ui_server(SnapshotSource(synthetic_snapshot(400, seed=4, namespaces=8)), refresh_s=0)
    browser.get(ui.url + "/topology?group=namespace")
    wait_for_graph(browser, 8, timeout=90)
    for graph_type, namespaces in (("app", []), ("service", []), ("app", ["ns-1", "ns-2"]), ("workload", ["ns-3"])):
        browser.execute_script("window.dash_clientside.set_props('topo-type', {value: arguments[0]});"
                               "window.dash_clientside.set_props('topo-ns', {value: arguments[1]});",
                               graph_type, namespaces)
        want = _api_ids(ui, graphType=graph_type, collapse="namespace", namespaces=",".join(namespaces))
        assert any(i.startswith("agg:ns:") for i in want)
        wait_until(lambda: _page_ids(browser) == want, 60, what=f"the grouped {graph_type} graph of {namespaces}")
        assert cy(browser, "cy.nodes('.aggregate').every(n => n.data('name') && n.data('health') "
                           "&& n.data('rps_in') !== undefined)")
