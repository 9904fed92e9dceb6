"""A large mesh in headless Chromium: opens grouped, a click expands a namespace in place, Focus opens the incident view."""
from __future__ import annotations

from urllib.parse import quote

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
